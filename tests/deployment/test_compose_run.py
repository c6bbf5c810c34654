"""docker-compose.yml built and run for real: the images build from the Dockerfile, every service but Grafana
starts, and from outside the grid answers, Prometheus scrapes every target, a substation killed comes back
with its sessions, and `down -v` leaves nothing behind.

Runs with Podman (podman-compose, from PyPI) or else Docker (docker compose); tools/system-packages.sh installs
Podman, and tools/standin-images.sh builds offline stand-ins for the public images where no registry is
reachable. Podman 4.3 refuses a host port range (see compose/podman.override.yml) and does not wait for
`condition: service_healthy`: this test waits itself.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import urllib3

from tests.chargers import ChargerLoop
from tests.helpers import call, wait_until
from tools.processes import port_in_use, url_answers
from tools.topology import COMPOSE_FILE, ROOT, load_compose

PROJECT = "smart-grid-compose-test"
OVERRIDE = Path(__file__).parent / "compose" / "podman.override.yml"
SERVICES = [name for name in load_compose()["services"] if not name.startswith("grafana")]
PORTS = [6000, 7000, 5001, 5002, 5003, 9000, 9100, 9090]
PODMAN_COMPOSE = Path(sys.executable).parent / "podman-compose"


def engine() -> tuple[str, list[str]] | None:
    """The container engine and its compose command, or None where neither runs."""
    if shutil.which("podman") and PODMAN_COMPOSE.exists():
        base = [str(PODMAN_COMPOSE), "-p", PROJECT, "-f", str(COMPOSE_FILE), "-f", str(OVERRIDE)]
        return "podman", base
    if shutil.which("docker") and subprocess.run(["docker", "info"], capture_output=True).returncode == 0:
        return "docker", ["docker", "compose", "-p", PROJECT, "-f", str(COMPOSE_FILE)]
    return None


ENGINE = engine()
# Compose publishes the suite's own ports (6000, 7000, 5001-5003, 9000, 9100, 9090): its tests run on one worker, whole
# (tests/conftest.py), and first, being long. The first test waits for the images to build.
pytestmark = [pytest.mark.long, pytest.mark.timeout(900)]


@pytest.fixture(autouse=True, scope="module")
def an_engine():
    """Never skipped: `make test` installs Podman (tools/system-packages.sh); without one, this fails and says so."""
    if ENGINE is None:
        pytest.fail("no container engine here (Podman or Docker): `bash tools/system-packages.sh test` installs Podman")


def compose(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    command = [*ENGINE[1], *args]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, f"{' '.join(args)} failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    return run


def clear_project() -> None:
    """Nothing left of this compose project: `down -v`, then whatever it could not remove (podman-compose
    can leave a container that its restart policy brought back while `down` stopped the others)."""
    subprocess.run([*ENGINE[1], "down", "-v"], cwd=ROOT, capture_output=True, timeout=300)
    if ENGINE[0] != "podman":
        return
    label = f"label=com.docker.compose.project={PROJECT}"
    for kind, listing in (("container", ["ps", "-a", "-q"]), ("volume", ["volume", "ls", "-q"])):
        left = subprocess.run(["podman", *listing, "--filter", label], capture_output=True, text=True).stdout.split()
        if left:
            remove = ["rm", "-f"] if kind == "container" else ["volume", "rm", "-f"]
            subprocess.run(["podman", *remove, *left], capture_output=True, timeout=120)
    subprocess.run(["podman", "network", "rm", "-f", f"{PROJECT}_default"], capture_output=True, timeout=60)


def inspect(container: str, template: str) -> str:
    name = ENGINE[0]
    return subprocess.run(
        [name, "inspect", container, "--format", template], capture_output=True, text=True
    ).stdout.strip()


def container_of(service: str) -> str:
    name = ENGINE[0]
    listing = subprocess.run([name, "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True).stdout
    return next(c for c in listing.split() if c.startswith(PROJECT) and service in c)


@pytest.fixture(scope="module")
def grid():
    clear_project()  # whatever an earlier run left of this project
    busy = [port for port in PORTS if port_in_use(port)]
    assert not busy, f"ports {busy} are in use: stop `make up` or a compose grid first"
    timings = {}
    started = time.monotonic()
    build_args = ["--podman-build-args=--network host"] if ENGINE[0] == "podman" else []
    # One service per image: compose would build substation2 and 3 again. Every image, or `up` runs a stale one.
    built = {service["image"]: name for name, service in load_compose()["services"].items() if "build" in service}
    compose(*build_args, "build", *built.values(), timeout=1200)
    timings["build_s"] = time.monotonic() - started
    try:
        started = time.monotonic()
        compose("up", "-d", *SERVICES)
        wait_until(lambda: url_answers("http://127.0.0.1:6000/readyz"), timeout=180, interval=1)
        timings["up_s"] = time.monotonic() - started
        print(f"\ncompose: build {timings['build_s']:.0f} s, up and ready {timings['up_s']:.0f} s", file=sys.stderr)
        yield timings
    finally:
        started = time.monotonic()
        clear_project()
        print(f"compose: down -v {time.monotonic() - started:.0f} s", file=sys.stderr)


def test_a_charging_request_through_the_containers_starts_a_session(grid):
    reply = call("POST", "http://127.0.0.1:6000/initiate_energy_transfer", {"energy_kwh": 250})
    assert reply.status == 201 and reply.body["result"] == "Charging started"
    keyed = [call("POST", "http://127.0.0.1:6000/initiate_energy_transfer", headers={"Idempotency-Key": "c-1"})
             for _ in range(2)]  # fmt: skip
    assert [r.status for r in keyed] == [201, 201] and keyed[1].headers["Idempotent-Replayed"] == "true", "Redis"
    listed = call("GET", "http://127.0.0.1:7000/substations").body["substations"]
    assert {s["name"]: s["healthy"] for s in listed} == {f"substation{n}": True for n in (1, 2, 3)}


def test_prometheus_scrapes_every_target(grid):
    def targets():
        body = call("GET", "http://127.0.0.1:9090/api/v1/targets").body
        return [(t["labels"]["job"], t["health"]) for t in body["data"]["activeTargets"]]

    wait_until(lambda: len(targets()) == 6 and all(health == "up" for _, health in targets()), timeout=90, interval=1)
    jobs = sorted(job for job, _ in targets())
    assert jobs == ["balancer", "gateway", "ocpp", "substations", "substations", "substations"]


def test_the_fleet_charges_through_the_ocpp_service_and_the_live_page_shows_it(grid):
    def charging() -> list[dict]:
        chargers = call("GET", "http://127.0.0.1:9000/chargers").body["chargers"]
        return [c for c in chargers if c["fleet"] and c["connected"] and c["session_id"]]

    wait_until(lambda: len(charging()) >= 3, timeout=90, interval=1)
    plugged = charging()[0]
    session = call("GET", f"http://127.0.0.1:6000/sessions/{plugged['session_id']}").body
    assert session["charger_id"] == plugged["charger_id"], "a charger's session, read through the gateway"
    shown = call("GET", "http://127.0.0.1:7000/grid/chargers").body["chargers"]
    assert any(c["charger_id"] == plugged["charger_id"] and c["connected"] for c in shown)


def test_a_client_starts_a_charger_through_the_gateway(grid):
    """Gateway, balancer, the OCPP service's API (not published: the balancer reaches it inside), a charger."""
    with ChargerLoop() as chargers:
        charger = chargers.connect("ws://127.0.0.1:9000/ocpp", "substation2-cp1", "2.0.1")
        started = call("POST", "http://127.0.0.1:6000/initiate_energy_transfer",
                       {"charger_id": "substation2-cp1", "vehicle_id": "compose-car", "max_power_kw": 11})  # fmt: skip
        assert started.status == 201, started.body
        assert started.body["substation"] == "substation2" and started.body["charger_id"] == "substation2-cp1"
        assert charger.transaction is not None and charger.transaction.id_tag == "compose-car"
        chargers.run(charger.unplug())


