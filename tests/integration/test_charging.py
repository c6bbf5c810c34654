"""End to end through real gunicorn processes: gateway -> balancer -> substations."""

from __future__ import annotations

import concurrent.futures
import signal
import time

from tests.conftest import view_of, wait_until
from tests.http import call, metric_value

LONG = {"TIME_SCALE": "1"}  # 11 kWh at 11 kW lasts an hour: nothing ends during a test
SHORT = {"TIME_SCALE": "7200"}  # 11 kWh at 11 kW lasts 0.5 s


def start(grid_url: str, body=None, **kwargs):
    return call("POST", f"{grid_url}/initiate_energy_transfer", body, **kwargs)


def test_body_less_post_starts_a_session_like_the_first_version(services):
    grid = services.grid(substation_env=LONG)
    reply = call("POST", f"{grid.gateway.url}/initiate_energy_transfer")
    assert reply.status == 201, reply.body
    session = reply.body
    assert session["result"] == "Charging started"
    assert {"session_id", "substation", "power_kw", "energy_kwh", "estimated_end"} <= set(session)
    assert reply.headers["Location"] == f"/sessions/{session['session_id']}"
    assert session["substation"] == "substation3", "an idle grid sends the first session to the largest substation"
    read = call("GET", f"{grid.gateway.url}{reply.headers['Location']}")
    assert read.status == 200
    assert read.body["state"] == "charging" and read.body["substation"] == session["substation"]


def test_sessions_end_on_their_own_and_free_capacity(services):
    grid = services.grid({"only": 22}, substation_env=SHORT)
    first = start(grid.gateway.url, {"energy_kwh": 11, "max_power_kw": 22})
    assert first.status == 201
    assert start(grid.gateway.url, {"max_power_kw": 11}).status == 503, "22 kW substation is full"
    done = wait_until(
        lambda: (
            (r := call("GET", f"{grid.gateway.url}/sessions/{first.body['session_id']}")).body["state"] == "completed"
            and r
        ),
        timeout=5,
    )
    assert done.body["energy_delivered_kwh"] == 11
    assert call("GET", f"{grid.substations['only'].url}/load").body["active_sessions"] == 0
    wait_until(lambda: start(grid.gateway.url).status == 201, timeout=5)


def test_stop_ends_a_session_early_and_frees_its_power(services):
    grid = services.grid({"only": 22}, substation_env=LONG)
    session = start(grid.gateway.url, {"max_power_kw": 22}).body
    stopped = call("POST", f"{grid.gateway.url}/sessions/{session['session_id']}/stop")
    assert stopped.status == 200
    assert stopped.body["state"] == "stopped"
    assert 0 <= stopped.body["energy_delivered_kwh"] < session["energy_kwh"]
    assert call("GET", f"{grid.substations['only'].url}/load").body["ev_power_kw"] == 0
    assert start(grid.gateway.url, {"max_power_kw": 22}).status == 201, "the stopped session's power is free again"


def test_concurrent_burst_spreads_within_one_session_share(services):
    grid = services.grid(substation_env=LONG)  # 150, 150 and 300 kW
    with concurrent.futures.ThreadPoolExecutor(max_workers=30) as pool:
        replies = list(pool.map(lambda _: start(grid.gateway.url), range(30)))
    assert [r.status for r in replies] == [201] * 30
    loads = [call("GET", f"{s.url}/load").body for s in grid.substations.values()]
    utilizations = [load["load_kw"] / load["capacity_kw"] for load in loads]
    share = 11 / 150  # one session's share of the smallest substation
    assert max(utilizations) - min(utilizations) <= share + 1e-6, utilizations
    assert sum(load["active_sessions"] for load in loads) == 30


def test_full_substation_sends_the_session_to_the_next(services):
    # The balancer polls rarely here, so its view is stale: substation "big" looks empty but is full.
    grid = services.grid({"big": 44, "small": 22}, substation_env=LONG, balancer_env={"POLL_INTERVAL_S": "30"})
    for _ in range(2):
        direct = call("POST", f"{grid.substations['big'].url}/begin_charging", {"max_power_kw": 22})
        assert direct.status == 201
    reply = start(grid.gateway.url, {"max_power_kw": 22})
    assert reply.status == 201
    assert reply.body["substation"] == "small"
    metrics = call("GET", f"{grid.balancer.url}/metrics").raw.decode()
    assert metric_value(metrics, "balancer_admission_refusals_total", substation="big") == 1
    assert metric_value(metrics, "substation_load") is None, "each service exposes only its own metrics"


