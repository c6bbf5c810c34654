"""Idempotency-Key storage: claim, replay, mismatch, release and expiry, with a fake clock."""

from __future__ import annotations

import pytest

from charge_request_service.idempotency import (
    Claimed,
    IdempotencyStore,
    Mismatch,
    Replay,
    StillPending,
    fingerprint,
)
from grid_common.protocol import is_idempotency_key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock():
    return Clock()


def store_at(path: str, clock: Clock, ttl_s: float = 60.0) -> IdempotencyStore:
    return IdempotencyStore(path, ttl_s, pending_lease_s=5.0, clock=clock, sleep=clock.sleep)


def test_first_claims_then_duplicates_replay_the_stored_answer(clock):
    store = store_at(":memory:", clock)
    body = fingerprint(b'{"energy_kwh": 11}')
    assert store.claim("k1", body, wait_s=0) == Claimed()
    assert store.claim("k1", body, wait_s=0) == StillPending()
    store.finish("k1", 201, {"session_id": "s1.abc"})
    assert store.claim("k1", body, wait_s=0) == Replay(201, {"session_id": "s1.abc"})
    assert store.claim("k2", body, wait_s=0) == Claimed(), "keys are independent"


def test_same_key_with_another_body_is_a_mismatch(clock):
    store = store_at(":memory:", clock)
    store.claim("k", fingerprint(b'{"energy_kwh": 11}'), wait_s=0)
    assert store.claim("k", fingerprint(b'{"energy_kwh": 12}'), wait_s=0) == Mismatch()


def test_the_fingerprint_ignores_spacing_and_key_order_but_not_values():
    assert fingerprint(b'{"a": 1, "b": 2}') == fingerprint(b'{"b":2,"a":1}')
    assert fingerprint(b'{"a": 1}') != fingerprint(b'{"a": 2}')
    assert fingerprint(b"") == fingerprint(b"null"), "a body-less POST is one request"
    assert fingerprint(b"not json") != fingerprint(b"not json either")


def test_a_waiting_duplicate_gets_the_answer_as_soon_as_it_is_stored(clock):
    store = store_at(":memory:", clock)
    body = fingerprint(b"")
    store.claim("k", body, wait_s=0)
    finished_at = clock.now + 0.1

    def sleep_and_finish(seconds: float) -> None:
        clock.sleep(seconds)
        if clock.now >= finished_at:
            store.finish("k", 201, {"session_id": "s.x"})

    store.sleep = sleep_and_finish
    assert store.claim("k", body, wait_s=1.0) == Replay(201, {"session_id": "s.x"})
    assert clock.now < finished_at + 0.1


def test_release_lets_a_retry_try_again(clock):
    store = store_at(":memory:", clock)
    store.claim("k", "f", wait_s=0)
    store.release("k")
    assert store.claim("k", "f", wait_s=0) == Claimed()


def test_answers_expire_after_the_ttl_and_a_dead_claim_after_its_lease(clock):
    store = store_at(":memory:", clock, ttl_s=60)
    store.claim("done", "f", wait_s=0)
    store.finish("done", 201, {"session_id": "s.a"})
    store.claim("abandoned", "f", wait_s=0)  # its process died before finishing
    clock.now += 5.0
    assert store.claim("abandoned", "f", wait_s=0) == Claimed(), "a claim holds for its lease, not the TTL"
    assert isinstance(store.claim("done", "f", wait_s=0), Replay)
    clock.now += 60.0
    assert store.claim("done", "f", wait_s=0) == Claimed()


def test_processes_sharing_a_file_share_the_keys(clock, tmp_path):
    path = str(tmp_path / "keys.sqlite3")
    one, other = store_at(path, clock), store_at(path, clock)
    assert one.claim("k", "f", wait_s=0) == Claimed()
    assert other.claim("k", "f", wait_s=0) == StillPending()
    one.finish("k", 201, {"session_id": "s.b"})
    assert other.claim("k", "f", wait_s=0) == Replay(201, {"session_id": "s.b"})


@pytest.mark.parametrize(("key", "ok"), [("a", True), ("x" * 255, True), ("", False), ("x" * 256, False),
                                         ("é", False), ("a\nb", False)])  # fmt: skip
def test_keys_are_short_printable_ascii(key, ok):
    assert is_idempotency_key(key) is ok
