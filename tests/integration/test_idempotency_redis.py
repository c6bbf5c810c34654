"""Idempotency-Keys in Redis, shared by gateway replicas: the store's contract against a real redis-server,
two gateway processes taking 50 concurrent duplicates of one request between them, and a gateway whose
Redis is down."""

from __future__ import annotations

import concurrent.futures
import shutil
import time

import pytest

from charge_request_service.idempotency import RedisKeyStore
from tests.helpers import call, metric_value
from tests.idempotency_contract import *  # noqa: F403 - the contract's tests run here, on Redis
from tools.processes import free_port
from tools.stack import Stack, redis_server


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    assert shutil.which("redis-server"), "redis-server is missing: `apt-get install redis-server` (.ci/run does)"
    stack = Stack(tmp_path_factory.mktemp("redis"))
    yield redis_server(stack)
    stack.stop_all()


@pytest.fixture
def make_store(redis_url, request):
    prefix = f"{request.node.name}:"  # each test its own keys on the one server

    def make(ttl_s=60.0, lease_s=5.0, max_keys=1000):
        return RedisKeyStore(redis_url, ttl_s, lease_s, prefix=prefix)

    return make


@pytest.fixture
def other_store(make_store):
    return make_store


def test_two_gateways_sharing_redis_start_one_session_for_50_concurrent_duplicates(services, redis_url):
    grid = services.grid({"a": 1000}, substation_env={"TIME_SCALE": "1"})
    shared = {"IDEMPOTENCY_REDIS_URL": redis_url, "BALANCER_URL": grid.balancer.url}
    gateways = [services.service(f"gateway{n}", "gateway", shared) for n in (1, 2)]
    body = {"vehicle_id": "EV-7", "energy_kwh": 20}

    def post(n: int):
        return call("POST", f"{gateways[n % 2].url}/initiate_energy_transfer", body, headers={"Idempotency-Key": "r-1"})

    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        replies = list(pool.map(post, range(50)))
    assert {r.status for r in replies} <= {201, 409}, [r.body for r in replies if r.status not in (201, 409)]
    started = [r for r in replies if r.status == 201]
    assert len({r.body["session_id"] for r in started}) == 1, "one session, whichever replica answered"
    exposed = call("GET", f"{grid.substations['a'].url}/metrics").raw.decode()
    assert metric_value(exposed, "substation_sessions_started_total", substation="a") == 1


@pytest.mark.parametrize("redis", ["never up", "stopped after use"])
def test_while_redis_is_down_a_keyed_request_is_refused_at_once_and_one_without_a_key_is_served(services, redis):
    grid = services.grid({"a": 150}, substation_env={"TIME_SCALE": "1"})
    if redis == "never up":
        url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    else:
        url = redis_server(services, name="redis-to-stop")
        server = services.started[-1]  # the process redis_server just started
    gateway = services.gateway(grid.balancer.url, name="gateway-on-redis", IDEMPOTENCY_REDIS_URL=url)
    start = f"{gateway.url}/initiate_energy_transfer"
    if redis == "stopped after use":
        assert call("POST", start, headers={"Idempotency-Key": "before"}).status == 201  # its connection pooled
        server.stop()

    began = time.monotonic()
    refused = call("POST", start, {"energy_kwh": 20}, headers={"Idempotency-Key": "while-down"}, timeout=10)
    assert time.monotonic() - began < 1, "refused at once, not after retries against a server that is not there"
    assert refused.status == 503 and refused.content_type == "application/problem+json", refused.raw[:300]
    assert refused.body["status"] == 503 and "Idempotency" in refused.body["detail"]
    assert int(refused.headers["Retry-After"]) >= 1
    held = call("GET", f"{grid.substations['a'].url}/load").body["active_sessions"]
    assert held == (0 if redis == "never up" else 1), "nothing started for a key the gateway cannot read"
    # A request without a key needs no store: the gateway serves it as ever.
    assert call("POST", start, {"energy_kwh": 20}).status == 201
