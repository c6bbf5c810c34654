"""Idempotency-Keys in SQLite: the store's contract (tests/idempotency_contract.py), its bound, and sharing."""

from __future__ import annotations

import pytest

from charge_request_service.idempotency import Claimed, SqliteKeyStore, StoreFull
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
