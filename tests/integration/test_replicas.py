"""Balancer replicas behind one gateway agree: substations' atomic admission is the source of truth."""

from __future__ import annotations

import concurrent.futures
import signal

from grid_common.protocol import DEFAULT_MAX_POWER_KW, DEFAULT_MIN_POWER_KW
from tests.helpers import call, metric_value, view_of, wait_until, wait_until_down

CAPACITY_KW = 20 * DEFAULT_MAX_POWER_KW  # 20 body-less sessions at their maximum (11.04 kW) each
LONG = {"TIME_SCALE": "1"}
# Longer than a test: the balancers' first poll is all they learn from polling. What keeps them in step is
# each substation declining (412) a choice made on an outdated view, with its fresh load.
NO_POLLS_DURING_THE_TEST = {"POLL_INTERVAL_S": "60"}


def replicated_grid(services, replicas=2, substation_env=None, balancer_env=None):
    """Three equal substations; by default each session at its maximum, placed by least utilization."""
    substation_env = substation_env or {"ALLOCATION": "fixed"}
    balancer_env = balancer_env or {"STRATEGY": "least_utilization"}
    substations = {
        name: services.substation(name, CAPACITY_KW, **LONG, **substation_env) for name in ("s1", "s2", "s3")
    }
    balancers = [
        services.balancer(substations, name=f"balancer{n}", **NO_POLLS_DURING_THE_TEST, **balancer_env)
        for n in range(1, replicas + 1)
    ]
    for balancer in balancers:
        wait_until(lambda b=balancer: all(view_of(b, name)["healthy"] for name in substations))
    gateway = services.gateway(",".join(b.url for b in balancers))
    return substations, balancers, gateway


def burst(gateway, count: int, workers: int = 16) -> list:
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda _: call("POST", f"{gateway.url}/initiate_energy_transfer"), range(count)))


def loads(substations) -> dict[str, dict]:
    return {name: call("GET", f"{s.url}/load").body for name, s in substations.items()}


def test_two_balancers_share_a_burst_fairly_and_never_overbook(services):
    substations, balancers, gateway = replicated_grid(services)

    replies = burst(gateway, 45)
    assert [r.status for r in replies] == [201] * 45
    outdated = 0
    for balancer in balancers:
        exposed = call("GET", f"{balancer.url}/metrics").raw.decode()
        assert sum(metric_value(exposed, "balancer_decisions_total", substation=n) for n in substations) > 0
        outdated += sum(metric_value(exposed, "balancer_outdated_choices_total", substation=n) for n in substations)
    assert outdated > 0, "the replicas did meet each other's sessions, and chose again"
    active = [load["active_sessions"] for load in loads(substations).values()]
    assert sum(active) == 45 and max(active) - min(active) <= 2, active

    overflow = burst(gateway, 40)
    assert {r.status for r in overflow} == {201, 503}
    assert sum(r.status == 201 for r in overflow) == 15, "exactly the room that was left: 60 sessions in all"
    assert all(int(r.headers["Retry-After"]) >= 1 for r in overflow if r.status == 503)
    for name, load in loads(substations).items():
        assert load["load_kw"] <= load["capacity_kw"] + 1e-6, (name, load)
        assert load["active_sessions"] == 20


def test_the_gateway_skips_a_balancer_that_is_down(services):
    _, balancers, gateway = replicated_grid(services)
    balancers[0].process.signal(signal.SIGKILL)
    balancers[0].process.process.wait()
    # Down means its port refuses: until its last worker is gone, the kernel may still accept a connection
    # that then drops with the request sent, which the gateway rightly does not send again (502).
    wait_until_down(balancers[0].port)
    replies = [call("POST", f"{gateway.url}/initiate_energy_transfer") for _ in range(10)]
    assert [r.status for r in replies] == [201] * 10
    session = replies[0].body["session_id"]
    assert call("GET", f"{gateway.url}/sessions/{session}").status == 200, "any balancer routes any session"


def newcomer_kw(load: dict) -> float:
    """About what a new session of priority 0 would get there: the power it would share, split evenly."""
    charging = load["sharing_sessions"][0]
    return min(
        load["charger_max_power_kw"], (load["shareable_kw"][0] + charging * DEFAULT_MIN_POWER_KW) / (charging + 1)
    )


def test_three_balancers_sharing_headroom_never_overbook_and_leave_newcomers_equal(services):
    substations, _, gateway = replicated_grid(
        services, replicas=3, substation_env={"ALLOCATION": "fair"}, balancer_env={"STRATEGY": "most_power"}
    )
    replies = burst(gateway, 150, workers=24)
    assert [r.status for r in replies] == [201] * 150, "150 minimums of 3 x 6 A (4.14 kW) fit in 3 x 220.8 kW"
    assert {r.body["result"] for r in replies} == {"Charging started"}
    after = loads(substations)
    assert sum(load["active_sessions"] for load in after.values()) == 150
    for name, load in after.items():
        assert load["ev_power_kw"] + load["background_kw"] <= load["capacity_kw"] + 1e-6, (name, load)
        exposed = call("GET", f"{substations[name].url}/metrics").raw.decode()
        assert metric_value(exposed, "substation_overload_seconds_total", substation=name) == 0
    offered = [newcomer_kw(load) for load in after.values()]
    assert max(offered) - min(offered) <= 1.0, offered
