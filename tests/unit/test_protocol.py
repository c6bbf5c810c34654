"""The wire protocol: every shape's parse, its serialization, and its schema, agreeing."""

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
    }
    return LoadReport(**{**fields, **changes})


def a_session_report(**changes) -> SessionReport:
    fields = {
        "session_id": "substation1.0123456789abcdef",
        "substation": "substation1",
        "vehicle_id": "EV-1",
        "state": "charging",
        "power_kw": 11.0,
        "energy_kwh": 11.0,
        "energy_delivered_kwh": 2.5,
        "started_at": 1_700_000_000.0,
        "estimated_end": 1_700_000_010.0,
        "ended_at": None,
    }
    return SessionReport(**{**fields, **changes})


def schema_validator(schema: dict) -> jsonschema.Draft202012Validator:
    """A schema of the protocol, its references to the others resolved as the OpenAPI documents do."""
    components = {"components": {"schemas": SCHEMAS}}
    return jsonschema.Draft202012Validator({**schema, **components}, format_checker=jsonschema.FormatChecker())


@pytest.mark.parametrize("report", [a_load_report(), a_load_report(others_ev_power_kw=None, next_session_end_s=None)])
def test_a_load_report_is_what_its_schema_says_and_reads_back_as_itself(report):
    body = report.to_json()
    schema_validator(LOAD_REPORT_SCHEMA).validate(body)
    assert set(body) <= set(LOAD_REPORT_SCHEMA["properties"])
    assert set(LOAD_REPORT_SCHEMA["properties"]) - set(body) <= {"others_ev_power_kw"}
    assert LoadReport.from_json(body) == report


@pytest.mark.parametrize(
    "change",
    [{"capacity_kw": 0}, {"ev_power_kw": -1}, {"active_sessions": 1.5}, {"sequence": True}, {"name": "a b"}],
)
def test_a_load_report_that_breaks_its_schema_is_malformed(change):
    body = {**a_load_report().to_json(), **change}
    assert not schema_validator(LOAD_REPORT_SCHEMA).is_valid(body)
    with pytest.raises(MalformedReport):
        LoadReport.from_json(body)


def test_a_session_report_and_an_admission_answer_are_what_their_schemas_say():
    session = a_session_report()
    schema_validator(SESSION_SCHEMA).validate(session.to_json())
    assert set(session.to_json()) == set(SESSION_SCHEMA["properties"]) == set(SESSION_SCHEMA["required"])
    answer = admission_answer(session, a_load_report())
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
    assert set(request.to_json()) == set(CHARGE_REQUEST_SCHEMA["properties"])
