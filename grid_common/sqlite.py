"""The one way the services open and write SQLite: WAL, so readers never wait on the writer, and
synchronous=NORMAL, which keeps every committed transaction through a killed process (only a power cut can
lose the last).

A write transaction runs in the event loop when the database is free: a small transaction that waits for no
lock takes tens of microseconds, less than the hand-over to a thread and back. When another connection
holds the lock, it runs again in an OS thread of gevent's pool (`off_the_loop`), waiting there for the lock,
never in the event loop: the process goes on answering everything that does not need the database.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Database(sqlite3.Connection):
    """A connection that remembers how long it waits for a lock, so that a transaction sets it (a PRAGMA each
    way) only on the rare path that waits."""

    lock_wait_ms: int = 0

    def wait_for_locks(self, milliseconds: int) -> None:
        if milliseconds != self.lock_wait_ms:
            self.execute(f"PRAGMA busy_timeout = {milliseconds}")
            self.lock_wait_ms = milliseconds


def open_database(path: str, busy_timeout_s: float) -> Database:
    """Autocommit (each statement its own transaction unless BEGIN says otherwise), shared across greenlets
    and threads: the caller orders its own calls with a lock. A locked database is waited for at most
    `busy_timeout_s` (in the caller's thread: write with `transaction`), then sqlite3.OperationalError."""
    db = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False, factory=Database)
    db.lock_wait_ms = round(busy_timeout_s * 1000)
    if path != ":memory:":
        db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


def transaction(db: Database, work: Callable[[Database], T], busy_timeout_s: float) -> T:
    """`work(db)` in one write transaction (BEGIN IMMEDIATE: the write lock first, or nothing changed), its
    result; rolled back if it raises. In the event loop when the database is free; when it is locked, in an
    OS thread, waiting at most `busy_timeout_s` for the lock, then sqlite3.OperationalError."""

    def attempt() -> T:
        db.execute("BEGIN IMMEDIATE")
        try:
            result = work(db)
            db.execute("COMMIT")
            return result
        except BaseException:
            db.execute("ROLLBACK")
            raise

    return _in_loop_unless_locked(db, attempt, busy_timeout_s)


def statement(db: Database, sql: str, parameters: tuple, busy_timeout_s: float) -> None:
    """One statement, its own transaction (autocommit: all of it or nothing), written as `transaction`
    writes: without its BEGIN and COMMIT, two calls into SQLite fewer for the most common write."""
    _in_loop_unless_locked(db, lambda: db.execute(sql, parameters), busy_timeout_s)


def _in_loop_unless_locked(db: Database, attempt: Callable[[], T], busy_timeout_s: float) -> T:
    db.wait_for_locks(0)  # in the loop, a lock is never waited for
    try:
        return attempt()
    except sqlite3.OperationalError as error:
        if not is_locked(error):
            raise
    db.wait_for_locks(round(busy_timeout_s * 1000))
    return off_the_loop(attempt)


def is_locked(error: sqlite3.OperationalError) -> bool:
    return getattr(error, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def off_the_loop(work: Callable[[], T]) -> T:
    """Run `work` in gevent's thread pool when gevent runs the process (the greenlet waits, the loop goes
    on); directly otherwise."""
    try:
        from gevent import get_hub, monkey
    except ImportError:  # pragma: no cover - the services always have gevent
        return work()
    if not monkey.is_module_patched("threading"):
        return work()
    return get_hub().threadpool.apply(work)
