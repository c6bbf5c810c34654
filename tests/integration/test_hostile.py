"""What a hostile or unlucky client found, each reproduced against real processes and answered as it should."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import sqlite3
import time
from pathlib import Path

import pytest

from tests.helpers import call, load_report, metric_value, view_of, wait_until
from tools.processes import free_port, venv_command
from tools.stack import RunningService, redis_server
from tools.topology import command_of_target

LONG = {"TIME_SCALE": "1"}
PROBLEM = "application/problem+json"
TOKEN = "a-topology-token-for-tests"


def raw_exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send bytes as they are, read the answer until the server closes or stops sending."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
                if b"\r\n\r\n" in answer and len(answer) >= answer.index(b"\r\n\r\n") + 4 + _length(answer):
                    break
        except TimeoutError:
            pass
        return answer


def _length(answer: bytes) -> int:
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
    for line in head.split("\r\n"):
        if line.startswith("content-length:"):
            return int(line.split(":", 1)[1])
    return 0


def until_closed(sock: socket.socket, within_s: float) -> tuple[bytes, bool]:
    """Everything the server sends until it closes the connection; whether it did within `within_s`.
    A reset counts as closed: a server that closes with bytes of ours unread resets rather than ends."""
    sock.settimeout(within_s)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        return received, False
    except ConnectionResetError:
        pass
    return received, True


def status_and_type(answer: bytes) -> tuple[int, str]:
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    status = int(head.split(" ", 2)[1])
    content_type = next(
        (line.split(":", 1)[1].strip() for line in head.split("\r\n") if line.lower().startswith("content-type:")), ""
    )
    return status, content_type


def hostile_grid(stack):
    return stack.grid({"a": 150, "b": 150}, substation_env=LONG, balancer_env={"TOPOLOGY_TOKEN": TOKEN})


@pytest.fixture(scope="module")
def grid(module_services):
    """One grid for the tests that only send it what a hostile client would: none relies on its state."""
    return hostile_grid(module_services)


@pytest.fixture
def own_grid(services):
    """A grid of the test's own, for one that registers substations or counts sessions."""
    return hostile_grid(services)


def test_made_up_methods_do_not_grow_the_gateways_metrics(grid):
    before = call("GET", f"{grid.gateway.url}/metrics").raw
    for n in range(300):
        call(f"INVENT{n}", f"{grid.gateway.url}/initiate_energy_transfer")
    after = call("GET", f"{grid.gateway.url}/metrics").raw.decode()
    assert len(after) < len(before) + 4000, "a few series for the method 'other', not one per invented method"
    assert "INVENT" not in after
    assert metric_value(after, "gateway_requests_total", method="other", status="405") == 300


def test_slow_clients_are_cut_off_and_everyone_else_is_served_meanwhile(grid):
    slow = []
    head = b"POST /initiate_energy_transfer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    for _ in range(1000):
        sock = socket.create_connection(("127.0.0.1", grid.gateway.port), timeout=15)
        sock.sendall(head + b"Content-Length: 100\r\n\r\n{")
        slow.append(sock)
    try:
        started = time.monotonic()
        assert call("GET", f"{grid.gateway.url}/healthz", timeout=5).status == 200
        assert call("POST", f"{grid.gateway.url}/initiate_energy_transfer", timeout=5).status == 201
        assert time.monotonic() - started < 2, "health and a normal request answer at once"
        answers = [sock.recv(4096) for sock in slow]  # each ends within the 5 s the body has to arrive
        assert time.monotonic() - started < 12
        assert {status_and_type(answer) for answer in answers} == {(408, PROBLEM)}
        assert all(b"\r\nconnection: close\r\n" in answer.lower() for answer in answers)
        # Closed at once, not kept alive for the rest of a body that is not coming.
        assert all(until_closed(sock, within_s=1)[1] for sock in slow)
    finally:
        for sock in slow:
            sock.close()


