"""SIGTERM under load: readiness turns off first, requests in flight finish, nothing is cut."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import call, wait_until
from tools.processes import ROOT

# The machine to itself: a drain and a grace period are timed, under load.
pytestmark = pytest.mark.serial

DRAIN_S = 1.5
# While it drains, the service serves: every request sent then is answered 201 (a substation draining has a
# second one beside it, where the balancer sends what it no longer sends there). Once it is gone, its clients
# are refused, or the gateway answers for it (502, or 503 with no balancer left). A reset, a disconnect or a
# timeout would be a request cut off, except for a request sent between the drain's end and the process's
# exit: gunicorn's worker closes its listener at its next heartbeat after the drain (within a second), and
# TCP resets the connections still waiting in the listener's queue then. That is why readiness turns off
# first, so that a load balancer stops sending before then.
AFTER_THE_DRAIN = {"201", "502", "503", "error: connection refused"}
RESET_AT_CLOSE = "error: connection reset"


@pytest.mark.parametrize("victim", ["gateway", "balancer", "substation"])
def test_sigterm_under_load_turns_readiness_off_first_and_cuts_nothing(services, tmp_path, victim):
    drain = {"SHUTDOWN_DRAIN_S": str(DRAIN_S)}
    grid = services.grid(
        {"substation": 100000, "other": 100000} if victim == "substation" else {"substation": 100000},
        substation_env={"TIME_SCALE": "1", **(drain if victim == "substation" else {})},
        balancer_env=drain if victim == "balancer" else None,
        gateway_env=drain if victim == "gateway" else None,
    )
    target = {"gateway": grid.gateway, "balancer": grid.balancer, "substation": grid.substations["substation"]}[victim]
    out = tmp_path / "run.json"
    command = [sys.executable, "load_tester/test.py", "--url", grid.gateway.url, "--balancer-url", grid.balancer.url]
    load = subprocess.Popen(
        [*command, "-n", "800", "-c", "4", "-q", "--json", str(out), "--timeout", "10"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wait_until(lambda: call("GET", f"{grid.substations['substation'].url}/load").body["active_sessions"] >= 20)
    target.process.signal(signal.SIGTERM)
    signalled, signalled_at = time.monotonic(), time.time()

    readiness = call("GET", f"{target.url}/readyz")
    assert readiness.status == 503 and readiness.body["status"] == "draining", "readiness is off at once"
    served = call("POST", f"{grid.gateway.url}/initiate_energy_transfer")
    if victim != "gateway" or time.monotonic() - signalled < DRAIN_S - 0.3:
        assert served.status == 201, "it goes on serving while draining"
    assert target.process.process.wait(timeout=15) == 0, "a clean exit"
    exited_at = time.time()  # its listener closed before this: nothing can queue a connection any more
    assert time.monotonic() - signalled >= DRAIN_S

    _, errors = load.communicate(timeout=120)
    assert b"Traceback" not in errors
    replies = json.loads(out.read_text())["replies"]
    assert "201" in {reply["status"] for reply in replies}
    drained_at = signalled_at + DRAIN_S - 0.05
    during = [r for r in replies if r["sent_at"] < drained_at]
    assert [r for r in during if r["sent_at"] > signalled_at], "requests were sent while it drained"
    not_served = [r for r in during if r["status"] != "201"]
    assert not not_served, f"sent before the drain ended and not served: {not_served}"
    closing = [r for r in replies if drained_at <= r["sent_at"] <= exited_at]
    cut = [r for r in closing if r["status"] not in AFTER_THE_DRAIN | {RESET_AT_CLOSE}]
    cut += [r for r in replies if r["sent_at"] > exited_at and r["status"] not in AFTER_THE_DRAIN]
    assert not cut, cut
    if victim == "substation":
        # Its reports say it is draining (admission answers carry them): the balancer sends nothing new its way,
        # so nothing is on its way when its listener closes.
        late = [r for r in replies if r["sent_at"] > signalled_at + 1.0 and r["status"] == "201"]
        assert late and all(r["substation"] == "other" for r in late), [r for r in late if r["substation"] != "other"]
