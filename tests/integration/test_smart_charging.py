"""Smart charging in real processes: a substation through its evening peak with more cars than fit, and
queued and paused sessions through a SIGKILL."""

from __future__ import annotations

import signal
import time

import pytest

from grid_common.simulated_time import SimulatedClock
from tests.helpers import call, metric_value, wait_until

# The machine to itself: simulated time runs on the wall clock, an hour every 2 s.
pytestmark = pytest.mark.serial

SCALE = 1800  # a simulated hour every 2 wall seconds
HOUR_S = 3600 / SCALE


def phase_for(simulated_hour: float) -> float:
    """BACKGROUND_PHASE_HOURS that makes it `simulated_hour` o'clock now (the profile runs on wall time)."""
    return SimulatedClock(SCALE).phase_for(simulated_hour, time.time())


def wait_for_hour(phase: float, simulated_hour: float) -> None:
    """Sleep until it is `simulated_hour` o'clock at a substation of `phase`: what it sees when is known."""
    now_hour = SimulatedClock(SCALE, phase).hour_of_day(time.time())
    hours_left = (simulated_hour - now_hour) % 24
    assert hours_left < 6, "the grid took longer to start than the hours given to it"
    time.sleep(hours_left * HOUR_S)


def test_through_the_evening_peak_nothing_is_over_capacity_and_sessions_wait_in_order(services):
    # 100 kW, background up to 60 kW at 19:00: 58 kW of headroom at 15:30, 40 at the peak.
    # Noon when it starts: however long the grid takes to start (up to 7 s), the cars come at 15:30.
    phase = phase_for(12.0)
    env = {"TIME_SCALE": str(SCALE), "BACKGROUND_PEAK_FRACTION": "0.6", "BACKGROUND_PHASE_HOURS": f"{phase:.4f}",
           "ALLOCATION_STEP_S": "0.2", "QUEUE_LIMIT": "50"}  # fmt: skip
    grid = services.grid({"only": 100}, substation_env=env)
    wait_for_hour(phase, 15.5)
    substation = grid.substations["only"]
    # 12 cars of at least 4 kW: 48 kW of minimums, more than the 40 kW the peak leaves; 4 more wait.
    body = {"energy_kwh": 150, "max_power_kw": 11, "min_power_kw": 4, "wait": True}
    placed = [call("POST", f"{grid.gateway.url}/initiate_energy_transfer", body).body for _ in range(16)]
    order = [session["session_id"] for session in placed]
    queued = [s["state"] for s in placed].count("queued")
    assert 1 <= queued <= 4, "about 15 minimums fit at 15:30: the rest wait"

    samples, started_order = 0, {}
    deadline = time.monotonic() + 9 * HOUR_S  # until 00:30, past the peak
    while time.monotonic() < deadline:
        load = call("GET", f"{substation.url}/load").body
        assert load["ev_power_kw"] + load["background_kw"] <= load["capacity_kw"] + 1e-6, load
        states = {key: call("GET", f"{substation.url}/sessions/{key}").body["state"] for key in order}
        charging = [key for key in order if states[key] == "charging"]
        waiting = [key for key in order if states[key] in ("paused", "queued")]
        assert not waiting or not charging or max(map(order.index, charging)) < min(map(order.index, waiting)), (
            "those who charge are always the first to have come: none overtakes"
        )
        for key in charging:
            started_order.setdefault(key, len(started_order))
        samples += 1
        time.sleep(0.05)
    assert samples > 50
    metrics = call("GET", f"{substation.url}/metrics").raw.decode()
    assert metric_value(metrics, "substation_overload_seconds_total", substation="only") == 0
    assert metric_value(metrics, "substation_sessions_paused_total", substation="only") > 0, "the peak paused some"
    assert metric_value(metrics, "substation_wait_seconds_count", substation="only") == queued, "every queued started"
    assert sorted(started_order, key=started_order.get) == order, "in the order they came"
    final = {key: call("GET", f"{substation.url}/sessions/{key}").body for key in order}
    assert all(s["state"] == "charging" for s in final.values()), "after the peak all charge again"


def test_queued_and_paused_sessions_survive_a_sigkill(services, tmp_path):
    env = {"TIME_SCALE": "1", "SESSION_DB": str(tmp_path / "only.sqlite3")}
    grid = services.grid({"only": 22}, substation_env=env)
    gateway = grid.gateway.url
    body = {"max_power_kw": 11, "min_power_kw": 11}
    charging = [call("POST", f"{gateway}/initiate_energy_transfer", body).body for _ in range(2)]
    queued = [call("POST", f"{gateway}/initiate_energy_transfer", {**body, "wait": True}) for _ in range(2)]
    assert [r.status for r in queued] == [202, 202]
    victim = grid.substations["only"]
    victim.process.signal(signal.SIGKILL)
    victim.process.process.wait()
    victim.process.start().wait_healthy()

    for session in charging:
        assert call("GET", f"{gateway}/sessions/{session['session_id']}").body["state"] == "charging"
    reads = [call("GET", f"{gateway}/sessions/{reply.body['session_id']}").body for reply in queued]
    assert [(r["state"], r["position"]) for r in reads] == [("queued", 1), ("queued", 2)], "in the same order"
    call("POST", f"{gateway}/sessions/{charging[0]['session_id']}/stop")
    head = wait_until(
        lambda: (r := call("GET", f"{gateway}/sessions/{reads[0]['session_id']}").body)["state"] == "charging" and r
    )
    assert head["allocated_kw"] == 11
