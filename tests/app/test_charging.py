"""Charging through the whole grid in this process: gateway -> balancer -> substations, time on a fake clock."""

from __future__ import annotations

from tests.helpers import metric_value
from tests.in_process import in_process_grid, substation_url


def start(client, body=None, **kwargs):
    return client.post("/initiate_energy_transfer", json=body, **kwargs)


def test_a_body_less_post_starts_a_session_like_the_original_api(gateway):
    response = gateway.post("/initiate_energy_transfer")
    assert response.status_code == 201, response.get_json()
    session = response.get_json()
    assert session["result"] == "Charging started"
    assert {"session_id", "substation", "power_kw", "energy_kwh", "estimated_end"} <= set(session)
    assert response.headers["Location"] == f"/sessions/{session['session_id']}"
    assert session["substation"] == "substation3", "an idle grid sends the first session to the largest substation"
    read = gateway.get(response.headers["Location"])
    assert read.status_code == 200
    assert read.get_json()["state"] == "charging" and read.get_json()["substation"] == session["substation"]


FIXED = {"allocation": "fixed"}  # each session its maximum for its whole life, as version 0.2 gave it


def test_sessions_end_on_their_own_and_free_capacity():
    grid = in_process_grid({"only": 22}, substation={"time_scale": 7200, **FIXED})  # 11 kWh at 22 kW: 0.25 s
    gateway = grid.gateway.test_client()
    first = start(gateway, {"energy_kwh": 11, "max_power_kw": 22})
    assert first.status_code == 201
    assert start(gateway, {"max_power_kw": 11}).status_code == 503, "22 kW substation is full"
    grid.clock.advance(0.25)
    done = gateway.get(f"/sessions/{first.get_json()['session_id']}").get_json()
    assert done["state"] == "completed" and done["energy_delivered_kwh"] == 11
    grid.poll()
    assert start(gateway).status_code == 201, "its power is free again"


def test_stop_ends_a_session_early_and_frees_its_power():
    grid = in_process_grid({"only": 22})
    gateway = grid.gateway.test_client()
    session = start(gateway, {"max_power_kw": 22}).get_json()
    grid.clock.advance(60)
    stopped = gateway.post(f"/sessions/{session['session_id']}/stop")
    assert stopped.status_code == 200
    assert stopped.get_json()["state"] == "stopped"
    assert 0 < stopped.get_json()["energy_delivered_kwh"] < session["energy_kwh"]
    load = grid.substations["only"].test_client().get("/load").get_json()
    assert load["ev_power_kw"] == 0
    assert start(gateway, {"max_power_kw": 22}).status_code == 201, "the stopped session's power is free again"


def test_a_full_substation_sends_the_session_to_the_next():
    # The balancer has not polled since "big" filled up: its view says "big" is empty.
    grid = in_process_grid({"big": 44, "small": 22}, substation=FIXED)
    big = grid.substations["big"].test_client()
    for _ in range(2):
        assert big.post("/begin_charging", json={"max_power_kw": 22}).status_code == 201
    response = start(grid.gateway.test_client(), {"max_power_kw": 22})
    assert response.status_code == 201
    assert response.get_json()["substation"] == "small"
    metrics = grid.balancer.test_client().get("/metrics").get_data(as_text=True)
    assert metric_value(metrics, "balancer_admission_refusals_total", substation="big") >= 1
    assert metric_value(metrics, "substation_load") is None, "each service exposes only its own metrics"


