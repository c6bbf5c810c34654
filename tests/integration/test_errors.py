"""Every error is problem+json with the right status, and nothing hangs when an upstream fails."""

from __future__ import annotations

import json
import signal
import time

import pytest

from tests.http import call

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


@pytest.mark.parametrize(
    ("kwargs", "status", "detail"),
    [
        ({"body": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, "not valid JSON"),
        ({"body": b"energy=11", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}, 415, "json"),
        ({"json_body": {"energy_kwh": -5}}, 422, "energy_kwh"),
        ({"json_body": {"max_power_kw": 1e308}}, 422, "max_power_kw"),
        ({"body": b'{"energy_kwh": NaN}', "headers": {"Content-Type": "application/json"}}, 422, "finite"),
        ({"json_body": {"battery": "big"}}, 422, "battery"),
        ({"json_body": ["energy_kwh", 11]}, 422, "JSON object"),
        ({"body": b"null", "headers": {"Content-Type": "application/json"}}, 422, "not null"),
        ({"json_body": {"vehicle_id": "EV 1; DROP"}}, 422, "vehicle_id"),
        ({"body": b"{" + b" " * 20_000 + b"}", "headers": {"Content-Type": "application/json"}}, 413, ""),
    ],
)
def test_bad_input_is_a_clear_4xx(grid, kwargs, status, detail):
    for url in (grid.gateway.url + "/initiate_energy_transfer", grid.balancer.url + "/assign_substation"):
        reply = call("POST", url, **kwargs)
        assert_problem(reply, status)
        assert detail.lower() in reply.raw.decode().lower()


def test_unknown_routes_methods_and_sessions(grid):
    assert_problem(call("GET", f"{grid.gateway.url}/nowhere"), 404)
    reply = call("GET", f"{grid.gateway.url}/initiate_energy_transfer")
    assert_problem(reply, 405)
    assert "POST" in reply.headers["Allow"]
    assert_problem(call("GET", f"{grid.gateway.url}/sessions/not-a-session"), 400)
    assert_problem(call("GET", f"{grid.gateway.url}/sessions/a.0123456789abcdef"), 404)
    assert_problem(call("GET", f"{grid.gateway.url}/sessions/nosuchstation.0123456789abcdef"), 404)
    assert_problem(call("POST", f"{grid.gateway.url}/sessions/a.0123456789abcdef/stop"), 404)


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


def test_owning_substation_down_gives_502_for_its_sessions(services):
    grid = services.grid({"a": 150}, substation_env=LONG)
    session = call("POST", f"{grid.gateway.url}/initiate_energy_transfer").body
    grid.substations["a"].process.stop()
    reply = call("GET", f"{grid.gateway.url}/sessions/{session['session_id']}")
    assert_problem(reply, 502)
    assert "substation a" in reply.body["detail"]


def test_no_healthy_substation_gives_503(services):
    grid = services.grid({"a": 150}, substation_env=LONG)
    grid.substations["a"].process.stop()
    reply = call("POST", f"{grid.gateway.url}/initiate_energy_transfer")
    assert_problem(reply, 503)
    assert int(reply.headers["Retry-After"]) >= 1


def test_invalid_configuration_stops_the_service_with_a_clear_message(services, tmp_path):
    from tests.conftest import compose_command
    from tools.processes import ServiceProcess, free_port

    log = tmp_path / "bad.log"
    port = free_port()
    process = ServiceProcess(
        "bad",
        compose_command("substation1"),
        {"BIND": f"127.0.0.1:{port}", "CAPACITY_KW": "lots"},
        f"http://127.0.0.1:{port}/healthz",
        log_path=log,
    ).start()
    with pytest.raises(RuntimeError, match="exited"):
        process.wait_healthy(timeout=20)
    process.stop()
    output = log.read_text()
    assert "SUBSTATION_NAME is required" in output
    assert "CAPACITY_KW must be a number" in output


def test_a_call_that_could_not_connect_is_tried_again(services):
    """The request was never sent, so the gateway may repeat it: a balancer back within the retries serves it."""
    import http.server
    import threading

    from tools.processes import free_port

    class Balancer(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            body = json.dumps({"session_id": "a.0123456789abcdef", "substation": "a"}).encode()
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    port = free_port()
    # Retries after 0.05, 0.15, 0.35, 0.75 and 1.55 s: the balancer comes up after the first is refused.
    gateway = services.gateway(f"http://127.0.0.1:{port}", CONNECT_RETRIES="5")
    server = None

    def come_up_late():
        nonlocal server
        time.sleep(0.25)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Balancer)
        server.serve_forever()

    threading.Thread(target=come_up_late, daemon=True).start()
    try:
        reply = call("POST", f"{gateway.url}/initiate_energy_transfer")
    finally:
        while server is None:
            time.sleep(0.01)
        server.shutdown()
    assert reply.status == 201, reply.body
    assert reply.body["result"] == "Charging started"
