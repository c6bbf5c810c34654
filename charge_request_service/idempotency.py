"""Idempotency-Key: the same key and body give the same session, never a second one.

A key goes through these states, the same in both stores (one state machine, `KeyRecord` and the `decide_*`
functions; the stores only keep records):
- pending: a request claimed it and is placing the session, for at most its lease (a request whose process
  died must not hold the key for ever). A pending key names, from its first claim, the random token its
  session is named with (`<substation>.<token>`), so that a retry can find the session and nobody can
  derive it from the key.
- done: the answer (201 or 202) is kept until the key expires (IDEMPOTENCY_TTL_S); duplicates replay it.
- unknown: an attempt ended without knowing whether a session was made (the balancer timed out, its answer
  was lost, or its lease ran out). Until `settle_after` (when no substation can still admit that attempt) a
  retry is told to come back; after it, one retry at a time takes the key (pending again, for a lease) and
  asks the balancer for the session by its token: found, it is the answer; proven absent, the retry places
  it anew; nobody can tell, it goes back to unknown. An unknown key stays unknown, whatever fails, until
  that is settled or the key's life (IDEMPOTENCY_TTL_S from its last change) ends.
A refusal (no capacity, bad input) removes the key, so a retry tries again.

Two stores: SQLite (the default: a file every worker process on a host shares, or memory), and Redis for
gateway replicas on several hosts (IDEMPOTENCY_REDIS_URL). Every change is one atomic step (a transaction;
WATCH/MULTI in Redis), and every claim has an owner, so a request that outlived its lease cannot overwrite
what a later one stored. A change whose answer was lost (a timeout) is made again by the same owner, and
comes to the same: each step is idempotent for its owner.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from grid_common.sqlite import Database, open_database, transaction

T = TypeVar("T")
log = logging.getLogger(__name__)
# Gateway workers on one host share the key file: one may wait this long for another's transaction (in an
# OS thread, not the event loop), then the request gets 503.
BUSY_TIMEOUT_S = 5.0


class KeyState(StrEnum):
    PENDING = "pending"
    DONE = "done"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Claimed:
    """This request owns the key (as `owner`): place the session named with `token`, then finish, release or
    mark unknown."""

    owner: str
    token: str


@dataclass(frozen=True)
class Replay:
    status: int
    body: dict


@dataclass(frozen=True)
class Mismatch:
    """The key was used with a different body."""


@dataclass(frozen=True)
class StillPending:
    """Another request with this key is placing its session, or finding out what an earlier one did, until
    `lease_until` (wall seconds) at the latest."""

    lease_until: float


@dataclass(frozen=True)
class Unknown:
    """An earlier attempt may have made a session, named with `token`. Before `settle_after` (wall seconds) it
    may still, and `owner` is None: come back then. After it, `owner` holds the key to look for the session
    and, if there is none, place it anew."""

    settle_after: float
    token: str
    owner: str | None = None


Claim = Claimed | Replay | Mismatch | StillPending | Unknown


class StoreFull(Exception):
    """Every key the store may hold is in progress: it takes no new one now."""


class StoreUnavailable(Exception):
    """The store cannot be read or written now. `maybe_changed`: the change was sent and may have been made
    (a timeout), rather than refused before it was sent."""

    def __init__(self, message: str, *, maybe_changed: bool = False) -> None:
        super().__init__(message)
        self.maybe_changed = maybe_changed


def fingerprint(raw_body: bytes) -> str:
    """The same request whatever its JSON's spacing or key order; a body that is not JSON, as sent."""
    try:
        canonical = json.dumps(json.loads(raw_body or b"null"), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, RecursionError):
        canonical = raw_body
    return hashlib.sha256(canonical).hexdigest()


def new_token() -> str:
    """A session's token: random, so that nobody derives a session id from a key they know or guess."""
    return secrets.token_hex(16)


