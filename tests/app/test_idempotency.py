"""Idempotency-Key through the whole grid in this process: whatever fails between, one key, one session."""

from __future__ import annotations

import hashlib

from grid_common.protocol import SESSION_TOKEN
from tests.fakes import Clock
from tests.in_process import BALANCER_URL, in_process_grid


def sessions_at(grid) -> int:
    return sum(app.test_client().get("/load").get_json()["active_sessions"] for app in grid.substations.values())


def keyed(gateway, key="k-1"):
    return gateway.post("/initiate_energy_transfer", json={"energy_kwh": 20}, headers={"Idempotency-Key": key})


def grid_with_a_clock():
    grid = in_process_grid({"a": 150})
    clock = Clock(1_800_000_000.0)
    grid.gateway.extensions["gateway"].starter.clock = clock
    return grid, clock


def test_a_retry_after_a_lost_answer_gets_the_session_the_first_attempt_made():
    grid, clock = grid_with_a_clock()
    gateway = grid.gateway.test_client()
    grid.transport.lost.add(BALANCER_URL)  # the balancer places the session; its answer never arrives
    first = keyed(gateway)
    assert first.status_code == 504 and sessions_at(grid) == 1
    grid.transport.lost.clear()
    early = keyed(gateway)
    assert early.status_code == 409 and int(early.headers["Retry-After"]) >= 1, "it might still start one"
    clock.advance(int(early.headers["Retry-After"]))
    retry = keyed(gateway)
    assert retry.status_code == 201 and retry.headers["Idempotent-Replayed"] == "true"
    assert sessions_at(grid) == 1, "found, not made again"
    assert keyed(gateway).get_json()["session_id"] == retry.get_json()["session_id"]


def test_a_retry_after_an_attempt_that_made_nothing_places_it_then():
    grid, clock = grid_with_a_clock()
    gateway = grid.gateway.test_client()
    grid.transport.slow.add(BALANCER_URL)  # the request never reaches the balancer in time
    assert keyed(gateway).status_code == 504 and sessions_at(grid) == 0
    grid.transport.slow.clear()
    clock.advance(30)
    retry = keyed(gateway)
    assert retry.status_code == 201 and "Idempotent-Replayed" not in retry.headers
    assert sessions_at(grid) == 1
    tokens = {headers[SESSION_TOKEN] for _, url, headers in grid.transport.sent if SESSION_TOKEN in headers}
    assert len(tokens) == 1, "both attempts asked under the key's one token"
    assert retry.get_json()["session_id"] == f"a.{tokens.pop()}"


def test_when_a_substation_cannot_say_the_retry_is_told_to_come_back():
    grid, clock = grid_with_a_clock()
    gateway = grid.gateway.test_client()
    grid.transport.lost.add(BALANCER_URL)
    keyed(gateway)
    grid.transport.lost.clear()
    grid.transport.slow.add("http://a.test")  # the substation that may hold it does not answer
    clock.advance(30)
    retry = keyed(gateway)
    assert retry.status_code == 503 and retry.headers["Retry-After"], "not a second session on another substation"
    grid.transport.slow.clear()
    assert sessions_at(grid) == 1
    assert keyed(gateway).status_code == 201, "once it answers, the session it holds is the answer"
    assert sessions_at(grid) == 1


def test_sessions_of_a_key_are_named_with_a_token_nobody_can_derive_from_it():
    grid, _ = grid_with_a_clock()
    first = keyed(grid.gateway.test_client(), key="named").get_json()
    other = keyed(in_process_grid({"a": 150}).gateway.test_client(), key="named").get_json()
    assert first["session_id"] != other["session_id"], "the same key at two gateways: two random tokens"
    assert first["session_id"] != f"a.{hashlib.sha256(b'named').hexdigest()[:32]}"