def test_a_choice_made_on_an_outdated_view_is_made_again(services):
    # Another balancer places sessions behind this one's back: its view, polled once, says "a" is empty.
    grid = services.grid({"a": 110, "b": 110}, substation_env=LONG, balancer_env={"POLL_INTERVAL_S": "30"})
    a = grid.substations["a"].url
    other, me = {"Balancer-Id": "other"}, {"Balancer-Id": "me"}
    for _ in range(2):
        assert call("POST", f"{a}/begin_charging", {"max_power_kw": 11}, headers=other).status == 201
    assert call("GET", f"{a}/load", headers=me).body["others_ev_power_kw"] == 22
    assert call("GET", f"{a}/load", headers=other).body["others_ev_power_kw"] == 0
    outdated = {**me, "If-Others-EV-Power-At-Most": "11"}
    declined = call("POST", f"{a}/begin_charging", {"max_power_kw": 11}, headers=outdated)
    assert declined.status == 412 and declined.content_type == "application/problem+json"
    assert declined.body["load"]["others_ev_power_kw"] == 22 and declined.body["load"]["active_sessions"] == 2
    assert call("POST", f"{a}/begin_charging", headers={**me, "If-Others-EV-Power-At-Most": "lots"}).status == 400
    assert call("POST", f"{a}/begin_charging", headers={"If-Others-EV-Power-At-Most": "22"}).status == 400, "whose?"
    assert call("GET", f"{a}/load", headers={"Balancer-Id": "not an id"}).status == 400
    up_to_date = {**me, "If-Others-EV-Power-At-Most": "22"}
    assert call("POST", f"{a}/begin_charging", headers=up_to_date).status == 201

    reply = start(grid.gateway.url, {"max_power_kw": 11})
    assert reply.status == 201
    assert reply.body["substation"] == "b", "a looked emptiest, said it was not, and the balancer chose again"
    metrics = call("GET", f"{grid.balancer.url}/metrics").raw.decode()
    assert metric_value(metrics, "balancer_outdated_choices_total", substation="a") == 1
    assert not metric_value(metrics, "balancer_admission_refusals_total", substation="a"), "not a refusal"


def test_full_grid_answers_503_with_retry_after(services):
    grid = services.grid({"a": 11, "b": 11}, substation_env={"TIME_SCALE": "360"})
    assert start(grid.gateway.url).status == 201
    assert start(grid.gateway.url).status == 201
    reply = start(grid.gateway.url)
    assert reply.status == 503
    assert reply.content_type == "application/problem+json"
    assert 1 <= int(reply.headers["Retry-After"]) <= 10, "the next session ends within 10 s"
    assert reply.body["status"] == 503 and "room" in reply.body["detail"]


def test_killed_substation_is_skipped_and_rejoins_when_restarted(services):
    grid = services.grid({"a": 1000, "b": 1000, "c": 1000}, substation_env=LONG)
    victim = grid.substations["a"]
    victim.process.signal(signal.SIGKILL)
    victim.process.process.wait()
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


def test_substations_endpoint_is_the_live_view(services):
    grid = services.grid(substation_env=LONG)
    start(grid.gateway.url)
    listed = call("GET", f"{grid.balancer.url}/substations").body
    assert listed["strategy"] == "least_utilization"
    assert [s["name"] for s in listed["substations"]] == ["substation1", "substation2", "substation3"]
    for entry in listed["substations"]:
        assert {
            "name",
            "url",
            "healthy",
            "active_sessions",
            "load_kw",
            "capacity_kw",
            "utilization",
            "updated_at",
        } <= set(entry)
    assert sum(s["active_sessions"] for s in listed["substations"]) == 1


def test_strategy_is_selected_by_env(services):
    grid = services.grid(
        {"a": 1000, "b": 1000, "c": 1000}, substation_env=LONG, balancer_env={"STRATEGY": "round_robin"}
    )
    placed = [start(grid.gateway.url).body["substation"] for _ in range(6)]
    assert placed == ["a", "b", "c", "a", "b", "c"]


def test_one_process_can_simulate_many_substations_each_with_its_own_admission(services):
    """SUBSTATION_COUNT: a large grid on one machine, each substation at its own path, balanced as usual."""
    host = services.substation("s", capacity_kw=22, SUBSTATION_COUNT="4", **LONG)
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