def legacy_token(key: str) -> str:
    """The token earlier builds derived from a key: a key they stored has no token of its own."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


# --- the state machine ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class KeyRecord:
    """What a store keeps of a key. `expires_at` ends its life; `lease_until` ends a pending claim's hold;
    `settle_after` is when an unknown outcome can be looked for (kept while a retry looks)."""

    fingerprint: str
    state: KeyState
    expires_at: float
    owner: str = ""
    token: str = ""
    lease_until: float = 0.0
    settle_after: float | None = None
    status: int | None = None
    body: str | None = None  # the answer, as JSON


@dataclass(frozen=True)
class Policy:
    ttl_s: float  # a key's life from its last change
    lease_s: float  # how long a claim holds a key


def decide_claim(
    record: KeyRecord | None, policy: Policy, body_fingerprint: str, now: float, owner: str, token: str
) -> tuple[KeyRecord | None, Claim]:
    """What claiming the key does: the record to keep (None: leave it as it is) and the claim. Claiming again
    as the same owner (its first answer lost) comes to what the first claim came to."""
    if record is None or record.expires_at <= now:
        fresh = KeyRecord(
            body_fingerprint, KeyState.PENDING, now + policy.ttl_s, owner, token, lease_until=now + policy.lease_s
        )
        return fresh, Claimed(owner, token)
    if record.fingerprint != body_fingerprint:
        return None, Mismatch()
    if record.state == KeyState.DONE:
        return None, Replay(record.status or 201, json.loads(record.body or "{}"))
    token_of = record.token or token
    if record.state == KeyState.PENDING and record.owner == owner:
        if record.settle_after is None:
            return None, Claimed(owner, token_of)
        return None, Unknown(record.settle_after, token_of, owner)
    if record.state == KeyState.PENDING and record.lease_until > now:
        return None, StillPending(record.lease_until)
    # Unknown, or pending past its lease (its request died: when its lease ended, so had its attempt's deadline).
    settle_after = record.settle_after if record.settle_after is not None else record.lease_until
    if settle_after > now:
        return None, Unknown(settle_after, token_of)
    looking = replace(
        record, state=KeyState.PENDING, owner=owner, lease_until=now + policy.lease_s, settle_after=settle_after
    )
    return looking, Unknown(settle_after, token_of, owner)


def decide_finish(record: KeyRecord | None, policy: Policy, owner: str, status: int, body: dict, now: float):
    """Keep the answer for the key's life, counted from now; only the claim's owner may."""
    if record is None or record.owner != owner or record.state != KeyState.PENDING:
        return None
    return replace(record, state=KeyState.DONE, status=status, body=json.dumps(body), expires_at=now + policy.ttl_s)


def decide_mark_unknown(record: KeyRecord | None, policy: Policy, owner: str, settle_after: float, now: float):
    """No one knows whether the owner's attempt made a session: unknown for the key's life from then on."""
    if record is None or record.owner != owner or record.state != KeyState.PENDING:
        return None
    settle = max(settle_after, record.settle_after or settle_after)
    expires_at = max(record.expires_at, max(now, settle) + policy.ttl_s)
    return replace(record, state=KeyState.UNKNOWN, owner="", settle_after=settle, expires_at=expires_at)


# --- the stores ----------------------------------------------------------------------------------------
class KeyStore(Protocol):
    def claim(self, key: str, body_fingerprint: str, now: float, *, within_s: float) -> Claim:
        """`within_s`: how long the claim may take, a store that does not answer included."""
        ...

    def finish(self, key: str, owner: str, status: int, body: dict, now: float) -> None: ...

    def release(self, key: str, owner: str) -> None: ...

    def mark_unknown(self, key: str, owner: str, settle_after: float, now: float) -> None: ...


def _new_owner() -> str:
    return secrets.token_hex(8)


COLUMNS = ("fingerprint", "state", "expires_at", "owner", "token", "lease_until", "settle_after", "status", "body")


class SqliteKeyStore:
    """Keys in SQLite (WAL): every gateway worker on a host shares the file, and a restart keeps it; or in
    memory (`:memory:`) for one process, holding at most `max_keys` (the oldest answers make room)."""

    def __init__(self, path: str, ttl_s: float, lease_s: float, max_keys: int) -> None:
        self.policy = Policy(ttl_s, lease_s)
        self.max_keys = max_keys
        self.path = path
        self._lock = threading.Lock()
        self._db: Database | None = None
        with self._lock:
            try:
                self._opened()
            except StoreUnavailable as error:  # opened again at each use: fixed, it serves without a restart
                log.error("%s", error)

    def _opened(self) -> Database:
        """The key file, opened (and brought to this version's table) at its first use that can."""
        if self._db is not None:
            return self._db
        try:
            db = open_database(self.path, BUSY_TIMEOUT_S)
            self._create(db)
        except sqlite3.Error as error:
            raise StoreUnavailable(f"the Idempotency-Key file {self.path} cannot be opened: {error}") from error
        self._db = db
        return db

    def _create(self, db: Database) -> None:
        db.execute(
            "CREATE TABLE IF NOT EXISTS idempotency ("
            " key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, state TEXT NOT NULL, owner TEXT,"
            " status INTEGER, body TEXT, settle_after REAL, expires_at REAL NOT NULL, token TEXT,"
            " lease_until REAL)"
        )
        columns = {row[1] for row in db.execute("PRAGMA table_info(idempotency)")}
        for column, kind in (("owner", "TEXT"), ("settle_after", "REAL"), ("token", "TEXT"), ("lease_until", "REAL")):
            if column not in columns:  # a file from an earlier version
                db.execute(f"ALTER TABLE idempotency ADD COLUMN {column} {kind}")
        if "lease_until" not in columns:
            # Earlier builds kept a pending key's lease's end in `expires_at`, and cut an unknown one's to a
            # lease after its settling: they live a whole TTL from now on.
            db.execute(
                "UPDATE idempotency SET lease_until = expires_at, expires_at = expires_at + ? WHERE state != ?",
                (self.policy.ttl_s, KeyState.DONE),
            )
        db.execute("CREATE INDEX IF NOT EXISTS idempotency_expiry ON idempotency (expires_at)")

    def claim(self, key: str, body_fingerprint: str, now: float, *, within_s: float = BUSY_TIMEOUT_S) -> Claim:
        owner, token = _new_owner(), new_token()

        def claim(db: Database) -> Claim:
            # Keys past their life go as new keys come, through the index: no sweeper.
            db.execute("DELETE FROM idempotency WHERE expires_at <= ?", (now,))
            record = self._read(db, key)
            kept, claim = decide_claim(record, self.policy, body_fingerprint, now, owner, token)
            if kept is not None:
                if record is None:
                    self._make_room(db)
                self._write(db, key, kept)
            return claim

        return self._transaction(claim)

    def finish(self, key: str, owner: str, status: int, body: dict, now: float) -> None:
        self._change(key, lambda record: decide_finish(record, self.policy, owner, status, body, now))

    def release(self, key: str, owner: str) -> None:
        """No session was made: a retry with this key should try again."""
        self._transaction(lambda db: db.execute("DELETE FROM idempotency WHERE key = ? AND owner = ?", (key, owner)))

    def mark_unknown(self, key: str, owner: str, settle_after: float, now: float) -> None:
        self._change(key, lambda record: decide_mark_unknown(record, self.policy, owner, settle_after, now))

    def _change(self, key: str, decide: Callable[[KeyRecord | None], KeyRecord | None]) -> None:
        def change(db: Database) -> None:
            kept = decide(self._read(db, key))
            if kept is not None:
                self._write(db, key, kept)

        self._transaction(change)

    @staticmethod
    def _read(db: Database, key: str) -> KeyRecord | None:
        row = db.execute(f"SELECT {', '.join(COLUMNS)} FROM idempotency WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        fields = dict(zip(COLUMNS, row, strict=True))
        fields["state"] = KeyState(fields["state"])
        fields["owner"] = fields["owner"] or ""
        fields["token"] = fields["token"] or legacy_token(key)
        fields["lease_until"] = fields["lease_until"] or 0.0
        return KeyRecord(**fields)

    @staticmethod
    def _write(db: Database, key: str, record: KeyRecord) -> None:
        values = asdict(record)
        db.execute(
            f"INSERT OR REPLACE INTO idempotency (key, {', '.join(COLUMNS)}) VALUES (?{', ?' * len(COLUMNS)})",
            (key, *(values[column] for column in COLUMNS)),
        )

    def _make_room(self, db: Database) -> None:
        count = db.execute("SELECT COUNT(*) FROM idempotency").fetchone()[0]
        if count < self.max_keys:
            return
        deleted = db.execute(
            "DELETE FROM idempotency WHERE key IN (SELECT key FROM idempotency WHERE state = ?"
            " ORDER BY expires_at LIMIT ?)",
            (KeyState.DONE, count - self.max_keys + 1),
        ).rowcount
        if count - deleted >= self.max_keys:
            raise StoreFull

    def _transaction(self, work: Callable[[Database], T]) -> T:
        # One transaction of this process at a time (the lock, taken by the request's greenlet); SQLite waits
        # for other processes' in an OS thread, not in the event loop (grid_common/sqlite.py). A transaction
        # that fails changed nothing.
        with self._lock:
            db = self._opened()
            try:
                return transaction(db, work, BUSY_TIMEOUT_S)
            except sqlite3.Error as error:
                raise StoreUnavailable(str(error)) from error


class RedisKeyStore:
    """Keys in Redis (or Valkey), shared by every gateway replica: each key a hash, expiring with its life.
    Redis must not evict them (`maxmemory-policy noeviction`): a key forgotten early could start a second
    session. Full, Redis refuses new keys, and the gateway answers 503 (nothing started) for them.

    Connections come from a pool of `max_connections`; a request waits for a free one (at most `pool_wait_s`)
    rather than fail. redis-py's own retries are off: a change that timed out is made again here, by its
    owner, which the state machine makes safe."""

    def __init__(
        self,
        url: str,
        ttl_s: float,
        lease_s: float,
        *,
        timeout_s: float = 1.0,
        prefix: str = "idem:",
        max_connections: int = 64,
        pool_wait_s: float = 5.0,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        import redis  # only a gateway that uses Redis needs it
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.policy = Policy(ttl_s, lease_s)
        self.prefix = prefix
        self.sleep = sleep or _sleep
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=pool_wait_s,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        self._redis = redis.Redis(connection_pool=pool)

    def close(self) -> None:
        self._redis.close()
        self._redis.connection_pool.disconnect()

    def claim(self, key: str, body_fingerprint: str, now: float, *, within_s: float = 5.0) -> Claim:
        owner, token = _new_owner(), new_token()

        def claim(record: KeyRecord | None) -> tuple[KeyRecord | None, Claim]:
            return decide_claim(record, self.policy, body_fingerprint, now, owner, token)

        return self._change(key, claim, now, within_s)

    def finish(self, key: str, owner: str, status: int, body: dict, now: float) -> None:
        self._change(key, lambda record: (decide_finish(record, self.policy, owner, status, body, now), None), now)

    def release(self, key: str, owner: str) -> None:
        released = lambda record: (_RELEASED if record is not None and record.owner == owner else None, None)  # noqa: E731
        self._change(key, released, time.time())

    def mark_unknown(self, key: str, owner: str, settle_after: float, now: float) -> None:
        self._change(
            key, lambda record: (decide_mark_unknown(record, self.policy, owner, settle_after, now), None), now
        )

    def _change(
        self,
        key: str,
        decide: Callable[[KeyRecord | None], tuple[KeyRecord | None, T]],
        now: float,
        within_s: float = 2.0,
    ) -> T:
        """Read the key, decide, write what was decided, all unless another client changed the key meanwhile
        (WATCH), then again. A connection that could not be made changed nothing: StoreUnavailable at once. A
        call that timed out may have been made: made again (the same owner, the same outcome) until it
        answers or `within_s` has passed, then StoreUnavailable(maybe_changed=True)."""
        from redis.exceptions import ConnectionError, RedisError, TimeoutError, WatchError

        name = self.prefix + key
        give_up_at = time.monotonic() + within_s
        maybe_changed = False
        while True:
            try:
                with self._redis.pipeline() as pipe:
                    while True:
                        try:
                            pipe.watch(name)
                            record = _record_of(pipe.hgetall(name), key)
                            kept, result = decide(record)
                            if kept is not None:
                                pipe.multi()
                                if kept is _RELEASED:
                                    pipe.delete(name)
                                else:
                                    # redis-py types `mapping` as a Mapping keyed by a union: Mapping's key is
                                    # invariant, so no dict[str, str] matches it, though any is what it takes.
                                    pipe.hset(name, mapping=_fields_of(kept))  # type: ignore[arg-type]
                                    # Relative: Redis's clock need not be the gateway's. A second more, so
                                    # that Redis never drops a key before its life has ended here.
                                    pipe.pexpire(name, max(1, round((kept.expires_at - now) * 1000)) + 1000)
                                pipe.execute()
                            return result
                        except WatchError:
                            continue
            except (TimeoutError, ConnectionError) as error:
                sent = not _never_connected(error)
                maybe_changed = maybe_changed or sent
                if not sent and not maybe_changed:
                    raise StoreUnavailable(str(error)) from error
                if time.monotonic() >= give_up_at:
                    raise StoreUnavailable(str(error), maybe_changed=maybe_changed) from error
                self.sleep(0.05)
            except RedisError as error:  # refused as a whole (out of memory, a read-only replica): not made
                raise StoreUnavailable(str(error), maybe_changed=maybe_changed) from error


# Released: the key is deleted.
_RELEASED: Any = object()


def _never_connected(error: Exception) -> bool:
    """Whether redis-py failed before sending anything: no connection could be made ("Error 111 connecting to
    host:port", "Timeout connecting to server": its messages for a failed connect), or none was free in the
    pool ("No connection available")."""
    text = str(error)
    return "connecting to" in text or "No connection available" in text


def _record_of(fields: dict, key: str) -> KeyRecord | None:
    if not fields:
        return None
    text = {name.decode(): value.decode() for name, value in fields.items()}

    def number(name: str) -> float | None:
        return float(text[name]) if text.get(name) else None

    expires = number("expires") or 0.0
    return KeyRecord(
        fingerprint=text.get("fingerprint", ""),
        state=KeyState(text.get("state", KeyState.UNKNOWN)),
        # Earlier builds kept a pending key's lease's end in `expires`, and it lived no longer.
        expires_at=number("expires_at") or expires,
        owner=text.get("owner", ""),
        token=text.get("token") or legacy_token(key),
        lease_until=number("lease_until") or expires,
        settle_after=number("settle_after"),
        status=int(text["status"]) if text.get("status") else None,
        body=text.get("body"),
    )


def _fields_of(record: KeyRecord) -> dict[str, str]:
    fields = {name: value for name, value in asdict(record).items() if value is not None}
    return {name: repr(value) if isinstance(value, float) else str(value) for name, value in fields.items()}


def _sleep(seconds: float) -> None:
    time.sleep(seconds)  # looked up at call time: gevent patches it after this module may be imported


def open_store(
    *,
    redis_url: str,
    path: str,
    ttl_s: float,
    lease_s: float,
    max_keys: int,
    redis_max_connections: int = 64,
    pool_wait_s: float = 5.0,
) -> SqliteKeyStore | RedisKeyStore:
    if redis_url:
        return RedisKeyStore(redis_url, ttl_s, lease_s, max_connections=redis_max_connections, pool_wait_s=pool_wait_s)
    return SqliteKeyStore(path, ttl_s, lease_s, max_keys)