def test_services_run_as_uid_10001_on_a_read_only_root(grid):
    # Read from the kernel, not through `exec`: the service's own process, as it runs (and exec cannot enter a
    # container when the engine itself runs in a chroot).
    for service in ("substation1", "balancer", "gateway", "ocpp", "fleet"):
        pid = int(inspect(container_of(service), "{{.State.Pid}}"))
        status = Path(f"/proc/{pid}/status").read_text()
        uid = next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))
        assert uid == "10001", service
        with pytest.raises(OSError) as refused:
            Path(f"/proc/{pid}/root/app/written").write_text("")  # its own root, as the process sees it
        assert refused.value.errno == errno.EROFS, service


def test_a_killed_substation_comes_back_under_its_restart_policy_with_its_sessions(grid):
    session = call("POST", "http://127.0.0.1:5001/begin_charging", {"energy_kwh": 250, "max_power_kw": 11}).body
    session_id = session["session"]["session_id"]
    container = container_of("substation1")
    epoch = call("GET", "http://127.0.0.1:5001/load").body["epoch"]
    os.kill(int(inspect(container, "{{.State.Pid}}")), signal.SIGKILL)  # the process dies; nobody stops it

    def restarted() -> bool:
        # A kept-alive connection to the dead process gets no reset (its network namespace is gone), so the
        # first request on it may find the new process hanging up: that is "not yet", not a failure.
        try:
            return (
                url_answers("http://127.0.0.1:5001/healthz")
                and call("GET", "http://127.0.0.1:5001/load").body["epoch"] != epoch
            )
        except urllib3.exceptions.HTTPError:
            return False

    wait_until(restarted, timeout=60, interval=0.5)
    assert int(inspect(container, "{{.RestartCount}}")) >= 1
    kept = call("GET", f"http://127.0.0.1:5001/sessions/{session_id}").body
    assert kept["state"] == "charging" and kept["energy_delivered_kwh"] > 0, "its SQLite volume kept it"


def test_down_v_leaves_nothing_behind(grid):
    """The last test: the fixture's own `down -v` then finds nothing to do."""
    started = time.monotonic()
    compose("down", "-v", timeout=300)
    grid["down_s"] = time.monotonic() - started
    name = ENGINE[0]
    containers = subprocess.run([name, "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True).stdout
    assert [c for c in containers.split() if c.startswith(PROJECT)] == []
    volumes = subprocess.run([name, "volume", "ls", "--format", "{{.Name}}"], capture_output=True, text=True).stdout
    assert [v for v in volumes.split() if v.startswith(PROJECT)] == []
    assert not any(port_in_use(port) for port in PORTS)
