"""Idempotency-Key: the same key and body give the same session, never a second one.

A key goes through these states, the same in both stores:
- pending: a request claimed it and is placing the session (for at most its lease: a request whose
  process died must not hold the key for ever);
- done: the answer (201 or 202) is kept until the key expires (IDEMPOTENCY_TTL_S); duplicates replay it;
- unknown: the attempt ended without knowing whether a session was made (the balancer timed out, or its
  answer was lost), or its lease ran out. A retry waits until no substation can still admit that attempt
  (its deadline, `settle_after`), then asks the balancer for the session named after the key: found, it is
  the answer; not found, the retry places it anew. A refusal (no capacity, bad input) removes the key, so
  a retry tries again.

Two stores: SQLite (the default: a file every worker process on a host shares, or memory), and Redis for
gateway replicas on several hosts (IDEMPOTENCY_REDIS_URL), each state change one atomic step (a
transaction, a Lua script). Every claim has an owner, so a request that outlived its lease cannot
overwrite what a later one stored.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from typing import Protocol

from grid_common.sqlite import open_database, transaction

PENDING, DONE, UNKNOWN = "pending", "done", "unknown"
# Gateway workers on one host share the key file: one may wait this long for another's transaction (in an
# OS thread, not the event loop), then the request gets 503.
BUSY_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Claimed:
    """This request owns the key (as `owner`): place the session, then finish, release or mark unknown."""

    owner: str


@dataclass(frozen=True)
class Replay:
    status: int
    body: dict


@dataclass(frozen=True)
class Mismatch:
    """The key was used with a different body."""


@dataclass(frozen=True)
class StillPending:
    """Another request with this key is placing its session now."""


@dataclass(frozen=True)
class Unknown:
    """An earlier attempt may have made a session. Before `settle_after` (wall seconds) it may still; after it,
    `owner` may look for it and, if there is none, place it anew."""

    settle_after: float
    owner: str


Claim = Claimed | Replay | Mismatch | StillPending | Unknown


class StoreFull(Exception):
    """Every key the store may hold is in progress: it takes no new one now."""


class StoreUnavailable(Exception):
    """The store cannot be read or written now (Redis unreachable, SQLite locked past its timeout)."""


def fingerprint(raw_body: bytes) -> str:
    """The same request whatever its JSON's spacing or key order; a body that is not JSON, as sent."""
    try:
        canonical = json.dumps(json.loads(raw_body or b"null"), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, RecursionError):
        canonical = raw_body
    return hashlib.sha256(canonical).hexdigest()