@pytest.mark.parametrize("service", ["gateway", "balancer", "substation"])
def test_a_huge_integer_and_deep_nesting_are_4xx_not_500(grid, service):
    url = {
        "gateway": f"{grid.gateway.url}/initiate_energy_transfer",
        "balancer": f"{grid.balancer.url}/assign_substation",
        "substation": f"{grid.substations['a'].url}/begin_charging",
    }[service]
    huge = b'{"energy_kwh": ' + b"9" * 400 + b"}"
    reply = call("POST", url, body=huge, headers={"Content-Type": "application/json"})
    assert reply.status == 422 and reply.content_type == PROBLEM, reply.raw[:200]
    deep = b"[" * 5000 + b"]" * 5000
    reply = call("POST", url, body=deep, headers={"Content-Type": "application/json"})
    assert reply.status == 400 and reply.content_type == PROBLEM and "deeply" in reply.body["detail"]


def test_a_huge_integer_and_deep_nesting_in_a_registration_are_4xx(grid):
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    for body in (b'{"name": "c", "url": ' + b"9" * 400 + b"}", b"[" * 5000 + b"]" * 5000):
        reply = call("POST", f"{grid.balancer.url}/substations", body=body, headers=auth)
        assert reply.status in (400, 422) and reply.content_type == PROBLEM


def test_a_chunked_body_has_the_same_limit_as_any_other(grid):
    def chunked(payload: bytes) -> bytes:
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(payload[i : i + 4096]), payload[i : i + 4096])
                          for i in range(0, len(payload), 4096))  # fmt: skip
        return (
            b"POST /initiate_energy_transfer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunks + b"0\r\n\r\n"
        )

    big = b'{"vehicle_id": "EV-1", "energy_kwh": 11' + b" " * 20_000 + b"}"
    assert status_and_type(raw_exchange(grid.gateway.port, chunked(big))) == (413, PROBLEM)
    small = b'{"vehicle_id": "EV-1", "energy_kwh": 11}'
    assert status_and_type(raw_exchange(grid.gateway.port, chunked(small)))[0] == 201


def test_after_a_body_too_large_the_connection_is_closed_not_reused(services):
    substation = services.substation("a", **LONG)
    head = b"POST /begin_charging HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    # Declared too large: refused before a byte of the body arrives, and nothing more is read.
    with socket.create_connection(("127.0.0.1", substation.port), timeout=5) as sock:
        sock.sendall(head + b"Content-Length: 20000\r\n\r\n")
        answer, closed = until_closed(sock, within_s=2)
    assert status_and_type(answer) == (413, PROBLEM) and b"\r\nconnection: close\r\n" in answer.lower()
    assert closed, "the connection waits for a body the server will never read"
    # Found too large as it arrives (chunked), with a second request behind it on the same connection:
    # that one is never served, since the rest of the body before it is never read.
    chunk = b"x" * 4096
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(5)) + b"0\r\n\r\n"
    pipelined = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", substation.port), timeout=5) as sock:
        sock.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n" + body + pipelined)
        answer, closed = until_closed(sock, within_s=2)
    assert status_and_type(answer) == (413, PROBLEM) and b"\r\nconnection: close\r\n" in answer.lower()
    assert answer.count(b"HTTP/1.1 ") == 1, answer
    assert closed
    assert call("GET", f"{substation.url}/load").body["active_sessions"] == 0


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"b" * 9000 + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: y\r\n" % n for n in range(200)) + b"\r\n", 431),
        (b"NOT A REQUEST\r\n\r\n", 400),
    ],
)
def test_what_gunicorn_refuses_itself_is_problem_json_too(grid, request_bytes, status):
    answer = raw_exchange(grid.gateway.port, request_bytes)
    assert status_and_type(answer) == (status, PROBLEM), answer[:300]
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert body["status"] == status and b"<html" not in answer.lower()


def test_a_substation_refuses_a_session_named_after_another(grid):
    held = call("GET", f"{grid.substations['a'].url}/load").body["active_sessions"]
    reply = call("POST", f"{grid.substations['a'].url}/begin_charging", {"session_id": "b.0123456789abcdef"})
    assert reply.status == 422 and reply.body["errors"][0]["field"] == "session_id"
    assert call("GET", f"{grid.substations['a'].url}/load").body["active_sessions"] == held, "none started"


