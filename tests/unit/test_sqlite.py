"""The services' one way of writing SQLite: free, at once and never waiting; locked, waiting its timeout."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from grid_common.sqlite import open_database, transaction


def busy_timeout_ms(db) -> int:
    return db.execute("PRAGMA busy_timeout").fetchone()[0]


def test_a_free_database_is_written_without_waiting_and_a_locked_one_after_the_lock_is_freed(tmp_path):
    path = str(tmp_path / "db.sqlite3")
    db = open_database(path, busy_timeout_s=2)
    db.execute("CREATE TABLE t (n INTEGER)")
    transaction(db, lambda d: d.execute("INSERT INTO t VALUES (1)"), busy_timeout_s=2)
    assert busy_timeout_ms(db) == 0, "a write that found the database free set no wait"

    holder = open_database(path, busy_timeout_s=2)
    holder.execute("BEGIN IMMEDIATE")
    threading.Timer(0.2, lambda: holder.execute("COMMIT")).start()
    transaction(db, lambda d: d.execute("INSERT INTO t VALUES (2)"), busy_timeout_s=2)
    assert db.execute("SELECT n FROM t ORDER BY n").fetchall() == [(1,), (2,)], "written once the lock was free"

    transaction(db, lambda d: d.execute("INSERT INTO t VALUES (3)"), busy_timeout_s=2)
    assert busy_timeout_ms(db) == 0, "the next free write waits for nothing again"


def test_a_lock_held_past_the_timeout_fails_and_changes_nothing(tmp_path):
    path = str(tmp_path / "db.sqlite3")
    db = open_database(path, busy_timeout_s=0.05)
    db.execute("CREATE TABLE t (n INTEGER)")
    holder = open_database(path, busy_timeout_s=2)
    holder.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError):
        transaction(db, lambda d: d.execute("INSERT INTO t VALUES (1)"), busy_timeout_s=0.05)
    holder.execute("COMMIT")
    assert db.execute("SELECT count(*) FROM t").fetchone() == (0,)
