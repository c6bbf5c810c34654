"""Through real processes: a balancer down or frozen gives 502 or 504 in time, and a bad configuration
stops a service at start with a clear message. (The HTTP contract of each error: tests/app/test_errors.py.)"""

from __future__ import annotations

import signal
import time

import pytest

from tests.helpers import call

LONG = {"TIME_SCALE": "1"}
PROBLEM = "application/problem+json"


@pytest.fixture
def grid(services):
    return services.grid({"a": 150, "b": 150}, substation_env=LONG)


def assert_problem(reply, status):
    assert reply.status == status, (reply.status, reply.raw[:300])
    assert reply.content_type == PROBLEM
    assert reply.body["status"] == status and reply.body["title"]
    assert b"Traceback" not in reply.raw and b"<html" not in reply.raw.lower()


def test_balancer_down_gives_502_at_once(services):
    grid = services.grid({"a": 150}, substation_env=LONG)
    grid.balancer.process.stop()
    started = time.monotonic()
    reply = call("POST", f"{grid.gateway.url}/initiate_energy_transfer")
    assert_problem(reply, 502)
    assert time.monotonic() - started < 2
    assert "load balancer" in reply.body["detail"]


def test_balancer_too_slow_gives_504_within_the_timeout(services):
    grid = services.grid({"a": 150}, substation_env=LONG, gateway_env={"BALANCER_TIMEOUT_S": "1"})
    grid.balancer.process.signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        reply = call("POST", f"{grid.gateway.url}/initiate_energy_transfer", timeout=10)
        elapsed = time.monotonic() - started
    finally:
        grid.balancer.process.signal(signal.SIGCONT)
    assert_problem(reply, 504)
    assert 0.9 <= elapsed < 3


def test_invalid_configuration_stops_the_service_with_a_clear_message(services, tmp_path):
    substation = services.service("bad", "substation", {"CAPACITY_KW": "lots"}, wait=False)
    with pytest.raises(RuntimeError, match="exited"):
        substation.process.wait_healthy(timeout=20)
    output = (tmp_path / "bad.log").read_text()
    assert "SUBSTATION_NAME is required" in output
    assert "CAPACITY_KW must be a number" in output
