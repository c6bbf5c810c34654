"""Idempotency-Key: the same key and body give the same session, never a second one.

A key is claimed by the first request that brings it; duplicates that arrive while it is being placed
wait for its answer, and later ones get the stored answer, until the key expires. Only a started session
is stored: a refusal (no capacity, balancer down) releases the key, so a retry with the same key tries
again. The store is SQLite in WAL mode, so every gateway worker process on a host shares it and a
restart keeps it.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from grid_common.clock import steady_time
from grid_common.sqlite import open_database

PENDING, DONE = "pending", "done"


@dataclass(frozen=True)
class Claimed:
    """This request owns the key: place the session, then `finish` or `release`."""


@dataclass(frozen=True)
class Replay:
    status: int
    body: dict


@dataclass(frozen=True)
class Mismatch:
    """The key was used with a different body."""


@dataclass(frozen=True)
class StillPending:
    """Another request with this key did not finish within the wait."""


def fingerprint(raw_body: bytes) -> str:
    """The same request whatever its JSON's spacing or key order; a body that is not JSON, as sent."""
    try:
        canonical = json.dumps(json.loads(raw_body or b"null"), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, RecursionError):
        canonical = raw_body
    return hashlib.sha256(canonical).hexdigest()


def _sleep(seconds: float) -> None:
    time.sleep(seconds)  # looked up at call time: gevent patches it after this module may be imported


class IdempotencyStore:
    def __init__(
        self,
        path: str,
        ttl_s: float,
        pending_lease_s: float,
        *,
        clock: Callable[[], float] = steady_time,
        sleep: Callable[[float], None] = _sleep,
    ) -> None:
        self.ttl_s = ttl_s
        # A request that claimed a key and died (its process killed) must not hold it for a whole TTL.
        self.pending_lease_s = pending_lease_s
        self.clock = clock
        self.sleep = sleep
        # One connection per process, behind a lock: every statement takes microseconds, and SQLite's own
        # locking (with a busy timeout) orders the gateway's worker processes.
        self._lock = threading.Lock()
        self._db = open_database(path)
        with self._lock:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS idempotency ("
                " key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, state TEXT NOT NULL,"
                " status INTEGER, body TEXT, expires_at REAL NOT NULL)"
            )
            self._db.execute("CREATE INDEX IF NOT EXISTS idempotency_expiry ON idempotency (expires_at)")

    def claim(self, key: str, body_fingerprint: str, wait_s: float) -> Claimed | Replay | Mismatch | StillPending:
        """Own the key, or learn what the request that owns it got, waiting up to `wait_s` for it."""
        deadline = self.clock() + wait_s
        while True:
            outcome = self._try_claim(key, body_fingerprint)
            if not isinstance(outcome, StillPending) or self.clock() >= deadline:
                return outcome
            self.sleep(0.02)

    def _try_claim(self, key: str, body_fingerprint: str) -> Claimed | Replay | Mismatch | StillPending:
        now = self.clock()
        with self._lock:
            return self._claim_locked(key, body_fingerprint, now)

    def _claim_locked(self, key: str, body_fingerprint: str, now: float) -> Claimed | Replay | Mismatch | StillPending:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            # Expired keys go as new ones come, through the index: no sweeper, and the table stays small.
            db.execute("DELETE FROM idempotency WHERE expires_at <= ?", (now,))
            row = db.execute(
                "SELECT fingerprint, state, status, body FROM idempotency WHERE key = ?", (key,)
            ).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO idempotency (key, fingerprint, state, expires_at) VALUES (?, ?, ?, ?)",
                    (key, body_fingerprint, PENDING, now + self.pending_lease_s),
                )
                outcome: Claimed | Replay | Mismatch | StillPending = Claimed()
            elif row[0] != body_fingerprint:
                outcome = Mismatch()
            elif row[1] == DONE:
                outcome = Replay(row[2], json.loads(row[3]))
            else:
                outcome = StillPending()
            db.execute("COMMIT")
            return outcome
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def finish(self, key: str, status: int, body: dict) -> None:
        """Keep the answer for the key's lifetime, counted from now."""
        with self._lock:
            self._db.execute(
                "UPDATE idempotency SET state = ?, status = ?, body = ?, expires_at = ? WHERE key = ?",
                (DONE, status, json.dumps(body), self.clock() + self.ttl_s, key),
            )

    def release(self, key: str) -> None:
        """No session was started: a retry with this key should try again."""
        with self._lock:
            self._db.execute("DELETE FROM idempotency WHERE key = ? AND state = ?", (key, PENDING))
