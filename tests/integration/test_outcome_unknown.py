"""An answer that comes too late is not a refusal: a session a substation admitted in time, whose answer the
balancer did not wait for, must not get a twin elsewhere. Real processes, a proxy that holds answers back."""

from __future__ import annotations

import time

import pytest

from tests.helpers import call, view_of, wait_until
from tests.proxy import AnswerDelayingProxy

LONG = {"TIME_SCALE": "1"}  # sessions outlast the test
HELD_S = 2.5  # longer than the balancer's ADMISSION_TIMEOUT_S (2 s)


def held_sessions(*substations) -> int:
    """Sessions every substation holds, asked directly (not through the proxy)."""
    total = 0
    for substation in substations:
        load = call("GET", f"{substation.url}/load").body
        total += load["active_sessions"] + load["queued_sessions"]
    return total


@pytest.fixture
def slow_grid(services):
    """substation3 (the larger, so the first choice) behind a proxy that holds its answers back."""
    substation1 = services.substation("substation1", 150, **LONG)
    substation3 = services.substation("substation3", 300, **LONG)
    proxy = AnswerDelayingProxy(substation3.port, delay_s=0).start()
    balancer = services.balancer({"substation1": substation1, "substation3": proxy.url})
    wait_until(lambda: all(view_of(balancer, name)["healthy"] for name in ("substation1", "substation3")))
    gateway = services.gateway(balancer.url)
    yield substation1, substation3, proxy, gateway
    proxy.stop()


def test_an_admission_answered_late_is_found_where_it_was_admitted(slow_grid):
    substation1, substation3, proxy, gateway = slow_grid
    proxy.matching, proxy.delay_s = b"POST /begin_charging", HELD_S  # only admissions' answers are late
    reply = call("POST", f"{gateway.url}/initiate_energy_transfer", {"max_power_kw": 22}, timeout=10)
    assert reply.status == 201, reply.body
    assert reply.body["substation"] == "substation3", "the session it admitted in time is the answer"
    assert held_sessions(substation1, substation3) == 1, "no second session elsewhere"


def test_an_outcome_nobody_can_tell_yet_is_504_with_the_session_it_may_be(slow_grid):
    substation1, substation3, proxy, gateway = slow_grid
    proxy.delay_s = HELD_S  # every answer late, the balancer's look-up too
    started = time.monotonic()
    reply = call("POST", f"{gateway.url}/initiate_energy_transfer", {"max_power_kw": 22}, timeout=10)
    assert time.monotonic() - started < 5.5
    assert reply.status == 504 and reply.content_type == "application/problem+json", reply.body
    candidate = reply.body["session_id"]
    assert candidate.startswith("substation3."), reply.body
    assert held_sessions(substation1, substation3) == 1, "not placed elsewhere while the outcome is unknown"
    proxy.delay_s = 0
    found = call("GET", f"{gateway.url}/sessions/{candidate}")
    assert found.status == 200 and found.body["state"] == "charging", "the 504 named the session that exists"


def test_a_keyed_retry_gets_the_session_that_was_admitted_late_never_a_second(slow_grid):
    substation1, substation3, proxy, gateway = slow_grid
    proxy.delay_s = HELD_S
    key = {"Idempotency-Key": "late-answer-1"}
    body = {"max_power_kw": 22}
    first = call("POST", f"{gateway.url}/initiate_energy_transfer", body, headers=key, timeout=10)
    assert first.status == 504, first.body
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # while substation3 cannot say, nothing is placed anywhere
        retry = call("POST", f"{gateway.url}/initiate_energy_transfer", body, headers=key, timeout=10)
        assert retry.status in (409, 503), retry.body
        assert held_sessions(substation1, substation3) == 1
        if retry.status == 503:
            break
        time.sleep(float(retry.headers.get("Retry-After", "1")))
    proxy.delay_s = 0
    settled = call("POST", f"{gateway.url}/initiate_energy_transfer", body, headers=key, timeout=10)
    assert settled.status == 201, settled.body
    assert settled.body["substation"] == "substation3" and settled.headers["Idempotent-Replayed"] == "true"
    assert held_sessions(substation1, substation3) == 1, "one key, one session"
