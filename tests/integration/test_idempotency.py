"""Idempotency-Key end to end: duplicates, even concurrent ones, start one session and get its answer."""

from __future__ import annotations

import concurrent.futures
import hashlib

import pytest

from tests.helpers import call, metric_value, requests_served_by_each_worker, wait_until

LONG = {"TIME_SCALE": "1"}  # nothing ends during a test


def start(gateway_url: str, body=None, key: str | None = None, fresh_connection: bool = False):
    headers = {} if key is None else {"Idempotency-Key": key}
    if fresh_connection:
        headers["Connection"] = "close"
    return call("POST", f"{gateway_url}/initiate_energy_transfer", body, headers=headers)


def sessions_started(grid) -> int:
    total = 0
    for name, substation in grid.substations.items():
        text = call("GET", f"{substation.url}/metrics").raw.decode()
        total += metric_value(text, "substation_sessions_started_total", substation=name)
    return total


@pytest.mark.parametrize("workers", [1, 2], ids=["one worker", "two workers sharing the key file"])
def test_fifty_concurrent_duplicates_start_exactly_one_session(services, tmp_path, workers):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    gateway_env = {
        "WEB_CONCURRENCY": str(workers),
        "IDEMPOTENCY_DB": str(tmp_path / "keys.sqlite3"),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    grid = services.grid(substation_env=LONG, gateway_env=gateway_env)
    body = {"vehicle_id": "EV-7", "energy_kwh": 20}
    # A connection each, and a new key each round until one round's duplicates met on every worker: a
    # gevent worker may accept a whole burst of connections before the other wakes.
    rounds, spanned = 0, False
    while not spanned and rounds < 10:
        rounds += 1
        before = requests_served_by_each_worker(metrics_dir)
        with concurrent.futures.ThreadPoolExecutor(50) as pool:
            keys = [f"order-{rounds}"] * 50
            replies = list(pool.map(lambda key: start(grid.gateway.url, body, key, fresh_connection=True), keys))
        assert [r.status for r in replies] == [201] * 50, {r.status for r in replies}
        assert len({r.body["session_id"] for r in replies}) == 1
        assert len({r.headers["Location"] for r in replies}) == 1
        assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in replies) == 49
        served = requests_served_by_each_worker(metrics_dir)
        spanned = sum(served[worker] > before.get(worker, 0) for worker in served) == workers
    assert spanned, f"no round's duplicates reached every worker: {served}"
    assert sessions_started(grid) == rounds


def test_a_later_retry_gets_the_same_session_and_another_key_a_new_one(services):
    grid = services.grid(substation_env=LONG)
    first = start(grid.gateway.url, key="retry-me")
    again = start(grid.gateway.url, key="retry-me")
    assert first.status == again.status == 201
    assert again.body == first.body and again.headers["Idempotent-Replayed"] == "true"
    assert start(grid.gateway.url, key="another").body["session_id"] != first.body["session_id"]
    assert start(grid.gateway.url).body["session_id"] != first.body["session_id"], "no key, no replay"
    assert sessions_started(grid) == 3


def test_the_same_key_with_another_body_is_refused(services):
    grid = services.grid(substation_env=LONG)
    assert start(grid.gateway.url, {"energy_kwh": 11}, key="k").status == 201
    reply = start(grid.gateway.url, {"energy_kwh": 30}, key="k")
    assert reply.status == 422 and reply.content_type == "application/problem+json"
    assert "different request body" in reply.body["detail"]
    bad = start(grid.gateway.url, key="x" * 256)
    assert bad.status == 400 and bad.content_type == "application/problem+json"
    assert sessions_started(grid) == 1


def test_a_refusal_is_not_remembered_so_a_retry_with_the_key_can_succeed(services):
    # Each session at its maximum (fixed): 22 kWh at 22 kW lasts 1 s, and fills the substation.
    grid = services.grid({"only": 22}, substation_env={"TIME_SCALE": "3600", "ALLOCATION": "fixed"})
    first = start(grid.gateway.url, {"energy_kwh": 22, "max_power_kw": 22})
    assert first.status == 201
    refused = start(grid.gateway.url, {"max_power_kw": 22}, key="k")
    assert refused.status == 503 and "Retry-After" in refused.headers
    # The session ends within a second: a retry with the same key then starts one.
    retried = wait_until(
        lambda: (reply := start(grid.gateway.url, {"max_power_kw": 22}, key="k")).status == 201 and reply,
        timeout=10,
        interval=0.2,
    )
    assert retried.body["session_id"] != first.body["session_id"]
    assert start(grid.gateway.url, {"max_power_kw": 22}, key="k").body == retried.body


