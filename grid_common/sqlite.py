"""The one way the services open SQLite: WAL, so readers never wait on the writer, and synchronous=NORMAL,
which keeps every committed transaction through a killed process (only a power cut can lose the last).

A statement that waits for a lock waits in an OS thread of gevent's pool (`off_the_loop`), never in the
event loop: the process goes on answering everything that does not need the database meanwhile.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def open_database(path: str, busy_timeout_s: float = 5.0) -> sqlite3.Connection:
    """Autocommit (each statement its own transaction unless BEGIN says otherwise), shared across greenlets
    and threads: the caller orders its own calls with a lock. A locked database is waited for at most
    `busy_timeout_s`, then sqlite3.OperationalError."""
    db = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
    if path != ":memory:":
        db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


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
