"""Departures on real processes: a request through the gateway says when its driver leaves, a substation that
plans (ALLOCATION=planned) serves the car leaving first first and tells it it is promised its energy and its
plan, and a departure without its offset from UTC is refused naming the field."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from tests.helpers import call

# The substations' default TIME_SCALE: a simulated hour in 10 wall seconds.
HOUR_S = 10.0


def iso_in(seconds: float) -> str:
    return datetime.fromtimestamp(time.time() + seconds, UTC).isoformat()


def test_a_car_leaving_within_the_hour_is_promised_its_energy_where_a_fair_share_would_not_give_it(services):
    # 33 kW, no background: three cars staying all night would share it fairly, 11 kW each.
    gateway = services.grid(
        {"s": 33}, substation_env={"ALLOCATION": "planned", "BACKGROUND_PEAK_FRACTION": "0"}
    ).gateway
    for n in range(3):
        body = {"vehicle_id": f"stays-{n}", "energy_kwh": 100, "max_power_kw": 22, "min_power_kw": 1.4}
        assert call("POST", f"{gateway.url}/initiate_energy_transfer", body).status == 201
    leaving = {"vehicle_id": "leaves", "energy_kwh": 15, "max_power_kw": 22, "min_power_kw": 1.4,
               "departure_time": iso_in(HOUR_S)}  # fmt: skip
    answer = call("POST", f"{gateway.url}/initiate_energy_transfer", leaving)
    assert answer.status == 201, answer.body
    session = answer.body
    assert session["departure_time"] is not None
    assert session["promised"] is True and session["energy_expected_kwh"] == pytest.approx(15.0, abs=0.05)
    assert session["allocated_kw"] == pytest.approx(22.0), "as soon as it can, the three others sharing the rest"
    periods = session["charging_plan"]["chargingSchedulePeriod"]
    assert periods[0]["limit"] == pytest.approx(22000) and periods[-1]["limit"] == 0, "then it is done"
    read = call("GET", f"{gateway.url}/sessions/{session['session_id']}").body
    assert read["departure_time"] == session["departure_time"] and read["promised"] is True


def test_a_departure_without_its_offset_from_utc_is_refused_naming_the_field(services):
    gateway = services.grid({"s": 33}, substation_env={"ALLOCATION": "planned"}).gateway
    answer = call("POST", f"{gateway.url}/initiate_energy_transfer", {"departure_time": "2026-12-08T07:00:00"})
    assert answer.status == 422
    assert answer.content_type == "application/problem+json"
    assert [error["field"] for error in answer.body["errors"]] == ["departure_time"]


def test_a_running_session_told_its_departure_later_is_planned_anew_and_a_delivered_energy_completes_it(services):
    # What the OCPP service does with a car's NotifyEVChargingNeeds, on the substation itself.
    substation = services.substation("s", 33, ALLOCATION="planned")
    ids = []
    for name in ("stays-0", "stays-1", "told"):
        body = {"vehicle_id": name, "energy_kwh": 100, "max_power_kw": 22, "min_power_kw": 1.4}
        answer = call("POST", f"{substation.url}/begin_charging", body)
        assert answer.status == 201, answer.body
        ids.append(answer.body["session"]["session_id"])
    told = f"{substation.url}/sessions/{ids[2]}"
    assert call("GET", told).body["allocated_kw"] == pytest.approx(11.0), "a fair third, no departure"
    answer = call("PATCH", told, {"energy_kwh": 15, "departure_time": iso_in(HOUR_S)})
    assert answer.status == 200, answer.body
    assert answer.body["energy_kwh"] == 15 and answer.body["departure_time"] is not None
    assert answer.body["promised"] is True and answer.body["allocated_kw"] == pytest.approx(22.0)
    cleared = call("PATCH", told, {"departure_time": None}, headers={"Content-Type": "application/merge-patch+json"})
    assert cleared.status == 200 and cleared.body["departure_time"] is None and cleared.body["promised"] is None
    assert cleared.body["allocated_kw"] == pytest.approx(11.0), "fair again"
    done = call("PATCH", told, {"energy_kwh": 0.001})
    assert done.status == 200 and done.body["state"] == "completed", "its energy is in: it is done"
    assert call("GET", f"{substation.url}/sessions/{ids[0]}").body["allocated_kw"] == pytest.approx(16.5)
    ended = call("PATCH", told, {"energy_kwh": 20})
    assert ended.status == 409 and ended.content_type == "application/problem+json"
    assert ended.body["session"]["state"] == "completed"
    wrong = call("PATCH", f"{substation.url}/sessions/{ids[0]}", {"departure_time": "07:00", "colour": "red"})
    assert wrong.status == 422 and [e["field"] for e in wrong.body["errors"]] == ["colour", "departure_time"]
    assert call("PATCH", f"{substation.url}/sessions/s.{'a' * 24}", {"energy_kwh": 5}).status == 404
