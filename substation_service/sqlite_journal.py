"""A journal in SQLite (journal.py says what a journal is): WAL mode, written as sessions change.

Every admission, start, reallocation that changes a session's power, stop and completion is one small
transaction. WAL with synchronous=NORMAL keeps what was committed when the process is killed (SIGKILL, a
crash): the data is in the operating system's hands. Only a power cut can lose the last few transactions.
"""

from __future__ import annotations

import json
import sqlite3
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from operator import attrgetter

from grid_common.protocol import SchedulePeriod, SessionState
from grid_common.sqlite import open_database, statement, transaction
from substation_service.grid_limits import LimitPeriod
from substation_service.journal import JournalError, unreadable
from substation_service.sessions import Session

# A journal held by another writer is given up on quickly: the substation answers meanwhile (503 for what
# needs the journal, unready), and writes what it could not once the journal is free again.
BUSY_TIMEOUT_S = 0.25

# 3: the table is WITHOUT ROWID. A rowid table keeps its text primary key in a second b-tree, and every
# write changes both; keyed by the session id alone, a write changes one b-tree.
# 4: the charger a session is plugged into, its transaction, and the charger's default power (OCPP).
# 5: the car's phases, the grid phase a 1-phase car draws on, the circuit its charger hangs on, and whether its
#    charger can switch it to one phase (and on which).
# 6: when its driver leaves (planning.py).
SCHEMA_VERSION = 6
# The columns that hold the session's attribute of the same name; the schedule, last, is kept as JSON.
ATTRIBUTE_COLUMNS = (
    "session_id",
    "vehicle_id",
    "energy_kwh",
    "min_kw",
    "max_kw",
    "priority",
    "requested_at",
    "sequence",
    "state",
    "allocated_kw",
    "delivered_kwh",
    "delivered_at",
    "started_at",
    "ended_at",
    "charger_id",
    "transaction_id",
    "failsafe_kw",
    "phases",
    "grid_phase",
    "circuit",
    "switchable",
    "wired_phase",
    "departure_at",
)
COLUMNS = (*ATTRIBUTE_COLUMNS, "schedule")
# What a row of an earlier version (2 to 5) lacks becomes this: on no charger, a car on three phases, no departure.
ADDED_SINCE_2 = {
    "charger_id": "NULL",
    "transaction_id": "NULL",
    "failsafe_kw": "0",
    "phases": "3",
    "grid_phase": "NULL",
    "circuit": "NULL",
    "switchable": "0",
    "wired_phase": "NULL",
    "departure_at": "NULL",
}
# What version 0.2 meant by a session's minimum: the lesser of its power and 1.4 kW.
FIXED_POWER_MIN_KW = 1.4
_attributes_of = attrgetter(*ATTRIBUTE_COLUMNS)
INSERT = f"INSERT INTO sessions ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
# An update in place: INSERT OR REPLACE deletes the row and inserts it anew, twice the work in the b-tree.
UPSERT = (
    f"{INSERT} ON CONFLICT (session_id)"
    f" DO UPDATE SET {', '.join(f'{column} = excluded.{column}' for column in COLUMNS[1:])}"
)
# One row a probe rewrites: a real write (a page to the log), as the sessions' are, so that a probe finds a
# full disk as well as a held lock.
PROBE_TABLE = "CREATE TABLE IF NOT EXISTS probe (id INTEGER PRIMARY KEY, at REAL NOT NULL)"
PROBE = "INSERT OR REPLACE INTO probe VALUES (1, julianday('now'))"
# The grid operator's schedule (grid_limits.py), replaced whole at each change. A table of its own, made when
# missing: a journal of an earlier version reads as one without limits.
LIMITS_TABLE = (
    "CREATE TABLE IF NOT EXISTS grid_limits"
    " (start REAL NOT NULL, end REAL NOT NULL, limit_kw REAL NOT NULL, circuit TEXT NOT NULL DEFAULT '')"
)
# Limits on circuits (schema 5): a table of schema 4 gains the column, its rows the substation's ('').
LIMITS_BY_CIRCUIT = "ALTER TABLE grid_limits ADD COLUMN circuit TEXT NOT NULL DEFAULT ''"
CREATE = (
    "CREATE TABLE IF NOT EXISTS sessions ("
    " session_id TEXT PRIMARY KEY, vehicle_id TEXT NOT NULL, energy_kwh REAL NOT NULL, min_kw REAL NOT NULL,"
    " max_kw REAL NOT NULL, priority INTEGER NOT NULL, requested_at REAL NOT NULL, sequence INTEGER NOT NULL,"
    " state TEXT NOT NULL, allocated_kw REAL NOT NULL, delivered_kwh REAL NOT NULL, delivered_at REAL NOT NULL,"
    " started_at REAL, ended_at REAL, charger_id TEXT, transaction_id TEXT, failsafe_kw REAL NOT NULL DEFAULT 0,"
    " phases INTEGER NOT NULL DEFAULT 3, grid_phase TEXT, circuit TEXT, switchable INTEGER NOT NULL DEFAULT 0,"
    " wired_phase TEXT, departure_at REAL, schedule TEXT NOT NULL) WITHOUT ROWID"
)


