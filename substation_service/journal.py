"""Where a substation's sessions outlive its process: what a journal is (`Journal`), the ones that keep
nothing or cannot be read, and the writer the substation writes through (`JournalWriter`).
sqlite_journal.py keeps sessions in SQLite.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

from substation_service.grid_limits import LimitPeriod
from substation_service.sessions import Session

log = logging.getLogger(__name__)


class JournalError(Exception):
    """The journal did not take a write (nothing of it was kept), or cannot be read."""


class Journal(Protocol):
    """Called with the substation's lock held. `record` writes all of them or raises JournalError and writes
    none; `probe` raises JournalError when the journal cannot write now; `sessions` when it cannot be read;
    `reopen` gives the journal to use from now on (itself, or one opened anew), or raises JournalError."""

    def record(self, sessions: Iterable[Session]) -> None: ...

    def forget(self, session_ids: Iterable[str]) -> None: ...

    def probe(self) -> None: ...

    def sessions(self) -> Iterator[Session]: ...

    def record_limits(self, periods: Sequence[LimitPeriod], circuit: str = "") -> None: ...

    def limits(self, circuit: str = "") -> list[LimitPeriod]: ...

    def reopen(self) -> Journal: ...


class NoJournal:
    """Sessions live in memory only: a restart forgets them."""

    def record(self, sessions: Iterable[Session]) -> None:
        pass

    def forget(self, session_ids: Iterable[str]) -> None:
        pass

    def probe(self) -> None:
        pass

    def sessions(self) -> Iterator[Session]:
        return iter(())

    def record_limits(self, periods: Sequence[LimitPeriod], circuit: str = "") -> None:
        pass

    def limits(self, circuit: str = "") -> list[LimitPeriod]:
        return []

    def reopen(self) -> Journal:
        return self


class UnreadJournal:
    """A journal that could not be opened or read: what sessions it keeps is not known, so nothing may be
    admitted, read or changed until it can be (reopen, tried every step)."""

    def __init__(self, path: str, error: Exception) -> None:
        self.path = path
        self.error = unreadable(path, error)

    def record(self, sessions: Iterable[Session]) -> None:
        raise JournalError(self.error)

    def forget(self, session_ids: Iterable[str]) -> None:
        raise JournalError(self.error)

    def probe(self) -> None:
        raise JournalError(self.error)

    def sessions(self) -> Iterator[Session]:
        raise JournalError(self.error)

    def record_limits(self, periods: Sequence[LimitPeriod], circuit: str = "") -> None:
        raise JournalError(self.error)

    def limits(self, circuit: str = "") -> list[LimitPeriod]:
        raise JournalError(self.error)

    def reopen(self) -> Journal:
        """The journal, if it can be opened now; JournalError if not."""
        return open_journal(self.path, or_unread=False)


def unreadable(path: str, error: Exception) -> str:
    return (
        f"the journal at {path} cannot be read ({error}): the substation does not know its sessions, and admits, "
        "reads and changes none until it can. Restore the file, or move it aside to start without its sessions"
    )


def open_journal(path: str, *, or_unread: bool = True) -> Journal:
    """The journal at `path` (none when it is empty). One that cannot be opened is an UnreadJournal (or, not
    `or_unread`, JournalError): the process stays up, unready, and opens it as soon as it can."""
    import sqlite3

    from substation_service.sqlite_journal import SqliteJournal

    if not path:
        return NoJournal()
    try:
        return SqliteJournal(path)
    except sqlite3.Error as error:
        if not or_unread:
            raise JournalError(unreadable(path, error)) from error
        log.error("%s", unreadable(path, error))
        return UnreadJournal(path, error)


class JournalWriter:
    """How a substation writes: what a client asks for is written before it is answered, or refused; what
    changes on its own (allocations, completions, starts from the queue) is written behind, at the first
    chance. `error` says why the journal cannot write, meanwhile."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.error: str | None = None
        # What changed on its own while the journal could not write: written, latest state, at the next chance.
        self._unwritten: dict[str, Session] = {}

    def record(self, sessions: list[Session]) -> bool:
        """Write what a client asked for, with whatever waits to be written; False when the journal cannot,
        and then nothing of the request may change."""
        try:
            self.journal.record([*self._unwritten.values(), *sessions])
        except JournalError as error:
            self.error = str(error)
            return False
        self._unwritten.clear()
        self.error = None
        return True

    def record_limits(self, periods: Sequence[LimitPeriod], circuit: str = "") -> bool:
        """Write the grid operator's schedule for the substation ("") or one of its circuits, replacing the last;
        False when the journal cannot (then it must not change)."""
        try:
            self.journal.record_limits(periods, circuit)
        except JournalError as error:
            self.error = str(error)
            return False
        return True

    def limits(self, circuit: str = "") -> list[LimitPeriod]:
        """The grid operator's schedule as kept, for the substation ("") or a circuit; JournalError when it cannot
        be read."""
        return self.journal.limits(circuit)

    def write_behind(self, sessions: list[Session]) -> None:
        """What changed on its own is written now if the journal can, else at the next chance."""
        if not sessions and not self._unwritten:
            return
        for session in sessions:
            self._unwritten[session.session_id] = session
        self.record([])

    def forget(self, session_ids: list[str]) -> None:
        """Rows kept longer than the history needs; left for next time if the journal cannot."""
        with contextlib.suppress(JournalError):
            self.journal.forget(session_ids)

    def sessions(self) -> list[Session]:
        """Every session kept; JournalError (and `error` says it) when they cannot be read."""
        try:
            kept = list(self.journal.sessions())
        except JournalError as error:
            self.error = str(error)
            raise
        self.error = None
        return kept

    def reopen(self) -> bool:
        """The journal opened anew; whether it could be."""
        try:
            self.journal = self.journal.reopen()
        except JournalError as error:
            self.error = str(error)
            return False
        return True

    def try_again(self) -> None:
        """A journal in error, tried again: what waits to be written, else a probe that writes."""
        if self._unwritten:
            self.record([])
            return
        try:
            self.journal.probe()
        except JournalError as error:
            self.error = str(error)
        else:
            self.error = None
