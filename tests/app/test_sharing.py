"""Smart charging through the whole grid in this process: sharing, waiting, and what a newcomer would get."""

from __future__ import annotations

import pytest

from tests.in_process import in_process_grid


def start(client, body=None, **kwargs):
    return client.post("/initiate_energy_transfer", json=body, **kwargs)


def test_sessions_share_and_a_body_less_post_starts_whenever_its_minimum_fits():
    grid = in_process_grid({"only": 22})
    gateway = grid.gateway.test_client()
    replies = [start(gateway) for _ in range(5)]
    assert [r.status_code for r in replies] == [201] * 5, "5 minimums of 3 x 6 A (4.14 kW) fit in 22 kW"
    assert {r.get_json()["result"] for r in replies} == {"Charging started"}
    sessions = [gateway.get(f"/sessions/{r.get_json()['session_id']}").get_json() for r in replies]
    assert [s["allocated_kw"] for s in sessions] == [pytest.approx(22 / 5)] * 5
    assert {phase: pytest.approx(22 / 5 * 1000 / 690, abs=1e-3) for phase in ("L1", "L2", "L3")} == sessions[0][
        "current_a"
    ], "a third of 4.4 kW on each phase: 6.4 A"
    assert start(gateway).status_code == 503, "the 6th minimum does not fit, and it did not ask to wait"


def test_a_session_shows_its_power_its_limits_and_its_schedule(gateway):
    session = start(gateway, {"min_power_kw": 2, "max_power_kw": 7.4, "priority": 2, "energy_kwh": 20}).get_json()
    read = gateway.get(f"/sessions/{session['session_id']}").get_json()
    assert read["state"] == "charging" and read["allocated_kw"] == 7.4 and read["power_kw"] == 7.4
    assert (read["min_power_kw"], read["max_power_kw"], read["priority"]) == (2, 7.4, 2)
    assert read["energy_remaining_kwh"] == 20 and read["estimated_end"] and read["position"] is None
    assert read["charging_schedule"]["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 7400.0}]


def test_waiting_instead_of_a_refusal_and_stopping_a_queued_session_cancels_it():
    grid = in_process_grid({"a": 22, "b": 11})
    gateway = grid.gateway.test_client()
    for _ in range(3):
        assert start(gateway, {"min_power_kw": 11}).status_code == 201
    refused = start(gateway, {"min_power_kw": 11})
    assert refused.status_code == 503 and refused.headers["Retry-After"]
    queued = start(gateway, {"min_power_kw": 11, "wait": True})
    assert queued.status_code == 202, queued.get_json()
    body = queued.get_json()
    assert body["result"] == "Queued" and body["state"] == "queued" and body["position"] == 1
    assert body["estimated_start"] is not None and queued.headers["Location"] == f"/sessions/{body['session_id']}"
    second = start(gateway, {"min_power_kw": 11, "wait": True}).get_json()
    assert second["substation"] != body["substation"], "each queued where it should start soonest"
    cancelled = gateway.post(f"/sessions/{body['session_id']}/stop").get_json()
    assert cancelled["state"] == "stopped" and cancelled["energy_delivered_kwh"] == 0


def test_a_queued_session_starts_when_room_frees():
    grid = in_process_grid({"only": 11})
    gateway = grid.gateway.test_client()
    running = start(gateway, {"min_power_kw": 11}).get_json()
    queued = start(gateway, {"min_power_kw": 11, "wait": True}).get_json()
    gateway.post(f"/sessions/{running['session_id']}/stop")
    read = gateway.get(f"/sessions/{queued['session_id']}").get_json()
    assert read["state"] == "charging" and read["allocated_kw"] == 11 and read["started_at"]


def test_the_balancer_sends_a_session_where_it_would_get_the_most_power():
    grid = in_process_grid({"crowded": 44, "quiet": 44})
    crowded = grid.substations["crowded"].test_client()
    for _ in range(6):  # placed behind the balancer's back: six sessions share 44 kW there
        assert crowded.post("/begin_charging", json={"max_power_kw": 22}).status_code == 201
    grid.poll()
    for _ in range(3):
        session = start(grid.gateway.test_client(), {"max_power_kw": 22}).get_json()
        assert session["substation"] == "quiet"
    listed = {s["name"]: s for s in grid.balancer.test_client().get("/substations").get_json()["substations"]}
    assert listed["quiet"]["newcomer_kw"] > listed["crowded"]["newcomer_kw"]


def test_a_minimum_no_charger_gives_is_refused_with_422(gateway):
    reply = start(gateway, {"min_power_kw": 50, "max_power_kw": 50})
    assert reply.status_code == 422
    assert reply.get_json()["errors"] == [
        {"field": "min_power_kw", "message": "is more than any charger here gives (22 kW)"}
    ]


def test_a_retry_of_a_queued_request_gets_the_same_queued_session():
    grid = in_process_grid({"only": 11})
    gateway = grid.gateway.test_client()
    start(gateway, {"min_power_kw": 11})
    first = start(gateway, {"min_power_kw": 11, "wait": True}, headers={"Idempotency-Key": "k1"})
    again = start(gateway, {"min_power_kw": 11, "wait": True}, headers={"Idempotency-Key": "k1"})
    assert first.status_code == again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["session_id"] == first.get_json()["session_id"]
