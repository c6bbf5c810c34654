"""Idempotency-Keys in Redis, shared by gateway replicas: the store's contract against a real redis-server,
two gateway processes taking 50 concurrent duplicates of one request between them, and a gateway whose
Redis is down."""

from __future__ import annotations

import concurrent.futures
import shutil
import signal
import time

import pytest

from charge_request_service.idempotency import RedisKeyStore, StoreUnavailable
from tests.helpers import call, metric_value, view_of, wait_until
from tests.idempotency_contract import *  # noqa: F403 - the contract's tests run here, on Redis
from tests.idempotency_contract import NOW, Replay
from tests.proxy import AnswerDelayingProxy
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


LONG = {"TIME_SCALE": "1"}  # sessions outlast the test


def held_sessions(*substations) -> int:
    return sum(call("GET", f"{s.url}/load").body["active_sessions"] for s in substations)


def two_balancers(services, tmp_path):
    """Substations a (the larger: first choice) and b, each with a journal, and two balancers over them: a
    retry through the second knows nothing of what the first placed."""
    a = services.substation("a", 300, SESSION_DB=str(tmp_path / "a.sqlite3"), **LONG)
    b = services.substation("b", 150, **LONG)
    balancers = [services.balancer({"a": a, "b": b}, name=f"balancer{n}") for n in (1, 2)]
    for balancer in balancers:
        wait_until(lambda balancer=balancer: all(view_of(balancer, n)["healthy"] for n in "ab"))
    return a, b, balancers


def test_a_gateway_killed_while_placing_a_keyed_request_leaves_its_key_unknown_not_forgotten(
    services, redis_url, tmp_path
):
    a, b, (balancer1, balancer2) = two_balancers(services, tmp_path)
    held_back = AnswerDelayingProxy(balancer1.port, delay_s=30).start()  # balancer1's answer never arrives
    keys = {"IDEMPOTENCY_REDIS_URL": redis_url, "BALANCER_TIMEOUT_S": "1"}  # a claim's lease: 3 s
    doomed = services.gateway(held_back.url, name="doomed-gateway", **keys)
    other = services.gateway(balancer2.url, name="other-gateway", **keys)
    key, body = {"Idempotency-Key": "killed-mid-request"}, {"energy_kwh": 20}
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(call, "POST", f"{doomed.url}/initiate_energy_transfer", body, headers=key, timeout=10)
        wait_until(lambda: held_sessions(a) == 1, interval=0.01)  # placed; its answer held back
        doomed.process.signal(signal.SIGKILL)
    time.sleep(5)  # the lease, and more: no request holds the key now
    retry = call("POST", f"{other.url}/initiate_energy_transfer", body, headers=key, timeout=10)
    assert retry.status == 201, retry.body
    assert retry.body["substation"] == "a" and retry.headers["Idempotent-Replayed"] == "true"
    assert held_sessions(a, b) == 1, "the session the killed gateway placed, not a second one"
    held_back.stop()


@pytest.mark.long
def test_a_key_whose_look_up_cannot_tell_stays_unknown_however_long_it_takes(services, redis_url, tmp_path):
    a, b, (balancer1, balancer2) = two_balancers(services, tmp_path)
    held_back = AnswerDelayingProxy(balancer1.port, delay_s=30).start()
    keys = {"IDEMPOTENCY_REDIS_URL": redis_url, "BALANCER_TIMEOUT_S": "1"}
    first_gateway = services.gateway(held_back.url, name="first-gateway", **keys)
    other = services.gateway(balancer2.url, name="other-gateway", **keys)
    key, body = {"Idempotency-Key": "cannot-tell"}, {"energy_kwh": 20}
    first = call("POST", f"{first_gateway.url}/initiate_energy_transfer", body, headers=key, timeout=10)
    assert first.status == 504 and held_sessions(a) == 1, "placed, its answer lost"
    a.process.signal(signal.SIGKILL)  # the substation that holds it goes down
    a.process.process.wait()
    time.sleep(2)  # the first attempt's outcome has settled: a retry may look
    cannot_tell = call("POST", f"{other.url}/initiate_energy_transfer", body, headers=key, timeout=10)
    assert cannot_tell.status == 503 and "cannot be told" in cannot_tell.body["detail"], cannot_tell.body
    time.sleep(6)  # longer than a lease (3 s here), and than the 4 s the key was cut to before
    assert call("POST", f"{other.url}/initiate_energy_transfer", body, headers=key, timeout=10).status == 503
    a.process.start().wait_healthy()  # back, with its journal
    wait_until(lambda: view_of(balancer2, "a")["healthy"], timeout=10)
    retry = call("POST", f"{other.url}/initiate_energy_transfer", body, headers=key, timeout=10)
    assert retry.status == 201 and retry.body["substation"] == "a", retry.body
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert held_sessions(a, b) == 1, "one key, one session"
    held_back.stop()


