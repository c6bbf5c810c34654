"""Faults under steady load from the load tester: a substation killed, or too slow to answer.

What must hold whatever fails: every answer is 201, 503 with Retry-After, or 504 naming the session a
substation that did not answer may hold; no request waits past the gateway's timeout; no substation is ever
booked past its capacity; a session keeps its substation; and no session exists that no client was told of.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import call, view_of, wait_until
from tools.processes import ROOT

GATEWAY_TIMEOUT_S = 5.0  # BALANCER_TIMEOUT_S's default: the longest any request may wait
CAPACITY_KW = 200.0  # 18 sessions of 11 kW each: the load fills the grid, so refusals happen too


def grid_with_journals(services, tmp_path, names=("a", "b", "c")):
    substations = {
        name: services.substation(name, CAPACITY_KW, TIME_SCALE="1", SESSION_DB=str(tmp_path / f"{name}.sqlite3"))
        for name in names
    }
    balancer = services.balancer(substations)
    wait_until(lambda: all(view_of(balancer, name)["healthy"] for name in names))
    gateway = services.gateway(balancer.url)
    return substations, balancer, gateway


class LoadTester:
    """The load tester as a user runs it, in the background, writing every reply to JSON."""

    def __init__(self, gateway_url: str, balancer_url: str, out, requests: int, concurrency: int):
        self.out = out
        command = [sys.executable, "load_tester/test.py", "--url", gateway_url, "--balancer-url", balancer_url]
        command += ["-n", str(requests), "-c", str(concurrency), "-q", "--json", str(out), "--timeout", "10"]
        command += ["--max-power-kw", "11"]
        self.started = time.monotonic()
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def replies(self) -> list[dict]:
        _, errors = self.process.communicate(timeout=120)
        assert b"Traceback" not in errors, errors.decode()
        return json.loads(self.out.read_text())["replies"]


def assert_only_known_outcomes_in_time(replies: list[dict]) -> None:
    statuses = {r["status"] for r in replies}
    assert statuses <= {"201", "503", "504"}, statuses
    assert all(r["retry_after"] and int(r["retry_after"]) >= 1 for r in replies if r["status"] == "503")
    # An outcome not known names the session that may have been made, at the substation that did not answer.
    assert all(r["session_id"] and r["substation"] for r in replies if r["status"] == "504")
    slowest = max(r["latency_ms"] for r in replies) / 1000
    assert slowest < GATEWAY_TIMEOUT_S + 0.5, f"a request waited {slowest:.1f} s"


def assert_no_hidden_session(gateway, substations, replies: list[dict]) -> None:
    """Every session held anywhere is one a client was told of: started (201), or named by a 504. (Sessions
    last an hour here: none has ended.)"""
    started = sum(r["status"] == "201" for r in replies)
    found = [call("GET", f"{gateway.url}/sessions/{r['session_id']}").status for r in replies if r["status"] == "504"]
    assert set(found) <= {200, 404}, "once the substation answers, whether it holds the session is known"
    held = sum(call("GET", f"{s.url}/load").body["active_sessions"] for s in substations.values())
    assert held == started + found.count(200), (held, started, found)


def assert_within_capacity(substations) -> None:
    for name, substation in substations.items():
        load = call("GET", f"{substation.url}/load").body
        assert load["load_kw"] <= load["capacity_kw"] + 1e-6, (name, load)


def test_a_substation_killed_under_load(services, tmp_path):
    substations, balancer, gateway = grid_with_journals(services, tmp_path)
    victim = substations["a"]
    load = LoadTester(gateway.url, balancer.url, tmp_path / "run.json", requests=400, concurrency=8)
    wait_until(lambda: call("GET", f"{victim.url}/load").body["active_sessions"] >= 3, interval=0.01)
    victim.process.signal(signal.SIGKILL)
    victim.process.process.wait()
    replies = load.replies()

    assert_only_known_outcomes_in_time(replies)
    placed = [r for r in replies if r["status"] == "201"]
    assert {r["substation"] for r in placed} == {"a", "b", "c"}
    assert len([r for r in replies if r["status"] == "503"]) > 0, "the load was enough to fill the grid"
    assert view_of(balancer, "a")["healthy"] is False

    victim.process.start().wait_healthy()
    wait_until(lambda: view_of(balancer, "a")["healthy"], timeout=5)
    assert_within_capacity(substations)
    for reply in placed:  # every session the clients were told about, where they were told it is
        read = call("GET", f"{gateway.url}/sessions/{reply['session_id']}")
        assert read.status == 200 and read.body["substation"] == reply["substation"], reply
    assert_no_hidden_session(gateway, substations, replies)


def test_a_substation_too_slow_to_answer_is_skipped_and_rejoins(services, tmp_path):
    substations, balancer, gateway = grid_with_journals(services, tmp_path)
    frozen = substations["a"]
    frozen.process.signal(signal.SIGSTOP)
    try:
        load = LoadTester(gateway.url, balancer.url, tmp_path / "run.json", requests=40, concurrency=4)
        replies = load.replies()
        wait_until(lambda: not view_of(balancer, "a")["healthy"], timeout=5)
    finally:
        frozen.process.signal(signal.SIGCONT)

    assert_only_known_outcomes_in_time(replies)
    placed = [r for r in replies if r["status"] == "201"]
    assert placed and {r["substation"] for r in placed} <= {"b", "c"}, "nothing is placed on a frozen substation"
    unknown = [r for r in replies if r["status"] == "504"]
    assert {r["substation"] for r in unknown} <= {"a"}, "only what was asked of the frozen one is not known"
    wait_until(lambda: view_of(balancer, "a")["healthy"], timeout=5)
    assert_no_hidden_session(gateway, substations, replies)
    after = {call("POST", f"{gateway.url}/initiate_energy_transfer").body.get("substation") for _ in range(6)}
    assert "a" in after, "it takes sessions again once it answers"
    assert_within_capacity(substations)


# The machine to itself: the load tester's load, and every answer within the gateway's timeout.
pytestmark = [pytest.mark.timeout(180), pytest.mark.serial]
