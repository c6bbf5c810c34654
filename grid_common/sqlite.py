"""The one way the services open SQLite: WAL, so readers never wait on the writer, and synchronous=NORMAL,
which keeps every committed transaction through a killed process (only a power cut can lose the last)."""

from __future__ import annotations

import sqlite3


def open_database(path: str) -> sqlite3.Connection:
    """Autocommit (each statement its own transaction unless BEGIN says otherwise), shared across greenlets:
    the caller orders its own calls with a lock."""
    db = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
    if path != ":memory:":
        db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db
