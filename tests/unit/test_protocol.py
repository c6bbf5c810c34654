"""The wire protocol: every shape's parse, its serialization, and its schema, agreeing."""

import json
import math

import jsonschema
import pytest

from grid_common.openapi import SCHEMAS
from grid_common.protocol import (
    ADMISSION_ANSWER_SCHEMA,
    ADMISSION_SCHEMA,
    CHARGE_REQUEST_SCHEMA,
    DEFAULT_ENERGY_KWH,
    DEFAULT_MAX_POWER_KW,
    LOAD_REPORT_SCHEMA,
    SESSION_SCHEMA,
    ChargeRequest,
    InvalidRequest,
    LoadReport,
    MalformedReport,
    SchedulePeriod,
    SessionReport,
    admission_answer,
    admission_body,
    is_session_id,
    is_session_report,
    parse_admission,
    parse_charge_request,
    substation_of,
)


def test_body_less_request_gets_defaults():
    request = parse_charge_request(None)
    assert request.energy_kwh == DEFAULT_ENERGY_KWH and request.max_power_kw == DEFAULT_MAX_POWER_KW
    assert request.vehicle_id.startswith("EV-")
    assert parse_charge_request({}).energy_kwh == DEFAULT_ENERGY_KWH


def test_explicit_fields_are_kept():
    request = parse_charge_request({"vehicle_id": "EV-42", "energy_kwh": 30, "max_power_kw": 7.4})
    assert (request.vehicle_id, request.energy_kwh, request.max_power_kw) == ("EV-42", 30.0, 7.4)


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"energy_kwh": -1}, "energy_kwh", "greater than 0"),
        ({"energy_kwh": 0}, "energy_kwh", "greater than 0"),
        ({"energy_kwh": math.nan}, "energy_kwh", "finite"),
        ({"max_power_kw": math.inf}, "max_power_kw", "finite"),
        ({"max_power_kw": 1e12}, "max_power_kw", "at most"),
        ({"energy_kwh": "11"}, "energy_kwh", "number"),
        ({"energy_kwh": True}, "energy_kwh", "number"),
        ({"vehicle_id": ""}, "vehicle_id", "1-64"),
        ({"vehicle_id": "x" * 65}, "vehicle_id", "1-64"),
        ({"vehicle_id": "EV 42<script>"}, "vehicle_id", "1-64"),
        ({"vehicle_id": 42}, "vehicle_id", "1-64"),
        ({"colour": "red"}, "colour", "not a known field"),
    ],
)
def test_invalid_fields_are_named(body, field, message):
    with pytest.raises(InvalidRequest) as caught:
        parse_charge_request(body)
    assert any(e["field"] == field and message in e["message"] for e in caught.value.errors), caught.value.errors


@pytest.mark.parametrize("body", [[], "text", 3])
def test_body_must_be_an_object(body):
    with pytest.raises(InvalidRequest):
        parse_charge_request(body)


def test_every_invalid_field_is_reported_at_once():
    with pytest.raises(InvalidRequest) as caught:
        parse_charge_request({"energy_kwh": -1, "max_power_kw": "fast", "x": 1})
    assert {e["field"] for e in caught.value.errors} == {"energy_kwh", "max_power_kw", "x"}


def test_session_ids_carry_their_substation():
    assert is_session_id("substation1.0123456789abcdef")
    assert substation_of("substation1.0123456789abcdef") == "substation1"
    for bad in ["", "nodot", "a.short", "../etc.passwd0000", "a.b.cdefghijkl", "x" * 64 + ".0123456789"]:
        assert not is_session_id(bad), bad


def test_ids_with_a_trailing_newline_are_refused():
    """Python's `$` also matches before a final newline: ids are matched whole."""
    assert not is_session_id("s1.0123456789abcdef\n")
    with pytest.raises(InvalidRequest):
        parse_charge_request({"vehicle_id": "EV-1\n"})


def a_load_report(**changes) -> LoadReport:
    fields = {
        "name": "substation1",
        "capacity_kw": 150.0,
        "ev_power_kw": 22.0,
        "background_kw": 30.5,
        "active_sessions": 2,
        "charger_max_power_kw": 22.0,
        "epoch": "e1",
        "sequence": 7,
        "next_session_end_s": 12.5,
        "others_ev_power_kw": 11.0,
        "others_sessions": 1,
        "started_for_you": 4,
        "allocation": "fair",
        "headroom_kw": 119.5,
        "admission_headroom_kw": 118.0,
        "committed_kw": 2.8,
        "paused_sessions": 0,
        "queued_sessions": 1,
        "queue_limit": 100,
        "queue_by_priority": (1, 0, 0, 0),
        "shareable_kw": (116.7, 116.7, 116.7, 116.7),
        "sharing_sessions": (2, 2, 2, 2),
        "demand_kw": 33.0,
        "estimated_start_s": (0.0, 0.0, None, 3.5),
    }
    return LoadReport.of(**{**fields, **changes})


