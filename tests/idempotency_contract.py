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
    new_token,
)

NOW = 1_800_000_000.0


def test_first_claims_then_duplicates_replay_the_stored_answer(make_store):
    store = make_store()
    body = fingerprint(b'{"energy_kwh": 11}')
    claim = store.claim("k1", body, NOW)
    assert isinstance(claim, Claimed)
    assert store.claim("k1", body, NOW) == StillPending(NOW + 5)
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
    early = store.claim("k", "f", NOW + 1)
    assert early == Unknown(NOW + 10, claim.token), "nobody may look before it settles"
    retry = store.claim("k", "f", NOW + 11)
    assert isinstance(retry, Unknown) and retry.settle_after == NOW + 10 and retry.owner not in (None, claim.owner)
    assert retry.token == claim.token, "the session is looked for under the token it was asked for with"
    store.finish("k", retry.owner, 201, {"session_id": "s.found"}, NOW + 11)
    assert store.claim("k", "f", NOW + 12) == Replay(201, {"session_id": "s.found"})


def test_a_claim_whose_request_died_becomes_unknown_when_its_lease_runs_out(make_store):
    store = make_store(lease_s=5)
    first = store.claim("abandoned", "f", NOW)  # its process was killed before it finished
    assert store.claim("abandoned", "f", NOW + 4) == StillPending(NOW + 5)
    later = store.claim("abandoned", "f", NOW + 6)
    assert isinstance(later, Unknown) and later.settle_after == NOW + 5, "not free: it may have made a session"
    assert later.owner is not None and later.token == first.token


def test_one_retry_at_a_time_looks_for_an_unknown_outcome(make_store):
    store = make_store(lease_s=5)
    claim = store.claim("k", "f", NOW)
    store.mark_unknown("k", claim.owner, NOW + 2, NOW)
    looking = store.claim("k", "f", NOW + 3)
    assert isinstance(looking, Unknown) and looking.owner is not None
    assert store.claim("k", "f", NOW + 3.5) == StillPending(NOW + 8), "not a second look, nor a second session"
    store.mark_unknown("k", looking.owner, looking.settle_after, NOW + 4)  # its look-up could not tell
    again = store.claim("k", "f", NOW + 4.5)
    assert isinstance(again, Unknown) and again.owner is not None and again.token == claim.token


def test_an_unknown_outcome_is_kept_for_the_keys_whole_life_whatever_fails(make_store):
    store = make_store(ttl_s=60, lease_s=5)
    claim = store.claim("k", "f", NOW)  # its gateway is killed: the key is never marked
    looking = store.claim("k", "f", NOW + 6)
    store.mark_unknown("k", looking.owner, looking.settle_after, NOW + 7)  # the look-up could not tell
    for moment in (NOW + 20, NOW + 40, NOW + 66):  # a lease and more, several times, but within its life
        retry = store.claim("k", "f", moment)
        assert isinstance(retry, Unknown) and retry.token == claim.token, moment
        store.mark_unknown("k", retry.owner, retry.settle_after, moment)
    assert isinstance(store.claim("k", "f", NOW + 66 + 61), Claimed), "forgotten only when its life is over"


def test_tokens_are_random_and_each_keys_own(make_store):
    store = make_store()
    one, two = store.claim("same-looking", "f", NOW), make_store().claim("other", "f", NOW)
    assert one.token != two.token and len(one.token) == 32 and one.token.isalnum()
    assert new_token() != new_token()


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
    assert other.claim("k", "f", NOW) == StillPending(NOW + 5)
    one.finish("k", claim.owner, 201, {"session_id": "s.b"}, NOW)
    assert other.claim("k", "f", NOW) == Replay(201, {"session_id": "s.b"})


def test_the_fingerprint_ignores_spacing_and_key_order_but_not_values():
    assert fingerprint(b'{"a": 1, "b": 2}') == fingerprint(b'{"b":2,"a":1}')
    assert fingerprint(b'{"a": 1}') != fingerprint(b'{"a": 2}')
    assert fingerprint(b"") == fingerprint(b"null"), "a body-less POST is one request"
    assert fingerprint(b"not json") != fingerprint(b"not json either")
    assert fingerprint(b"[" * 5000) == fingerprint(b"[" * 5000), "too deep for JSON: as sent"