def test_a_locked_journal_refuses_what_it_cannot_keep_blocks_nothing_and_loses_nothing(services, tmp_path):
    journal = tmp_path / "a.sqlite3"
    env = {"TIME_SCALE": "3600", "SESSION_DB": str(journal), "ALLOCATION": "fixed"}  # 11 kWh at 11 kW: 1 s
    grid = services.grid({"a": 150}, substation_env=env)
    substation = grid.substations["a"]
    ending = call("POST", f"{grid.gateway.url}/initiate_energy_transfer", {"max_power_kw": 11}).body
    other = sqlite3.connect(journal, timeout=0)
    other.execute("BEGIN EXCLUSIVE")  # another writer holds the journal
    try:
        started = time.monotonic()
        refused = call("POST", f"{substation.url}/begin_charging", timeout=5)
        assert refused.status == 503 and "journal" in refused.body["title"].lower()
        assert call("GET", f"{substation.url}/healthz", timeout=2).status == 200
        assert time.monotonic() - started < 2, "never blocked"
        ready = call("GET", f"{substation.url}/readyz")
        assert ready.status == 503 and "journal" in ready.body
        time.sleep(1.2)  # the session completes meanwhile: in memory, its write waits for the journal
        load = call("GET", f"{substation.url}/load", timeout=2)
        assert load.status == 200 and load.body["active_sessions"] == 0 and load.body["ev_power_kw"] == 0
        done = call("GET", f"{substation.url}/sessions/{ending['session_id']}").body
        assert done["state"] == "completed"
    finally:
        other.rollback()
        other.close()
    wait_until(lambda: call("GET", f"{substation.url}/readyz").status == 200, timeout=5)
    kept = sqlite3.connect(journal).execute("SELECT state FROM sessions").fetchall()
    assert kept == [("completed",)], "what changed while it was locked is written once it is free"


WALL_CLOCK_OFFSET = """
# Installed for one process of a test: time.time() as the system's plus the offset in a file, which the test
# changes while the process runs, as an administrator or NTP stepping the clock would.
import os
import time

_system_time = time.time


def _offset_time():
    try:
        with open(os.environ["WALL_CLOCK_OFFSET_FILE"]) as offset:
            return _system_time() + float(offset.read() or 0)
    except (OSError, ValueError):
        return _system_time()


time.time = _offset_time
"""


def test_a_wall_clock_set_back_an_hour_does_not_freeze_the_balancers_view(services, tmp_path):
    (tmp_path / "sitecustomize.py").write_text(WALL_CLOCK_OFFSET)
    offset = tmp_path / "offset"
    offset.write_text("0")
    # The host's clock steps, for every process on it (a deadline between them stays consistent).
    clock = {"PYTHONPATH": str(tmp_path), "WALL_CLOCK_OFFSET_FILE": str(offset)}
    a = services.substation("a", 22, **LONG, **clock)
    balancer = services.balancer({"a": a}, **clock)
    gateway = services.gateway(balancer.url, **clock)
    wait_until(lambda: view_of(balancer, "a")["healthy"])
    session = call("POST", f"{gateway.url}/initiate_energy_transfer", {"max_power_kw": 22, "min_power_kw": 22}).body
    offset.write_text("-3600")  # the wall clock steps back an hour
    time.sleep(0.5)
    # Behind the balancer's back, the substation frees its power: only a poll can tell the balancer.
    assert call("POST", f"{a.url}/sessions/{session['session_id']}/stop").status == 200
    wait_until(lambda: view_of(balancer, "a")["active_sessions"] == 0, timeout=5)
    assert (
        call("POST", f"{gateway.url}/initiate_energy_transfer", {"max_power_kw": 22, "min_power_kw": 22}).status == 201
    )


def offset_clock(tmp_path, name: str, seconds: float) -> dict[str, str]:
    """Environment for one process whose wall clock is `seconds` off the host's (sitecustomize)."""
    folder = tmp_path / name
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(WALL_CLOCK_OFFSET)
    (folder / "offset").write_text(str(seconds))
    return {"PYTHONPATH": str(folder), "WALL_CLOCK_OFFSET_FILE": str(folder / "offset")}