def a_session_report(**changes) -> SessionReport:
    fields = {
        "session_id": "substation1.0123456789abcdef",
        "substation": "substation1",
        "vehicle_id": "EV-1",
        "state": "charging",
        "allocated_kw": 11.0,
        "min_power_kw": 1.4,
        "max_power_kw": 11.0,
        "priority": 0,
        "energy_kwh": 11.0,
        "energy_delivered_kwh": 2.5,
        "requested_at": 1_700_000_000.0,
        "started_at": 1_700_000_000.0,
        "estimated_end": 1_700_000_010.0,
        "ended_at": None,
        "schedule": (SchedulePeriod(1_700_000_000.0, 22.0), SchedulePeriod(1_700_000_004.0, 11.0)),
    }
    return SessionReport(**{**fields, **changes})


def schema_validator(schema: dict) -> jsonschema.Draft202012Validator:
    """A schema of the protocol, its references to the others resolved as the OpenAPI documents do."""
    components = {"components": {"schemas": SCHEMAS}}
    return jsonschema.Draft202012Validator({**schema, **components}, format_checker=jsonschema.FormatChecker())


@pytest.mark.parametrize(
    "report",
    [
        a_load_report(),
        a_load_report(others_ev_power_kw=None, others_sessions=None, started_for_you=None, next_session_end_s=None),
        a_load_report(grid_limit_kw=40.0),
        a_load_report(draining=True),
    ],
)
def test_a_load_report_is_what_its_schema_says_and_reads_back_as_itself(report):
    body = report.to_json()
    schema_validator(LOAD_REPORT_SCHEMA).validate(body)
    assert set(body) <= set(LOAD_REPORT_SCHEMA["properties"])
    for_the_asking_balancer = {"others_ev_power_kw", "others_sessions", "started_for_you"}
    while_a_limit_is_in_force = {"grid_limit_kw"}
    while_it_shuts_down = {"draining"}
    assert set(LOAD_REPORT_SCHEMA["properties"]) - set(body) <= (
        for_the_asking_balancer | while_a_limit_is_in_force | while_it_shuts_down
    )
    assert LoadReport.from_json(body) == report


@pytest.mark.parametrize(
    "change",
    [
        {"capacity_kw": 0},
        {"ev_power_kw": -1},
        {"active_sessions": 1.5},
        {"sequence": True},
        {"name": "a b"},
        {"allocation": "greedy"},
        {"shareable_kw": [1, 2, 3]},
        {"queue_by_priority": [0, 0, -1, 0]},
    ],
)
def test_a_load_report_that_breaks_its_schema_is_malformed(change):
    body = {**a_load_report().to_json(), **change}
    assert not schema_validator(LOAD_REPORT_SCHEMA).is_valid(body)
    with pytest.raises(MalformedReport):
        LoadReport.from_json(body)


@pytest.mark.parametrize(
    "session",
    [
        a_session_report(),
        a_session_report(
            state="queued",
            allocated_kw=0,
            started_at=None,
            estimated_end=None,
            position=2,
            estimated_start=1_700_000_030.0,
            schedule=(),
        ),
        a_session_report(state="completed", allocated_kw=0, energy_delivered_kwh=11, ended_at=1_700_000_011.0),
    ],
)
def test_a_session_report_is_what_its_schema_says(session):
    schema_validator(SESSION_SCHEMA).validate(session.to_json())
    assert set(session.to_json()) == set(SESSION_SCHEMA["properties"]) == set(SESSION_SCHEMA["required"])


def test_a_session_schedule_is_an_ocpp_charging_schedule():
    schedule = a_session_report().to_json()["charging_schedule"]
    assert schedule == {
        "startSchedule": "2023-11-14T22:13:20.000Z",
        "chargingRateUnit": "W",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 22000.0}, {"startPeriod": 4, "limit": 11000.0}],
        "minChargingRate": 1400.0,
    }


def test_an_admission_answer_is_what_its_schema_says():
    session = a_session_report()
    answer = json.loads(admission_answer(session, a_load_report()))  # sent as it is encoded
    schema_validator(ADMISSION_ANSWER_SCHEMA).validate(answer)
    assert is_session_report(answer["session"])
    assert not is_session_report({**answer["session"], "substation": "elsewhere"})


def test_an_admission_carries_the_request_and_the_session_id_the_balancer_chose():
    request = ChargeRequest("EV-7", 20.0, 7.4)
    body = admission_body(request, "substation2.0123456789abcdef")
    schema_validator(ADMISSION_SCHEMA).validate(body)
    assert parse_admission(body) == (request, "substation2.0123456789abcdef")
    with pytest.raises(InvalidRequest) as caught:
        parse_admission({**body, "session_id": "not an id"})
    assert [e["field"] for e in caught.value.errors] == ["session_id"]
    with pytest.raises(InvalidRequest):
        parse_charge_request(body)  # the session id is the admission's, not the request's


def test_every_field_of_a_request_is_in_its_schema():
    request = parse_charge_request({"vehicle_id": "EV-1", "energy_kwh": 5, "max_power_kw": 3})
    schema_validator(CHARGE_REQUEST_SCHEMA).validate(request.to_json())
    unsaid = {"max_current_a", "min_current_a", "departure_time"}  # said as powers once parsed; none given
    assert set(request.to_json()) | unsaid == set(CHARGE_REQUEST_SCHEMA["properties"])
    leaving = parse_charge_request({"departure_time": "2026-12-08T07:00:00+01:00"})
    schema_validator(CHARGE_REQUEST_SCHEMA).validate(leaving.to_json())
    assert parse_charge_request(leaving.to_json()) == leaving, "its departure goes on as it came"