@pytest.mark.serial  # 400 requests at once: the machine to itself
def test_four_hundred_keyed_requests_at_once_never_find_a_healthy_store_unavailable(services, redis_url):
    grid = services.grid({"a": 1000, "b": 1000}, substation_env=LONG)
    gateway = services.gateway(grid.balancer.url, name="busy-gateway", IDEMPOTENCY_REDIS_URL=redis_url)
    small = {"max_power_kw": 2, "min_power_kw": 1}

    def post(n: int):
        headers = {"Idempotency-Key": f"burst-{n}"}
        return call("POST", f"{gateway.url}/initiate_energy_transfer", small, headers=headers, timeout=30)

    with concurrent.futures.ThreadPoolExecutor(400) as pool:
        replies = list(pool.map(post, range(400)))
    unavailable = [r.body for r in replies if r.status == 503 and "Idempotency" in str(r.body)]
    assert not unavailable, f"{len(unavailable)} x {unavailable[:1]}"
    assert sum(r.status == 201 for r in replies) == 400


def test_a_redis_freeze_within_the_wait_is_ridden_out_and_never_told_as_nothing_started(services):
    grid = services.grid({"a": 300}, substation_env=LONG)
    url = redis_server(services, name="redis-to-freeze")
    redis = services.started[-1]
    gateway = services.gateway(grid.balancer.url, name="gateway-on-redis", IDEMPOTENCY_REDIS_URL=url)
    start = f"{gateway.url}/initiate_energy_transfer"
    assert call("POST", start, headers={"Idempotency-Key": "warm"}).status == 201  # a pooled connection
    key = {"Idempotency-Key": "through-a-freeze"}
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        redis.signal(signal.SIGSTOP)
        pending = pool.submit(call, "POST", start, {"energy_kwh": 20}, headers=key, timeout=15)
        time.sleep(1.5)
        redis.signal(signal.SIGCONT)
        reply = pending.result()
    assert reply.status == 201, reply.body
    again = call("POST", start, {"energy_kwh": 20}, headers=key)
    assert again.status == 201 and again.body["session_id"] == reply.body["session_id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert held_sessions(grid.substations["a"]) == 2  # "warm" and this one


def test_a_redis_freeze_past_the_wait_is_told_as_it_is_and_the_key_comes_free(services):
    grid = services.grid({"a": 300}, substation_env=LONG)
    url = redis_server(services, name="redis-to-freeze")
    redis = services.started[-1]
    # BALANCER_TIMEOUT_S 1: a claim waits 2 s for the store, and holds the key for a lease of 3 s.
    gateway = services.gateway(grid.balancer.url, name="gw", IDEMPOTENCY_REDIS_URL=url, BALANCER_TIMEOUT_S="1")
    start = f"{gateway.url}/initiate_energy_transfer"
    assert call("POST", start, headers={"Idempotency-Key": "warm"}).status == 201
    key = {"Idempotency-Key": "past-a-freeze"}
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        redis.signal(signal.SIGSTOP)
        pending = pool.submit(call, "POST", start, {"energy_kwh": 20}, headers=key, timeout=15)
        time.sleep(3)
        redis.signal(signal.SIGCONT)
        reply = pending.result()
    assert reply.status == 503, reply.body
    assert "nothing was started" not in reply.body["detail"] or "may" in reply.body["detail"], reply.body
    assert held_sessions(grid.substations["a"]) == 1, "only 'warm': the balancer was never asked"
    waited, deadline = [], time.monotonic() + 20
    while time.monotonic() < deadline:
        retry = call("POST", start, {"energy_kwh": 20}, headers=key, timeout=10)
        if retry.status == 201:
            break
        assert retry.status == 409, retry.body
        waited.append(int(retry.headers["Retry-After"]))
        time.sleep(int(retry.headers["Retry-After"]))
    assert retry.status == 201, retry.body
    assert held_sessions(grid.substations["a"]) == 2, "then it starts, once"


def test_a_full_redis_refuses_new_keys_and_forgets_none(services):
    import redis

    url = redis_server(services, name="redis-to-fill")
    server = redis.Redis.from_url(url)
    server.config_set("maxmemory-policy", "noeviction")  # as compose and Kubernetes run it
    store = RedisKeyStore(url, ttl_s=600, lease_s=5)
    kept = store.claim("kept", "f", NOW)
    store.finish("kept", kept.owner, 201, {"session_id": "s.kept"}, NOW)
    server.config_set("maxmemory", "1")  # full, whatever it holds: every write that needs memory is refused
    with pytest.raises(redis.exceptions.ResponseError, match="maxmemory"):
        server.set("filler", "x" * 1000)
    with pytest.raises(StoreUnavailable) as refused:
        store.claim("new", "f", NOW + 1)
    assert not refused.value.maybe_changed, "refused whole: the key is not claimed"
    assert store.claim("kept", "f", NOW + 2) == Replay(201, {"session_id": "s.kept"}), "never evicted"
    server.close()
    store.close()
