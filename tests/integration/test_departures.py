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