class SqliteJournal:
    def __init__(self, path: str) -> None:
        # The substation's own lock orders every call, so one connection shared by its greenlets is safe.
        self._db = open_database(path, BUSY_TIMEOUT_S)
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        has_table = self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'sessions'").fetchone()
        if has_table and version < 2:
            self._rebuild(self._rows_of_fixed_power)
        elif has_table and version < SCHEMA_VERSION:
            self._rebuild(self._rows_before)
        self._db.execute(CREATE)
        self._db.execute(PROBE_TABLE)
        self._db.execute(LIMITS_TABLE)
        if "circuit" not in {row[1] for row in self._db.execute("PRAGMA table_info(grid_limits)")}:
            self._db.execute(LIMITS_BY_CIRCUIT)
        self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self.path = path

    def record(self, sessions: Iterable[Session]) -> None:
        """One transaction for all of them, or JournalError and none."""
        rows = [self._row(session) for session in sessions]
        if len(rows) == 1:  # most writes (an admission, a stop): one statement, no transaction around it
            self._write(lambda: statement(self._db, UPSERT, rows[0], BUSY_TIMEOUT_S))
        else:
            self._write(lambda: transaction(self._db, lambda db: db.executemany(UPSERT, rows), BUSY_TIMEOUT_S))

    def probe(self) -> None:
        """Whether the journal can write now: JournalError if not."""
        self._write(
            lambda: statement(self._db, "INSERT OR REPLACE INTO probe VALUES (1, julianday('now'))", (), BUSY_TIMEOUT_S)
        )

    def reopen(self) -> SqliteJournal:
        return self

    def forget(self, session_ids: Iterable[str]) -> None:
        rows = [(i,) for i in session_ids]
        delete = "DELETE FROM sessions WHERE session_id = ?"
        self._write(lambda: transaction(self._db, lambda db: db.executemany(delete, rows), BUSY_TIMEOUT_S))

    @staticmethod
    def _write(write: Callable[[], object]) -> None:
        try:
            write()
        except sqlite3.Error as error:
            raise JournalError(f"the journal cannot write: {error}") from error

    def sessions(self) -> Iterator[Session]:
        """Every session kept, in order of arrival; JournalError when they cannot be read."""
        try:
            rows = self._db.execute(f"SELECT {', '.join(COLUMNS)} FROM sessions ORDER BY sequence").fetchall()
        except sqlite3.Error as error:
            raise JournalError(unreadable(self.path, error)) from error
        for row in rows:
            fields = dict(zip(COLUMNS, row, strict=True))
            periods = [SchedulePeriod(start, limit) for start, limit in json.loads(fields.pop("schedule"))]
            yield Session(**{**fields, "state": SessionState(fields["state"])}, schedule=deque(periods))

    def record_limits(self, periods: Sequence[LimitPeriod], circuit: str = "") -> None:
        """The substation's schedule (circuit "") or a circuit's, replacing its last, in one transaction;
        JournalError and no change if not."""
        rows = [(p.start, p.end, p.limit_kw, circuit) for p in periods]

        def replace(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM grid_limits WHERE circuit = ?", (circuit,))
            db.executemany("INSERT INTO grid_limits (start, end, limit_kw, circuit) VALUES (?, ?, ?, ?)", rows)

        self._write(lambda: transaction(self._db, replace, BUSY_TIMEOUT_S))

    def limits(self, circuit: str = "") -> list[LimitPeriod]:
        try:
            rows = self._db.execute(
                "SELECT start, end, limit_kw FROM grid_limits WHERE circuit = ? ORDER BY start", (circuit,)
            ).fetchall()
        except sqlite3.Error as error:
            raise JournalError(unreadable(self.path, error)) from error
        return [LimitPeriod(*row) for row in rows]

    def close(self) -> None:
        self._db.close()

    @staticmethod
    def _row(session: Session) -> tuple:
        schedule = json.dumps([[period.start, period.limit_kw] for period in session.schedule])
        return (*_attributes_of(session), schedule)

    def _rebuild(self, rows_before: Callable[[sqlite3.Connection], Iterable[tuple]]) -> None:
        """The table made anew in the current schema, from the rows `rows_before` reads of the old one
        (renamed sessions_before), all in one transaction: a crash midway leaves the old table as it was."""

        def rebuild(db: sqlite3.Connection) -> None:
            db.execute("ALTER TABLE sessions RENAME TO sessions_before")
            db.execute(CREATE)
            db.executemany(INSERT, list(rows_before(db)))
            db.execute("DROP TABLE sessions_before")

        transaction(self._db, rebuild, BUSY_TIMEOUT_S)

    @staticmethod
    def _rows_before(db: sqlite3.Connection) -> Iterable[tuple]:
        """Rows of versions 2 to 5, with what they lack filled in (ADDED_SINCE_2)."""
        kept = {row[1] for row in db.execute("PRAGMA table_info(sessions_before)")}
        selected = [column if column in kept else ADDED_SINCE_2[column] for column in COLUMNS]
        return db.execute(f"SELECT {', '.join(selected)} FROM sessions_before")

    @staticmethod
    def _rows_of_fixed_power(db: sqlite3.Connection) -> list[tuple]:
        """Version 0.2 kept each session at one power for its whole life: it becomes a session whose
        maximum is that power, and whose energy so far counts from its start."""
        old = db.execute(
            "SELECT session_id, vehicle_id, power_kw, energy_kwh, started_at, ends_at, state, ended_at, rowid"
            " FROM sessions_before"
        ).fetchall()
        rows = []
        for key, vehicle, power, energy, started, ends, state, ended, rowid in old:
            if state == SessionState.CHARGING:  # at its power since it started: the catch-up counts its energy
                delivered, at, allocated = 0.0, started, power
            else:  # energy flowed evenly from its start to its end, or until it was stopped
                share = (
                    1.0 if state == SessionState.COMPLETED or ends <= started else (ended - started) / (ends - started)
                )
                delivered, at, allocated = energy * min(1.0, share), ended, 0.0
            minimum = min(power, FIXED_POWER_MIN_KW)
            schedule = json.dumps([[started, power]])
            rows.append(
                (key, vehicle, energy, minimum, power, 0, started, rowid, state, allocated, delivered, at, started,
                 ended, None, None, 0.0, 3, None, None, 0, None, None, schedule)
            )  # fmt: skip
        return rows