CLIENTS = "fleet-a=token-a-0123456789abcdef,fleet-b=token-b-0123456789abcdef"


def as_client(token: str, key: str) -> dict:
    return {"Authorization": f"Bearer {token}", "Idempotency-Key": key}


def test_a_keyed_sessions_id_cannot_be_derived_from_its_key(services):
    grid = services.grid({"a": 150}, substation_env=LONG)
    reply = start(grid.gateway.url, key="order-2026-0043")
    assert reply.status == 201
    token = reply.body["session_id"].split(".", 1)[1]
    assert token != hashlib.sha256(b"order-2026-0043").hexdigest()[:32], "whoever knows the key knows the session"
    again = start(grid.gateway.url, key="order-2026-0043")
    assert again.body["session_id"] == reply.body["session_id"], "the key still names its one session"


def test_keys_are_each_clients_own(services):
    grid = services.grid({"a": 150}, substation_env=LONG, gateway_env={"CLIENT_TOKENS": CLIENTS})
    url = f"{grid.gateway.url}/initiate_energy_transfer"
    mine = call("POST", url, {"energy_kwh": 20}, headers=as_client("token-a-0123456789abcdef", "shared-key"))
    assert mine.status == 201
    # Another client with the same key: neither 422 (another body) nor the first client's session.
    other = call("POST", url, {"energy_kwh": 30}, headers=as_client("token-b-0123456789abcdef", "shared-key"))
    assert other.status == 201 and other.body["session_id"] != mine.body["session_id"], other.body
    same_body = call("POST", url, {"energy_kwh": 20}, headers=as_client("token-b-0123456789abcdef", "other-key"))
    pre_claimed = call("POST", url, {"energy_kwh": 20}, headers=as_client("token-a-0123456789abcdef", "other-key"))
    assert pre_claimed.status == 201 and pre_claimed.body["session_id"] != same_body.body["session_id"]
    assert "Idempotent-Replayed" not in pre_claimed.headers
    replay = call("POST", url, {"energy_kwh": 20}, headers=as_client("token-a-0123456789abcdef", "shared-key"))
    assert replay.body["session_id"] == mine.body["session_id"] and replay.headers["Idempotent-Replayed"] == "true"


def test_with_client_tokens_the_gateway_serves_only_its_clients(services):
    grid = services.grid({"a": 150}, substation_env=LONG, gateway_env={"CLIENT_TOKENS": CLIENTS})
    url = f"{grid.gateway.url}/initiate_energy_transfer"
    anonymous = call("POST", url)
    assert anonymous.status == 401 and anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert anonymous.content_type == "application/problem+json"
    wrong = call("POST", url, headers={"Authorization": "Bearer not-a-client-token"})
    assert wrong.status == 401
    assert call("POST", url, headers={"Authorization": "Bearer token-a-0123456789abcdef"}).status == 201
    assert call("GET", f"{grid.gateway.url}/healthz").status == 200, "probes stay open"


def test_a_key_file_that_cannot_be_read_at_start_fails_keyed_requests_only_until_it_can(services, tmp_path):
    keys = tmp_path / "keys.sqlite3"
    keys.write_bytes(b"not a database" * 500)
    grid = services.grid({"a": 150}, substation_env=LONG, gateway_env={"IDEMPOTENCY_DB": str(keys)})
    refused = start(grid.gateway.url, key="k-1")
    assert refused.status == 503 and "nothing was started" in refused.body["detail"], refused.body
    assert start(grid.gateway.url).status == 201, "a request without a key needs no key file"
    keys.rename(tmp_path / "keys.sqlite3.broken")  # moved aside: the gateway opens a new one, unrestarted
    assert start(grid.gateway.url, key="k-1").status == 201
    assert start(grid.gateway.url, key="k-1").headers["Idempotent-Replayed"] == "true"