def test_a_balancer_whose_clock_is_an_hour_behind_says_so_rather_than_no_substation_available(services, tmp_path):
    a = services.substation("a", 150, **LONG)
    b = services.substation("b", 150, **LONG)
    balancer = services.balancer({"a": a, "b": b}, **offset_clock(tmp_path, "balancer", -3600))
    wait_until(lambda: view_of(balancer, "a")["healthy"] and view_of(balancer, "b")["healthy"])
    reply = call("POST", f"{balancer.url}/assign_substation")
    assert reply.status == 503 and reply.body["title"] == "Clock skew", reply.body
    assert "a about 3600" in reply.body["detail"] and "b about 3600" in reply.body["detail"], reply.body["detail"]
    assert view_of(balancer, "a")["healthy"], "a clock that differs is not a substation that failed"


def test_a_gateway_whose_clock_is_an_hour_behind_the_balancers_says_so(services, tmp_path):
    a = services.substation("a", 150, **LONG)
    balancer = services.balancer({"a": a})
    wait_until(lambda: view_of(balancer, "a")["healthy"])
    gateway = services.gateway(balancer.url, **offset_clock(tmp_path, "gateway", -3600))
    reply = call("POST", f"{gateway.url}/initiate_energy_transfer")
    assert reply.status == 503 and reply.body["title"] == "Clock skew", reply.body
    assert "3600" in reply.body["detail"] and "load balancer" in reply.body["detail"]


def sessions_held(grid) -> int:
    return sum(call("GET", f"{s.url}/load").body["active_sessions"] for s in grid.substations.values())


def test_an_admission_the_balancer_gave_up_on_is_refused_when_the_frozen_substation_wakes(services):
    # "big" ranks first (the larger of two idle substations), and freezes with the admission in its socket.
    grid = services.grid({"big": 300, "small": 150}, substation_env=LONG, balancer_env={"ADMISSION_TIMEOUT_S": "1"})
    big = grid.substations["big"]
    big.process.signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        reply = call("POST", f"{grid.gateway.url}/initiate_energy_transfer", timeout=10)
        # Frozen, it may have admitted it before it froze: not known, so not placed on "small" as well.
        assert reply.status == 504 and reply.body["title"] == "Outcome unknown", reply.body
        assert reply.body["session_id"].startswith("big.") and time.monotonic() - started < 4.5
        assert call("GET", f"{grid.substations['small'].url}/load").body["active_sessions"] == 0
    finally:
        big.process.signal(signal.SIGCONT)
    time.sleep(1)  # it reads the admission now, past its deadline
    assert call("GET", f"{big.url}/load").body["active_sessions"] == 0, "no hidden session"
    assert call("GET", f"{grid.gateway.url}/sessions/{reply.body['session_id']}").status == 404, "known now: none"
    assert call("POST", f"{grid.gateway.url}/initiate_energy_transfer").status == 201
    assert sessions_held(grid) == 1


def test_a_retry_after_a_504_never_starts_a_second_session(services):
    grid = services.grid({"a": 150, "b": 150}, substation_env=LONG, gateway_env={"BALANCER_TIMEOUT_S": "1"})
    key = {"Idempotency-Key": "after-a-504"}
    body = {"energy_kwh": 20}
    grid.balancer.process.signal(signal.SIGSTOP)
    try:
        first = call("POST", f"{grid.gateway.url}/initiate_energy_transfer", body, headers=key, timeout=10)
        assert first.status == 504
    finally:
        grid.balancer.process.signal(signal.SIGCONT)
    early = call("POST", f"{grid.gateway.url}/initiate_energy_transfer", body, headers=key)
    assert early.status == 409 and int(early.headers["Retry-After"]) >= 1, "its outcome is not known yet"
    time.sleep(int(early.headers["Retry-After"]))
    retry = call("POST", f"{grid.gateway.url}/initiate_energy_transfer", body, headers=key)
    assert retry.status == 201, retry.body
    assert sessions_held(grid) == 1, "one session for one key"
    again = call("POST", f"{grid.gateway.url}/initiate_energy_transfer", body, headers=key)
    assert again.status == 201 and again.body["session_id"] == retry.body["session_id"]
    assert again.headers["Idempotent-Replayed"] == "true"


