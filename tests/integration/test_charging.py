"""End to end through real gunicorn processes: what concurrency, a killed process and a shared process
show. (The rest of charging, in this process: tests/app/test_charging.py.)"""

from __future__ import annotations

import concurrent.futures
import signal
import time

import pytest

from grid_common.protocol import DEFAULT_MAX_POWER_KW
from tests.helpers import call, metric_value, view_of, wait_until, wait_until_down

LONG = {"TIME_SCALE": "1"}  # 11 kWh at 11 kW lasts an hour: nothing ends during a test
SHORT = {"TIME_SCALE": "7200"}  # 11 kWh at 11 kW lasts 0.5 s


def start(grid_url: str, body=None, **kwargs):
    return call("POST", f"{grid_url}/initiate_energy_transfer", body, **kwargs)


def test_concurrent_burst_spreads_within_one_session_share(services):
    grid = services.grid(substation_env=LONG)  # 150, 150 and 300 kW
    with concurrent.futures.ThreadPoolExecutor(max_workers=30) as pool:
        replies = list(pool.map(lambda _: start(grid.gateway.url), range(30)))
    assert [r.status for r in replies] == [201] * 30
    loads = [call("GET", f"{s.url}/load").body for s in grid.substations.values()]
    utilizations = [load["load_kw"] / load["capacity_kw"] for load in loads]
    share = DEFAULT_MAX_POWER_KW / 150  # one session's share of the smallest substation
    assert max(utilizations) - min(utilizations) <= share + 1e-6, utilizations
    assert sum(load["active_sessions"] for load in loads) == 30


@pytest.mark.parametrize("strategy", ["least_utilization", "most_power"])
def test_many_concurrent_requests_end_at_most_one_session_apart_on_equal_substations(services, strategy):
    """32 requests in flight at a time: answers' reports that count sessions still in flight must not make
    the balancer count them twice and send the next ones elsewhere."""
    grid = services.grid({"a": 20_000, "b": 20_000}, substation_env=LONG, balancer_env={"STRATEGY": strategy})
    with concurrent.futures.ThreadPoolExecutor(max_workers=32) as pool:
        replies = list(pool.map(lambda _: start(grid.gateway.url), range(320)))
    assert [r.status for r in replies] == [201] * 320
    placed = [call("GET", f"{s.url}/load").body["active_sessions"] for s in grid.substations.values()]
    assert sum(placed) == 320 and max(placed) - min(placed) <= 1, placed


def test_killed_substation_is_skipped_and_rejoins_when_restarted(services):
    grid = services.grid({"a": 1000, "b": 1000, "c": 1000}, substation_env=LONG)
    victim = grid.substations["a"]
    victim.process.signal(signal.SIGKILL)
    victim.process.process.wait()
    wait_until_down(victim.port)  # else its dying worker may take a request and drop it: an outcome unknown
    started = time.monotonic()
    replies = [start(grid.gateway.url, timeout=10) for _ in range(20)]
    assert [r.status for r in replies] == [201] * 20, [r.body for r in replies if r.status != 201]
    assert time.monotonic() - started < 10
    assert {r.body["substation"] for r in replies} == {"b", "c"}
    assert view_of(grid, "a")["healthy"] is False, "a refused connection marks it down at once"

    victim.process.start().wait_healthy()
    wait_until(lambda: view_of(grid, "a")["healthy"], timeout=5)
    after = [start(grid.gateway.url).body["substation"] for _ in range(9)]
    assert "a" in after, "the restarted substation takes sessions again"


def test_one_process_can_simulate_many_substations_each_with_its_own_admission(services):
    """SUBSTATION_COUNT: a large grid on one machine, each substation at its own path, balanced as usual."""
    host = services.substation("s", capacity_kw=22, SUBSTATION_COUNT="4", ALLOCATION="fixed", **LONG)
    hosted = {f"s{n}": f"{host.url}/s{n}" for n in range(1, 5)}
    assert call("GET", host.url).body["substations"] == ["/s1", "/s2", "/s3", "/s4"]
    balancer = services.balancer(hosted)
    wait_until(lambda: call("GET", f"{balancer.url}/readyz").status == 200)
    gateway = services.gateway(balancer.url)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: start(gateway.url, {"max_power_kw": 11}), range(9)))
    assert sorted(r.status for r in replies) == [201] * 8 + [503], "4 substations of 22 kW hold 8 sessions of 11 kW"
    for name, url in hosted.items():
        load = call("GET", f"{url}/load").body
        assert load["name"] == name and load["active_sessions"] == 2, load
        assert metric_value(call("GET", f"{url}/metrics").raw.decode(), "substation_load", substation=name) == 2
    owned = replies[0].body
    assert call("GET", f"{gateway.url}/sessions/{owned['session_id']}").body["substation"] == owned["substation"]
