"""A substation killed with SIGKILL and restarted still knows every session, its energy and its load."""

from __future__ import annotations

import signal
import time

import pytest

from tests.helpers import call, view_of, wait_until

POLL_INTERVAL_S = 0.2  # the test grid's balancer polls this often


def test_sessions_survive_sigkill_and_the_balancer_takes_the_substation_back_within_two_polls(services, tmp_path):
    # 11 kWh at 11 kW lasts 60 s: sessions run on while the process is down and back.
    env = {"TIME_SCALE": "60", "SESSION_DB": str(tmp_path / "a.sqlite3")}
    grid = services.grid({"a": 1000}, substation_env=env)
    victim = grid.substations["a"]
    sessions = [call("POST", f"{grid.gateway.url}/initiate_energy_transfer").body for _ in range(3)]
    stopped = call("POST", f"{grid.gateway.url}/sessions/{sessions[2]['session_id']}/stop").body
    load_before = call("GET", f"{victim.url}/load").body

    victim.process.signal(signal.SIGKILL)
    victim.process.process.wait()
    victim.process.start().wait_healthy()
    back_at = time.monotonic()
    wait_until(lambda: view_of(grid, "a")["healthy"], timeout=5, interval=0.02)
    assert time.monotonic() - back_at <= 2 * POLL_INTERVAL_S + 0.3, "healthy again within two polls"

    load_after = call("GET", f"{victim.url}/load").body
    assert load_after["epoch"] != load_before["epoch"], "a new process"
    assert load_after["active_sessions"] == 2
    assert load_after["ev_power_kw"] == pytest.approx(22)
    for session in sessions[:2]:
        read = call("GET", f"{grid.gateway.url}/sessions/{session['session_id']}").body
        assert read["state"] == "charging" and read["substation"] == "a"
        assert 0 < read["energy_delivered_kwh"] < 11, "energy so far, counted from the session's real start"
        assert read["started_at"] == session["started_at"] and read["estimated_end"] == session["estimated_end"]
    read_stopped = call("GET", f"{grid.gateway.url}/sessions/{sessions[2]['session_id']}").body
    assert read_stopped == stopped