def test_the_topology_api_cannot_aim_the_balancer_anywhere(own_grid, services):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    registrations = f"{own_grid.balancer.url}/substations"
    for url in (
        "http://admin:secret@127.0.0.1:5999",
        "http://127.0.0.1:5999/admin?x=1",
        "http://169.254.169.254",
        "http://10.11.12.13:5000",
        "gopher://127.0.0.1:70",
    ):
        reply = call("POST", registrations, {"name": "c", "url": url}, headers=auth)
        assert reply.status == 422 and reply.body["errors"][0]["field"] == "url", (url, reply.body)
        assert "secret" not in reply.raw.decode()
    assert "secret" not in call("GET", registrations).raw.decode()

    c = services.substation("c", 150, **LONG)
    assert call("POST", registrations, {"name": "c", "url": c.url}, headers=auth).status == 201
    wait_until(lambda: view_of(own_grid, "c")["healthy"])
    c.process.stop()  # its polls fail: a series for those failures appears
    wait_until(lambda: metric_value(call("GET", f"{own_grid.balancer.url}/metrics").raw.decode(),
                                    "balancer_upstream_failures_total", substation="c", operation="poll"))  # fmt: skip
    assert call("DELETE", f"{registrations}/c", headers=auth).status == 204
    exposed = call("GET", f"{own_grid.balancer.url}/metrics").raw.decode()
    assert 'substation="c"' not in exposed, "every series of a removed substation goes"


def test_a_session_token_reused_at_the_balancer_names_one_session_not_one_per_substation(own_grid, services):
    assign = f"{own_grid.balancer.url}/assign_substation"
    token = {"Session-Token": "reusedtoken0123456789"}
    first = call("POST", assign, {"vehicle_id": "EV-1"}, headers=token)
    assert first.status == 201, first.body
    session_id = first.body["session_id"]
    for vehicle in ("EV-2", "EV-3"):  # each substation would start one, were the token not its session's
        again = call("POST", assign, {"vehicle_id": vehicle}, headers=token)
        assert again.status == 409 and again.content_type == PROBLEM, again.body
        assert again.body["session_id"] == session_id and again.headers["Location"] == f"/sessions/{session_id}"
    assert sessions_held(own_grid) == 1
    same = call("POST", assign, {"vehicle_id": "EV-1"}, headers=token)
    assert same.status == 201 and same.body["session_id"] == session_id, "the same request: its session again"
    assert sessions_held(own_grid) == 1

    # A balancer that did not place it learns it from the substation, whose 409 is no failure of its own.
    holder = first.body["substation"]
    other = services.balancer({holder: own_grid.substations[holder]}, name="other-balancer")
    wait_until(lambda: view_of(other, holder)["healthy"])
    for vehicle in ("EV-4", "EV-5", "EV-6"):
        reply = call("POST", f"{other.url}/assign_substation", {"vehicle_id": vehicle}, headers=token)
        assert reply.status == 409 and reply.body["session_id"] == session_id, reply.body
    assert view_of(other, holder)["healthy"]
    assert sessions_held(own_grid) == 1


def test_a_keyed_request_refused_for_clock_skew_leaves_its_key_free(services, tmp_path):
    a = services.substation("a", 150, **LONG)
    balancer = services.balancer({"a": a})
    wait_until(lambda: view_of(balancer, "a")["healthy"])
    offset = offset_clock(tmp_path, "gateway", -3600)
    gateway = services.gateway(balancer.url, **offset)
    key = {"Idempotency-Key": "skewed"}
    assert call("POST", f"{gateway.url}/initiate_energy_transfer", headers=key).status == 503
    Path(offset["WALL_CLOCK_OFFSET_FILE"]).write_text("0")  # the clock is put right
    retry = call("POST", f"{gateway.url}/initiate_energy_transfer", headers=key)
    assert retry.status == 201, "nothing was started: the key was not left unknown"