def test_a_choice_made_on_an_outdated_view_is_made_again():
    # Another balancer places sessions behind this one's back: its view, polled once, says "a" is empty.
    grid = in_process_grid({"a": 110, "b": 110})
    a = grid.substations["a"].test_client()
    other, me = {"Balancer-Id": "other"}, {"Balancer-Id": "me"}
    for _ in range(2):
        assert a.post("/begin_charging", json={"max_power_kw": 11}, headers=other).status_code == 201
    assert a.get("/load", headers=me).get_json()["others_ev_power_kw"] == 22
    assert a.get("/load", headers=other).get_json()["others_ev_power_kw"] == 0
    outdated = {**me, "If-Others-EV-Power-At-Most": "11"}
    declined = a.post("/begin_charging", json={"max_power_kw": 11}, headers=outdated)
    assert declined.status_code == 412 and declined.content_type == "application/problem+json"
    assert declined.get_json()["load"]["others_ev_power_kw"] == 22
    assert declined.get_json()["load"]["active_sessions"] == 2
    assert a.post("/begin_charging", headers={**me, "If-Others-EV-Power-At-Most": "lots"}).status_code == 400
    assert a.post("/begin_charging", headers={"If-Others-EV-Power-At-Most": "22"}).status_code == 400, "whose?"
    assert a.get("/load", headers={"Balancer-Id": "not an id"}).status_code == 400
    assert a.post("/begin_charging", headers={**me, "If-Others-EV-Power-At-Most": "22"}).status_code == 201

    response = start(grid.gateway.test_client(), {"max_power_kw": 11})
    assert response.status_code == 201
    assert response.get_json()["substation"] == "b", "a looked emptiest, said it was not, and the balancer chose again"
    metrics = grid.balancer.test_client().get("/metrics").get_data(as_text=True)
    assert metric_value(metrics, "balancer_outdated_choices_total", substation="a") >= 1


def test_a_full_grid_answers_503_with_retry_after():
    grid = in_process_grid({"a": 11.04, "b": 11.04}, substation={"time_scale": 360, **FIXED})  # sessions of 10 s
    gateway = grid.gateway.test_client()
    assert start(gateway).status_code == 201
    assert start(gateway).status_code == 201
    response = start(gateway)
    assert response.status_code == 503
    assert response.content_type == "application/problem+json"
    assert response.get_json()["tried"] == [], "the view showed both full: neither was asked"
    # Each session lasts 10 s from the substations' clock, which has not moved: room frees in 10 s.
    assert 9 <= int(response.headers["Retry-After"]) <= 10, "when the soonest session ends, by the view"
    assert response.get_json()["status"] == 503 and "room" in response.get_json()["detail"]


def test_the_substations_endpoint_is_the_live_view(grid, gateway, balancer):
    start(gateway)
    listed = balancer.get("/substations").get_json()
    assert listed["strategy"] == "most_power"
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
    assert listed["substations"][0]["url"] == substation_url("substation1")


def test_the_strategy_is_chosen_by_configuration():
    grid = in_process_grid({"a": 1000, "b": 1000, "c": 1000}, balancer={"strategy": "round_robin"})
    gateway = grid.gateway.test_client()
    placed = [start(gateway).get_json()["substation"] for _ in range(6)]
    assert placed == ["a", "b", "c", "a", "b", "c"]


def test_a_driver_says_a_new_departure_and_energy_through_the_gateway_and_the_substation_plans_it():
    grid = in_process_grid({"only": 33}, substation={"allocation": "planned"})
    gateway = grid.gateway.test_client()
    session = start(gateway, {"energy_kwh": 30, "max_power_kw": 22}).get_json()
    location = f"/sessions/{session['session_id']}"
    assert session["departure_time"] is None and session["promised"] is None
    soon = iso_in(grid, 3 * 3600)  # in three hours (TIME_SCALE 1 here)
    changed = gateway.patch(location, json={"energy_kwh": 40, "departure_time": soon})
    assert changed.status_code == 200, changed.get_json()
    body = changed.get_json()
    assert body["energy_kwh"] == 40 and body["departure_time"] is not None and body["promised"] is True
    wrong = gateway.patch(location, json={"departure_time": "tomorrow", "colour": "red"})
    assert wrong.status_code == 422 and wrong.content_type == "application/problem+json"
    assert [e["field"] for e in wrong.get_json()["errors"]] == ["colour", "departure_time"], "checked at the door"
    assert gateway.patch(location, data=b"{}", content_type="text/plain").status_code == 415
    assert gateway.post(f"{location}/stop").status_code == 200
    ended = gateway.patch(location, json={"energy_kwh": 50})
    assert ended.status_code == 409 and ended.get_json()["session"]["state"] == "stopped"
    assert gateway.patch("/sessions/only.0123456789abcdef", json={"energy_kwh": 5}).status_code == 404


def iso_in(grid, seconds: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(grid.clock() + seconds, UTC).isoformat()
