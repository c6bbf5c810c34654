"""A substation killed with SIGKILL and restarted still knows every session, its energy and its load."""

from __future__ import annotations

import signal
import sqlite3
import time

import pytest

from grid_common.protocol import DEFAULT_MAX_POWER_KW
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
    assert load_after["ev_power_kw"] == pytest.approx(2 * DEFAULT_MAX_POWER_KW)
    for session in sessions[:2]:
        read = call("GET", f"{grid.gateway.url}/sessions/{session['session_id']}").body
        assert read["state"] == "charging" and read["substation"] == "a"
        assert 0 < read["energy_delivered_kwh"] < 11, "energy so far, counted from the session's real start"
        assert read["started_at"] == session["started_at"] and read["estimated_end"] == session["estimated_end"]
    read_stopped = call("GET", f"{grid.gateway.url}/sessions/{sessions[2]['session_id']}").body
    assert read_stopped == stopped


def test_readiness_comes_back_on_its_own_once_the_journal_can_write_again(services, tmp_path):
    journal = tmp_path / "a.sqlite3"
    substation = services.substation("a", 150, SESSION_DB=str(journal), TIME_SCALE="1")
    other = sqlite3.connect(journal, timeout=0)
    other.execute("BEGIN EXCLUSIVE")  # another writer holds the journal
    try:
        assert call("POST", f"{substation.url}/begin_charging").status == 503
        assert call("GET", f"{substation.url}/readyz").status == 503
    finally:
        other.rollback()
        other.close()
    # Nobody writes now (an unready substation gets no traffic): it must find out by itself.
    wait_until(lambda: call("GET", f"{substation.url}/readyz").status == 200, timeout=5)
    assert call("POST", f"{substation.url}/begin_charging").status == 201


@pytest.mark.parametrize("fault", ["corrupt", "unopenable"])
def test_a_journal_that_cannot_be_read_at_start_leaves_the_substation_up_unready_and_safe(services, tmp_path, fault):
    journal = tmp_path / "a.sqlite3"
    if fault == "corrupt":
        journal.write_bytes(b"this is not a database" * 400)
    else:
        journal.mkdir()  # a folder where the file should be
    substation = services.substation("a", 150, SESSION_DB=str(journal), TIME_SCALE="1")
    pid = substation.process.process.pid
    ready = call("GET", f"{substation.url}/readyz")
    assert ready.status == 503 and str(journal) in ready.body["journal"], ready.body
    # It does not know its sessions: it admits nothing, reads nothing, and says so.
    assert call("POST", f"{substation.url}/begin_charging").status == 503
    load = call("GET", f"{substation.url}/load")
    assert load.status == 503 and load.content_type == "application/problem+json"
    assert call("GET", f"{substation.url}/sessions/a.0123456789abcdef").status == 503
    # Whoever fixes it need not restart it: the file moved aside (or the folder made), it starts by itself.
    if fault == "corrupt":
        journal.rename(tmp_path / "a.sqlite3.broken")
    else:
        journal.rmdir()
    wait_until(lambda: call("GET", f"{substation.url}/readyz").status == 200, timeout=5)
    assert call("POST", f"{substation.url}/begin_charging").status == 201
    assert substation.process.process.pid == pid and substation.process.running, "never restarted"