def session_token(key: str) -> str:
    """The token the sessions of a key are named with (`<substation>.<token>`): a retry can find them."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


class KeyStore(Protocol):
    def claim(self, key: str, body_fingerprint: str, now: float) -> Claim: ...

    def finish(self, key: str, owner: str, status: int, body: dict, now: float) -> None: ...

    def release(self, key: str, owner: str) -> None: ...

    def mark_unknown(self, key: str, owner: str, settle_after: float, now: float) -> None: ...


def _new_owner() -> str:
    return secrets.token_hex(8)


class SqliteKeyStore:
    """Keys in SQLite (WAL): every gateway worker on a host shares the file, and a restart keeps it; or in
    memory (`:memory:`) for one process, holding at most `max_keys` (the oldest answers make room)."""

    def __init__(self, path: str, ttl_s: float, lease_s: float, max_keys: int) -> None:
        self.ttl_s = ttl_s
        # A request that claimed a key and died (its process killed) holds it for its lease, not the TTL.
        self.lease_s = lease_s
        self.max_keys = max_keys
        self._lock = threading.Lock()
        self._db = open_database(path, BUSY_TIMEOUT_S)
        with self._lock:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS idempotency ("
                " key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, state TEXT NOT NULL, owner TEXT,"
                " status INTEGER, body TEXT, settle_after REAL, expires_at REAL NOT NULL)"
            )
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(idempotency)")}
            for column, kind in (("owner", "TEXT"), ("settle_after", "REAL")):
                if column not in columns:  # a file from version 0.2
                    self._db.execute(f"ALTER TABLE idempotency ADD COLUMN {column} {kind}")
            self._db.execute("CREATE INDEX IF NOT EXISTS idempotency_expiry ON idempotency (expires_at)")

    def claim(self, key: str, body_fingerprint: str, now: float) -> Claim:
        return self._transaction(lambda db: self._claim(db, key, body_fingerprint, now))

    def _claim(self, db, key: str, body_fingerprint: str, now: float) -> Claim:
        # Answers past their TTL go as new keys come, through the index: no sweeper.
        db.execute("DELETE FROM idempotency WHERE expires_at <= ? AND state != ?", (now, PENDING))
        row = db.execute(
            "SELECT fingerprint, state, status, body, settle_after, expires_at FROM idempotency WHERE key = ?", (key,)
        ).fetchone()
        owner = _new_owner()
        if row is None:
            self._make_room(db)
            db.execute(
                "INSERT INTO idempotency (key, fingerprint, state, owner, expires_at) VALUES (?, ?, ?, ?, ?)",
                (key, body_fingerprint, PENDING, owner, now + self.lease_s),
            )
            return Claimed(owner)
        stored_fingerprint, state, status, body, settle_after, expires_at = row
        if stored_fingerprint != body_fingerprint:
            return Mismatch()
        if state == DONE:
            return Replay(status, json.loads(body))
        if state == PENDING and expires_at > now:
            return StillPending()
        # Unknown, or pending past its lease (its request died): whoever comes now may find out.
        settle_after = settle_after if state == UNKNOWN else expires_at
        db.execute(
            "UPDATE idempotency SET state = ?, owner = ?, settle_after = ?, expires_at = ? WHERE key = ?",
            (UNKNOWN, owner, settle_after, max(now, settle_after) + self.lease_s, key),
        )
        return Unknown(settle_after, owner)

    def _make_room(self, db) -> None:
        count = db.execute("SELECT COUNT(*) FROM idempotency").fetchone()[0]
        if count < self.max_keys:
            return
        deleted = db.execute(
            "DELETE FROM idempotency WHERE key IN (SELECT key FROM idempotency WHERE state = ?"
            " ORDER BY expires_at LIMIT ?)",
            (DONE, count - self.max_keys + 1),
        ).rowcount
        if count - deleted >= self.max_keys:
            raise StoreFull

    def finish(self, key: str, owner: str, status: int, body: dict, now: float) -> None:
        """Keep the answer for the key's lifetime, counted from now."""
        self._transaction(
            lambda db: db.execute(
                "UPDATE idempotency SET state = ?, status = ?, body = ?, expires_at = ? WHERE key = ? AND owner = ?",
                (DONE, status, json.dumps(body), now + self.ttl_s, key, owner),
            )
        )

    def release(self, key: str, owner: str) -> None:
        """No session was made: a retry with this key should try again."""
        self._transaction(lambda db: db.execute("DELETE FROM idempotency WHERE key = ? AND owner = ?", (key, owner)))

    def mark_unknown(self, key: str, owner: str, settle_after: float, now: float) -> None:
        self._transaction(
            lambda db: db.execute(
                "UPDATE idempotency SET state = ?, settle_after = ?, expires_at = ? WHERE key = ? AND owner = ?",
                (UNKNOWN, settle_after, max(now, settle_after) + self.ttl_s, key, owner),
            )
        )

    def _transaction(self, work):
        # One transaction of this process at a time (the lock, taken by the request's greenlet); SQLite waits
        # for other processes' in an OS thread, not in the event loop (grid_common/sqlite.py).
        with self._lock:
            try:
                return transaction(self._db, work, BUSY_TIMEOUT_S)
            except sqlite3.Error as error:
                raise StoreUnavailable(str(error)) from error


