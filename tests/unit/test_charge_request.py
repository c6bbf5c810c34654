import math

import pytest

from grid_common.protocol import (
    DEFAULT_ENERGY_KWH,
    DEFAULT_MAX_POWER_KW,
    InvalidRequest,
    is_session_id,
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
    from grid_common.protocol import InvalidRequest, is_session_id, parse_charge_request

    assert not is_session_id("s1.0123456789abcdef\n")
    with pytest.raises(InvalidRequest):
        parse_charge_request({"vehicle_id": "EV-1\n"})
