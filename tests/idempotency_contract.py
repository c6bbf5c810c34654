"""What every Idempotency-Key store does, the same for SQLite and Redis: imported by the test modules of
each, which provide `make_store(ttl_s=60, lease_s=5, max_keys=1000)` and `other_store` (a second handle on
the same keys, as another worker or replica has)."""

from __future__ import annotations

from charge_request_service.idempotency import (
    Claimed,
    Mismatch,
    Replay,
    StillPending,
    Unknown,
    fingerprint,
    session_token,
)

NOW = 1_800_000_000.0


def test_first_claims_then_duplicates_replay_the_stored_answer(make_store):
    store = make_store()
    body = fingerprint(b'{"energy_kwh": 11}')
    claim = store.claim("k1", body, NOW)
    assert isinstance(claim, Claimed)
    assert store.claim("k1", body, NOW) == StillPending()
    store.finish("k1", claim.owner, 201, {"session_id": "s1.abc"}, NOW)
    assert store.claim("k1", body, NOW + 1) == Replay(201, {"session_id": "s1.abc"})
    assert isinstance(store.claim("k2", body, NOW), Claimed), "keys are independent"


def test_same_key_with_another_body_is_a_mismatch(make_store):
    store = make_store()
    store.claim("k", fingerprint(b'{"energy_kwh": 11}'), NOW)
    assert store.claim("k", fingerprint(b'{"energy_kwh": 12}'), NOW) == Mismatch()


def test_release_lets_a_retry_try_again(make_store):
    store = make_store()
    claim = store.claim("k", "f", NOW)
    store.release("k", claim.owner)
    assert isinstance(store.claim("k", "f", NOW), Claimed)


def test_an_attempt_without_an_answer_leaves_the_outcome_unknown_until_it_settles(make_store):
    store = make_store()
    claim = store.claim("k", "f", NOW)
    store.mark_unknown("k", claim.owner, NOW + 10, NOW)
    retry = store.claim("k", "f", NOW + 1)
    assert isinstance(retry, Unknown) and retry.settle_after == NOW + 10 and retry.owner != claim.owner
    store.finish("k", retry.owner, 201, {"session_id": "s.found"}, NOW + 11)
    assert store.claim("k", "f", NOW + 12) == Replay(201, {"session_id": "s.found"})


def test_a_claim_whose_request_died_becomes_unknown_when_its_lease_runs_out(make_store):
    store = make_store(lease_s=5)
    store.claim("abandoned", "f", NOW)  # its process was killed before it finished
    assert store.claim("abandoned", "f", NOW + 4) == StillPending()
    later = store.claim("abandoned", "f", NOW + 6)
    assert isinstance(later, Unknown) and later.settle_after == NOW + 5, "not free: it may have made a session"


def test_an_owner_that_outlived_its_claim_cannot_overwrite_a_later_answer(make_store):
    store = make_store(lease_s=5)
    first = store.claim("k", "f", NOW)
    second = store.claim("k", "f", NOW + 6)
    store.finish("k", second.owner, 202, {"session_id": "s.second"}, NOW + 7)
    store.finish("k", first.owner, 201, {"session_id": "s.first"}, NOW + 8)
    store.release("k", first.owner)
    assert store.claim("k", "f", NOW + 9) == Replay(202, {"session_id": "s.second"})


def test_answers_expire_after_the_ttl(make_store):
    store = make_store(ttl_s=60)
    claim = store.claim("done", "f", NOW)
    store.finish("done", claim.owner, 201, {"session_id": "s.a"}, NOW)
    assert isinstance(store.claim("done", "f", NOW + 30), Replay)
    assert isinstance(store.claim("done", "f", NOW + 61), Claimed)


def test_stores_on_the_same_keys_share_them(make_store, other_store):
    one, other = make_store(), other_store()
    claim = one.claim("k", "f", NOW)
    assert other.claim("k", "f", NOW) == StillPending()
    one.finish("k", claim.owner, 201, {"session_id": "s.b"}, NOW)
    assert other.claim("k", "f", NOW) == Replay(201, {"session_id": "s.b"})


def test_the_fingerprint_ignores_spacing_and_key_order_but_not_values():
    assert fingerprint(b'{"a": 1, "b": 2}') == fingerprint(b'{"b":2,"a":1}')
    assert fingerprint(b'{"a": 1}') != fingerprint(b'{"a": 2}')
    assert fingerprint(b"") == fingerprint(b"null"), "a body-less POST is one request"
    assert fingerprint(b"not json") != fingerprint(b"not json either")
    assert fingerprint(b"[" * 5000) == fingerprint(b"[" * 5000), "too deep for JSON: as sent"


def test_a_keys_sessions_are_named_after_it_and_no_other():
    assert session_token("k1") == session_token("k1") != session_token("k2")
    assert len(session_token("k1")) == 32 and session_token("k1").isalnum()