# Each script reads and changes one key atomically. The key's hash holds: fingerprint, state, owner, status,
# body, settle_after, expires (the end of a pending claim's lease, or of a key's life, in the clock of `now`).
# Redis also expires the key itself a little later, so that it never outlives its use.
CLAIM = """
local key, fingerprint, now, lease, owner = KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local stored = redis.call('HMGET', key, 'fingerprint', 'state', 'status', 'body', 'settle_after', 'expires')
if stored[1] and stored[2] ~= 'pending' and tonumber(stored[6]) <= now then
  redis.call('DEL', key)
  stored[1] = false
end
if not stored[1] then
  redis.call('HSET', key, 'fingerprint', fingerprint, 'state', 'pending', 'owner', owner, 'expires', now + lease)
  redis.call('PEXPIRE', key, math.ceil(lease * 1000) + 1000)
  return {'claimed'}
end
if stored[1] ~= fingerprint then return {'mismatch'} end
if stored[2] == 'done' then return {'replay', stored[3], stored[4]} end
if stored[2] == 'pending' and tonumber(stored[6]) > now then return {'pending'} end
local settle = stored[5]
if stored[2] ~= 'unknown' then settle = stored[6] end
local expires = math.max(now, tonumber(settle)) + lease
redis.call('HSET', key, 'state', 'unknown', 'owner', owner, 'settle_after', settle, 'expires', expires)
redis.call('PEXPIRE', key, math.ceil((expires - now) * 1000) + 1000)
return {'unknown', settle}
"""
# The scripts that change a claim do so only for the request that owns it.
FINISH = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
local ttl = tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 'state', 'done', 'status', ARGV[2], 'body', ARGV[3], 'expires', tonumber(ARGV[5]) + ttl)
redis.call('PEXPIRE', KEYS[1], math.ceil(ttl * 1000) + 1000)
return 1
"""
RELEASE = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""
MARK_UNKNOWN = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
local lifetime = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'state', 'unknown', 'settle_after', ARGV[2], 'expires', tonumber(ARGV[4]) + lifetime)
redis.call('PEXPIRE', KEYS[1], math.ceil(lifetime * 1000) + 1000)
return 1
"""


class RedisKeyStore:
    """Keys in Redis (or Valkey), shared by every gateway replica. Each key expires with its TTL; the memory
    they may take is Redis's own `maxmemory` (with `volatile-ttl` eviction, the oldest answers go first)."""

    def __init__(self, url: str, ttl_s: float, lease_s: float, *, timeout_s: float = 1.0, prefix: str = "idem:"):
        import redis  # only a gateway that uses Redis needs it

        self.ttl_s = ttl_s
        self.lease_s = lease_s
        self.prefix = prefix
        self._redis = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        self._claim = self._redis.register_script(CLAIM)
        self._finish = self._redis.register_script(FINISH)
        self._release = self._redis.register_script(RELEASE)
        self._mark_unknown = self._redis.register_script(MARK_UNKNOWN)

    def _run(self, script, key: str, args: list):
        from redis.exceptions import RedisError

        try:
            return script(keys=[self.prefix + key], args=args)
        except RedisError as error:
            raise StoreUnavailable(str(error)) from error

    def claim(self, key: str, body_fingerprint: str, now: float) -> Claim:
        owner = _new_owner()
        answer = self._run(self._claim, key, [body_fingerprint, repr(now), repr(self.lease_s), owner])
        kind = answer[0].decode()
        if kind == "claimed":
            return Claimed(owner)
        if kind == "mismatch":
            return Mismatch()
        if kind == "replay":
            return Replay(int(answer[1]), json.loads(answer[2]))
        if kind == "pending":
            return StillPending()
        return Unknown(float(answer[1]), owner)

    def finish(self, key: str, owner: str, status: int, body: dict, now: float) -> None:
        self._run(self._finish, key, [owner, status, json.dumps(body), repr(self.ttl_s), repr(now)])

    def release(self, key: str, owner: str) -> None:
        self._run(self._release, key, [owner])

    def mark_unknown(self, key: str, owner: str, settle_after: float, now: float) -> None:
        lifetime = max(now, settle_after) - now + self.ttl_s
        self._run(self._mark_unknown, key, [owner, repr(settle_after), repr(lifetime), repr(now)])


def open_store(
    *, redis_url: str, path: str, ttl_s: float, lease_s: float, max_keys: int
) -> SqliteKeyStore | RedisKeyStore:
    if redis_url:
        return RedisKeyStore(redis_url, ttl_s, lease_s)
    return SqliteKeyStore(path, ttl_s, lease_s, max_keys)
