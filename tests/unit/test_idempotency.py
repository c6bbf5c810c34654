"""Idempotency-Keys in SQLite: the store's contract (tests/idempotency_contract.py), its bound, and sharing."""

from __future__ import annotations

import pytest

from charge_request_service.idempotency import (
    Claimed,
    KeyRecord,
    KeyState,
    Policy,
    SqliteKeyStore,
    StoreFull,
    Unknown,
    decide_claim,
    decide_mark_unknown,
)
from grid_common.protocol import is_idempotency_key
from tests.idempotency_contract import *  # noqa: F403 - the contract's tests run here, on SQLite
from tests.idempotency_contract import NOW


@pytest.fixture
def make_store(tmp_path):
    path = str(tmp_path / "keys.sqlite3")

    def make(ttl_s=60.0, lease_s=5.0, max_keys=1000):
        return SqliteKeyStore(path, ttl_s, lease_s, max_keys)

    return make


@pytest.fixture
def other_store(make_store):
    return make_store


def test_memory_holds_at_most_max_keys_the_oldest_answers_making_room():
    store = SqliteKeyStore(":memory:", ttl_s=3600, lease_s=5, max_keys=100)
    for n in range(100):
        claim = store.claim(f"k{n}", "f", NOW + n)
        store.finish(f"k{n}", claim.owner, 201, {"session_id": f"s.{n}"}, NOW + n)
    assert isinstance(store.claim("newest", "f", NOW + 200), Claimed)
    assert isinstance(store.claim("k0", "f", NOW + 201), Claimed), "the oldest answer made room"
    count = store._db.execute("SELECT COUNT(*) FROM idempotency").fetchone()[0]
    assert count == 100


def test_a_store_full_of_requests_in_progress_takes_no_new_key():
    store = SqliteKeyStore(":memory:", ttl_s=3600, lease_s=60, max_keys=100)
    for n in range(100):
        store.claim(f"k{n}", "f", NOW)
    with pytest.raises(StoreFull):
        store.claim("one-too-many", "f", NOW)


@pytest.mark.parametrize(("key", "ok"), [("a", True), ("x" * 255, True), ("", False), ("x" * 256, False),
                                         ("é", False), ("a\nb", False)])  # fmt: skip
def test_keys_are_short_printable_ascii(key, ok):
    assert is_idempotency_key(key) is ok


POLICY = Policy(ttl_s=60, lease_s=5)


def test_a_claim_made_again_by_its_owner_comes_to_what_it_first_came_to():
    """A change whose answer was lost (the store froze) is made again by the same owner: the same claim."""
    kept, first = decide_claim(None, POLICY, "f", NOW, "owner-1", "token-1")
    assert first == Claimed("owner-1", "token-1")
    assert decide_claim(kept, POLICY, "f", NOW + 1, "owner-1", "token-2") == (None, first)
    unknown = decide_mark_unknown(kept, POLICY, "owner-1", NOW + 2, NOW + 1)
    looking, claim = decide_claim(unknown, POLICY, "f", NOW + 3, "owner-2", "token-3")
    assert claim == Unknown(NOW + 2, "token-1", "owner-2")
    assert decide_claim(looking, POLICY, "f", NOW + 3, "owner-2", "token-4") == (None, claim)


def test_a_stranger_cannot_mark_a_key_nor_an_answer_unknown():
    kept, _ = decide_claim(None, POLICY, "f", NOW, "owner-1", "token-1")
    assert decide_mark_unknown(kept, POLICY, "someone-else", NOW + 2, NOW) is None
    done = KeyRecord("f", KeyState.DONE, NOW + 60, "owner-1", "token-1", status=201, body="{}")
    assert decide_mark_unknown(done, POLICY, "owner-1", NOW + 2, NOW) is None


def test_a_key_file_of_an_earlier_build_is_read_with_its_keys_whole_lives_and_their_tokens(tmp_path):
    import hashlib
    import sqlite3

    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE idempotency (key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, state TEXT NOT NULL, owner TEXT,"
        " status INTEGER, body TEXT, settle_after REAL, expires_at REAL NOT NULL)"
    )
    # Earlier builds kept an unknown key for a lease after it settled: it would have been forgotten at NOW + 12.
    db.execute("INSERT INTO idempotency VALUES ('old', 'f', 'unknown', 'o', NULL, NULL, ?, ?)", (NOW + 1, NOW + 12))
    db.commit()
    db.close()
    store = SqliteKeyStore(str(path), ttl_s=60, lease_s=5, max_keys=1000)
    retry = store.claim("old", "f", NOW + 30)
    assert isinstance(retry, Unknown) and retry.owner is not None
    assert retry.token == hashlib.sha256(b"old").hexdigest()[:32], "the token earlier builds named its session with"