def test_the_new_fields_of_a_request_and_their_defaults():
    default = parse_charge_request(None)
    assert (default.min_power_kw, default.priority, default.wait) == (4.14, 0, False)
    assert parse_charge_request({"max_power_kw": 1.2}).min_power_kw == 1.2, "never above its maximum"
    asked = parse_charge_request({"min_power_kw": 4, "max_power_kw": 11, "priority": 3, "wait": True})
    assert (asked.min_power_kw, asked.priority, asked.wait) == (4, 3, True)
    assert parse_charge_request({"priority": 2.0}).priority == 2, "JSON has numbers: 2.0 is 2"


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"min_power_kw": 12, "max_power_kw": 11}, "min_power_kw", "at most max_power_kw"),
        ({"min_power_kw": 12}, "min_power_kw", "at most max_power_kw"),
        ({"min_power_kw": 0.5}, "min_power_kw", "at least 1"),
        ({"priority": 4}, "priority", "0 to 3"),
        ({"priority": 1.5}, "priority", "0 to 3"),
        ({"priority": True}, "priority", "0 to 3"),
        ({"wait": "yes"}, "wait", "true or false"),
        ({"wait": 1}, "wait", "true or false"),
    ],
)
def test_the_new_fields_are_checked(body, field, message):
    with pytest.raises(InvalidRequest) as caught:
        parse_charge_request(body)
    assert any(e["field"] == field and message in e["message"] for e in caught.value.errors), caught.value.errors


def test_a_body_less_request_is_a_3_phase_16_a_car_that_charges_at_no_less_than_3_x_6_a():
    default = parse_charge_request(None)
    assert (default.phases, default.max_power_kw, default.min_power_kw) == (3, 11.04, 4.14)
    assert set(default.to_json()) >= {"phases", "max_power_kw", "min_power_kw"}
    assert "max_current_a" not in default.to_json(), "once parsed, the powers say it"


def test_currents_become_powers_on_the_cars_phases_at_the_nominal_voltage():
    one_phase = parse_charge_request({"phases": 1, "max_current_a": 32})
    assert (one_phase.phases, one_phase.max_power_kw, one_phase.min_power_kw) == (1, 7.36, 1.38)
    three = parse_charge_request({"max_current_a": 16, "min_current_a": 10})
    assert (three.max_power_kw, three.min_power_kw) == (11.04, 6.9)
    at_240 = parse_charge_request({"phases": 1, "max_current_a": 16}, voltage_v=240)
    assert at_240.max_power_kw == 3.84
    assert parse_charge_request({"max_power_kw": 3}).min_power_kw == 3, "never above its maximum"
    assert parse_charge_request(parse_charge_request({"phases": 1}).to_json()).phases == 1, "forwarded as it is"


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"phases": 2}, "phases", "must be 1 or 3"),
        ({"phases": True}, "phases", "must be 1 or 3"),
        ({"max_current_a": 5}, "max_current_a", "at least 6"),
        ({"min_current_a": 4}, "min_current_a", "at least 6"),
        ({"max_current_a": 16, "max_power_kw": 11}, "max_current_a", "not both"),
        ({"min_current_a": 20, "max_current_a": 16}, "min_current_a", "at most the maximum current (16 A)"),
        ({"min_current_a": 20, "max_power_kw": 11.04}, "min_current_a", "at most the maximum current (16 A)"),
    ],
)
def test_a_wrong_current_or_phase_count_is_named(body, field, message):
    with pytest.raises(InvalidRequest) as caught:
        parse_charge_request(body)
    assert [(e["field"], message in e["message"]) for e in caught.value.errors] == [(field, True)]


def test_a_session_change_is_a_merge_patch_of_energy_and_departure_checked_as_a_request_is():
    from grid_common.protocol import parse_session_change

    change = parse_session_change({"energy_kwh": 30, "departure_time": "2026-12-08T07:00:00+01:00"})
    assert change.energy_kwh == 30.0 and change.departs and change.departure_at == 1796709600.0
    assert change.to_json() == {"energy_kwh": 30.0, "departure_time": "2026-12-08T07:00:00+01:00"}
    cleared = parse_session_change({"departure_time": None})
    assert cleared.departs and cleared.departure_at is None and cleared.energy_kwh is None, "null: no departure"
    assert parse_session_change({"energy_kwh": 5}).departs is False, "absent: unchanged"
    with pytest.raises(InvalidRequest) as wrong:
        parse_session_change({"colour": "red", "energy_kwh": 0, "departure_time": "2026-12-08T07:00:00"})
    assert [e["field"] for e in wrong.value.errors] == ["colour", "energy_kwh", "departure_time"]
    for nothing in ({}, [], None):
        with pytest.raises(InvalidRequest):
            parse_session_change(nothing)