def test_a_registration_is_a_substation_by_what_answers_there_and_addresses_in_their_usual_form(own_grid, services):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    registrations = f"{own_grid.balancer.url}/substations"
    redis = redis_server(services, name="not-a-substation")
    c = services.substation("c", 150, **LONG)
    for url, says in (
        (redis.replace("redis://", "http://").removesuffix("/0"), "does not answer as a substation"),
        (c.url, "calls itself c, not d"),  # a substation, under another's name
    ):
        reply = call("POST", registrations, {"name": "d", "url": url}, headers=auth)
        assert reply.status == 422 and says in reply.body["errors"][0]["message"], (url, reply.body)
    for host in ("2130706433", "0x7f000001", "127.1", "0177.0.0.1", "0x7f.1"):
        reply = call("POST", registrations, {"name": "c", "url": f"http://{host}:{c.port}"}, headers=auth)
        assert reply.status == 422 and reply.body["errors"][0]["field"] == "url", (host, reply.body)
    assert call("POST", registrations, {"name": "c", "url": c.url}, headers=auth).status == 201


class Impostor:
    """An HTTP server that answers every request as substation `name` would, and counts them."""

    def __init__(self, host: str, port: int, name: str) -> None:
        import http.server
        import threading

        report = {**load_report(name).to_json()}
        impostor = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                impostor.requests += 1
                body = json.dumps(report).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.requests = 0
        self.server = http.server.ThreadingHTTPServer((host, port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_registered_name_that_resolves_elsewhere_later_is_not_followed_there(services, tmp_path):
    assert shutil.which("unshare"), "unshare (util-linux) gives the balancer a hosts file of its own"
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n127.0.0.2 substation-c.test\n")
    port = free_port()
    c = services.run(
        "c",
        command_of_target("substation"),
        {"SUBSTATION_NAME": "c", "CAPACITY_KW": "150", "BIND": f"127.0.0.2:{port}", **LONG},
        f"http://127.0.0.2:{port}/healthz",
    )
    a = services.substation("a", 150, **LONG)
    balancer_port = free_port()
    # The balancer alone sees the test's hosts file (a mount namespace of its own), as it would see DNS.
    in_own_namespace = ["unshare", "--mount", "--", "sh", "-c", f'mount --bind "{hosts}" /etc/hosts && exec "$@"', "sh"]
    process = services.run(
        "balancer",
        [*in_own_namespace, *venv_command(command_of_target("balancer"))],
        {
            "SUBSTATIONS": f"a={a.url}",
            "SUBSTATION_NETWORKS": "127.0.0.1/32,127.0.0.2/32",
            "TOPOLOGY_TOKEN": TOKEN,
            "POLL_INTERVAL_S": "0.2",
            "BIND": f"127.0.0.1:{balancer_port}",
            "ACCESS_LOG": "false",
        },
        f"http://127.0.0.1:{balancer_port}/healthz",
    )
    balancer = RunningService("balancer", balancer_port, process)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    registration = {"name": "c", "url": f"http://substation-c.test:{port}"}
    assert call("POST", f"{balancer.url}/substations", registration, headers=auth).status == 201
    wait_until(lambda: view_of(balancer, "c")["healthy"])
    impostor = Impostor("127.0.0.3", port, "c")  # outside SUBSTATION_NETWORKS
    try:
        hosts.write_text("127.0.0.1 localhost\n127.0.0.3 substation-c.test\n")  # the name now points elsewhere
        c.stop()  # its connections close: the next poll connects anew, to wherever the name points
        wait_until(lambda: not view_of(balancer, "c")["healthy"], timeout=5)
        time.sleep(1)  # five polls more
        assert impostor.requests == 0, "nothing is sent to an address outside the substations' networks"
        reply = call("POST", f"{balancer.url}/assign_substation")
        assert reply.status == 201 and reply.body["substation"] == "a"
    finally:
        impostor.stop()


def test_a_stop_refused_by_a_substations_clock_says_so(services, tmp_path):
    a = services.substation("a", 150, **LONG, **offset_clock(tmp_path, "a", 3600))
    balancer = services.balancer({"a": a})
    wait_until(lambda: view_of(balancer, "a")["healthy"])
    session = call("POST", f"{a.url}/begin_charging").body["session"]  # no deadline: nothing to be late for
    reply = call("POST", f"{balancer.url}/sessions/{session['session_id']}/stop")
    assert reply.status == 503 and reply.body["title"] == "Clock skew" and "3600" in reply.body["detail"], reply.body
