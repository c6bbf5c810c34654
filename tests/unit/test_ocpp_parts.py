"""The OCPP service's pure parts: kW to amperes, the safe default, profiles valid against OCPP's own schemas,
meter values of both versions, and the registry's rules."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ocpp.messages import Call, get_validator

from grid_common.protocol import InvalidRequest, parse_charge_request, parse_start_request
from ocpp_service.limits import (
    DEFAULT_PROFILE_ID,
    TX_PROFILE_ID,
    Profile,
    iso,
    limit_a,
    limits_ahead,
    safe_default_a,
)
from ocpp_service.meters import read_meter_values
from ocpp_service.registry import Charger, RegistryError, default_registry, load_registry
from ocpp_service.remote_start import ID_TAG_LENGTH, admission_limits, id_tag_for

pytestmark = pytest.mark.unit

THREE_PHASE = Charger("cp", "s", phases=3, max_current_a=32)
ONE_PHASE = Charger("cp1", "s", phases=1, max_current_a=16)


def test_a_limit_is_rounded_down_to_0_1_a_capped_by_the_charger_and_0_below_6_a():
    assert limit_a(11.0, THREE_PHASE, 230) == 15.9  # 15.94 A: never above what was given
    assert limit_a(100.0, THREE_PHASE, 230) == 32.0
    assert limit_a(4.13, THREE_PHASE, 230) == 0.0, "5.98 A: below what a car may be offered, a pause"
    assert limit_a(4.14, THREE_PHASE, 230) == 6.0
    assert limit_a(3.0, ONE_PHASE, 230) == 13.0


def test_every_charger_at_its_safe_default_at_once_stays_within_capacity_less_the_background_peak():
    amperes = safe_default_a(150.0, 45.0, (13, 13, 13), THREE_PHASE, 230)
    assert 13 * THREE_PHASE.kw(amperes, 230) <= 150.0 - 45.0
    assert safe_default_a(150.0, 140.0, (13, 13, 13), THREE_PHASE, 230) == 0.0, "less than 6 A each: none may charge"


def test_a_safe_default_holds_on_every_phase_with_1_phase_chargers_wired_to_one():
    # 30 kW: 10 kW (43.5 A) a phase. Three 1-phase chargers on L1 and a 3-phase one: four draw on L1.
    on_phases = (4, 1, 1)
    amperes = safe_default_a(30.0, 0.0, on_phases, ONE_PHASE, 230)
    assert amperes == 10.8 and 4 * amperes * 230 / 1000 <= 10.0, "L1 holds all four"
    assert safe_default_a(30.0, 0.0, (1, 1, 1), THREE_PHASE, 230) == 32.0, "one charger alone: its maximum"
    shares = (0.6, 0.2, 0.2)  # the background heavier on L1 leaves less there
    assert safe_default_a(30.0, 12.0, (1, 1, 1), THREE_PHASE, 230, shares) == pytest.approx(12.1)


def schedule(sent: Profile) -> dict:
    periods = [{"start_period": 0, "limit": sent.amperes, "number_phases": sent.phases}]
    periods += [{"start_period": offset, "limit": amperes, "number_phases": sent.phases} for offset, amperes in
                sent.ahead]  # fmt: skip
    made: dict = {"charging_rate_unit": "A", "charging_schedule_period": periods}
    if sent.ahead:
        made["start_schedule"] = iso(sent.starts_at)
    return made


def v16_profile(sent: Profile) -> dict:
    """OCPP 1.6 csChargingProfiles, snake_case as the library takes it: what the wire payload must become."""
    profile: dict = {
        "charging_profile_id": TX_PROFILE_ID if sent.transaction_id else DEFAULT_PROFILE_ID,
        "stack_level": 1 if sent.transaction_id else 0,
        "charging_profile_purpose": "TxProfile" if sent.transaction_id else "TxDefaultProfile",
        "charging_profile_kind": "Absolute" if sent.ahead else "Relative",
        "charging_schedule": schedule(sent),
    }
    if sent.transaction_id is not None:
        profile["transaction_id"] = int(sent.transaction_id)
    if sent.valid_to is not None:
        profile["valid_to"] = iso(sent.valid_to)
    return profile


def v201_profile(sent: Profile) -> dict:
    """OCPP 2.0.1 chargingProfile, snake_case as the library takes it."""
    profile: dict = {
        "id": TX_PROFILE_ID if sent.transaction_id else DEFAULT_PROFILE_ID,
        "stack_level": 1 if sent.transaction_id else 0,
        "charging_profile_purpose": "TxProfile" if sent.transaction_id else "TxDefaultProfile",
        "charging_profile_kind": "Absolute" if sent.ahead else "Relative",
        "charging_schedule": [{"id": 1, **schedule(sent)}],
    }
    if sent.transaction_id is not None:
        profile["transaction_id"] = sent.transaction_id
    if sent.valid_to is not None:
        profile["valid_to"] = iso(sent.valid_to)
    return profile


@pytest.mark.parametrize("amperes", [0.0, 6.0, 15.9, 32.0])
@pytest.mark.parametrize("transaction", [None, "1234"])
@pytest.mark.parametrize("ahead", [(), ((900, 12.5), (1800, 0.0))])
def test_profiles_are_what_the_official_schemas_allow_in_both_versions(amperes, transaction, ahead):
    from ocpp.charge_point import snake_to_camel_case

    ahead = ahead if transaction else ()  # a plan is a transaction's
    profile = Profile(amperes, 3, transaction, 1_800_000_000.0 if transaction else None, ahead, 1_799_999_000)
    # What goes on the wire (encoded once, past the library's call) is what the library would make of it.
    v16, v201 = profile.v16_payload(), profile.v201_payload()
    assert v16 == snake_to_camel_case(
        {"connector_id": 1 if transaction else 0, "cs_charging_profiles": v16_profile(profile)}
    )
    assert v201 == snake_to_camel_case({"evse_id": 1 if transaction else 0, "charging_profile": v201_profile(profile)})
    get_validator(2, "SetChargingProfile", "1.6", parse_float=Decimal).validate(
        json.loads(json.dumps(v16), parse_float=Decimal)
    )
    get_validator(2, "SetChargingProfile", "2.0.1").validate(v201)
    periods = v201["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"]
    assert periods[0]["startPeriod"] == 0 and periods[0]["limit"] == amperes
    assert Call("x", "SetChargingProfile", v16).to_json()  # serialisable as sent
    assert [p["startPeriod"] for p in periods] == [0, *(offset for offset, _ in ahead)]


def test_the_limits_ahead_never_rise_above_the_limit_now_fall_on_time_and_end_with_the_profile():
    start, until = 1000, 1060.0
    planned = [(1010.4, 20.0), (1020.5, 40.0), (1030.2, 10.0), (1030.7, 12.0), (1070.0, 0.0)]
    assert limits_ahead(planned, 32.0, start, until) == ((10, 20.0), (21, 32.0), (30, 10.0), (31, 12.0)), (
        "a fall at its second, never late; a rise to the limit now at most, never early; none after the profile ends"
    )
    assert limits_ahead([(1030.2, 10.0), (1030.9, 8.0)], 32.0, start, until) == ((30, 8.0),), "in one second: the lower"
    assert limits_ahead([(1000.5, 10.0)], 32.0, start, until) == ((1, 10.0),), "a fall in the first second"
    assert limits_ahead([(1010.0, 32.0), (1020.0, 32.0)], 32.0, start, until) == (), "no change: no period"


@given(
    st.lists(st.tuples(st.floats(1000.01, 1100), st.sampled_from([0.0, 6.0, 10.0, 16.0, 32.0])), max_size=12),
    st.sampled_from([6.0, 16.0, 32.0]),
)
def test_limits_ahead_make_a_schedule_a_charger_takes(planned, now_a):
    planned.sort()
    ahead = limits_ahead(planned, now_a, 1000, 1060.0)
    offsets = [offset for offset, _ in ahead]
    assert offsets == sorted(set(offsets)) and all(1 <= offset < 61 for offset in offsets), "strictly after 0"
    assert all(amperes <= now_a for _, amperes in ahead)
    limits = [now_a, *(amperes for _, amperes in ahead)]
    assert all(a != b for a, b in itertools.pairwise(limits)), "each period a change"


def test_meter_values_of_1_6_are_strings_with_units_and_of_2_0_1_numbers_with_multipliers():
    v16 = read_meter_values([{"timestamp": "t", "sampled_value": [
        {"value": "7.4", "measurand": "Power.Active.Import", "unit": "kW"},
        {"value": "12500", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
        {"value": "32.1", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
        {"value": "not a number", "measurand": "Power.Active.Import"},
    ]}])  # fmt: skip
    assert (v16.power_w, v16.energy_wh, v16.current_a) == (7400.0, 12500.0, {"L1": 32.1})
    v201 = read_meter_values([{"timestamp": "t", "sampled_value": [
        {"value": 11.0, "measurand": "Power.Active.Import", "unit_of_measure": {"unit": "W", "multiplier": 3}},
        {"value": 2.5, "unit_of_measure": {"unit": "kWh"}},  # no measurand: the energy register
    ]}])  # fmt: skip
    assert (v201.power_w, v201.energy_wh) == (11000.0, 2500.0)


def test_the_phases_a_car_draws_on_are_counted_only_from_all_three_currents():
    def currents(l1: float, l2: float | None, l3: float) -> list[dict]:
        sampled = [{"value": str(a), "measurand": "Current.Import", "phase": p, "unit": "A"}
                   for p, a in (("L1", l1), ("L2", l2), ("L3-N", l3)) if a is not None]  # fmt: skip
        return [{"timestamp": "t", "sampled_value": sampled}]

    assert read_meter_values(currents(31.8, 0.0, 0.2)).phases_drawn() == 1, "under 1 A is no phase drawn on"
    assert read_meter_values(currents(16.0, 16.0, 0.0)).phases_drawn() == 2
    assert read_meter_values(currents(6.0, 6.1, 5.9)).phases_drawn() == 3
    assert read_meter_values(currents(0.0, 0.0, 0.0)).phases_drawn() is None, "drawing nothing says nothing"
    assert read_meter_values(currents(31.8, None, 0.0)).phases_drawn() is None, "L2 not reported: not known"


def test_the_default_registry_and_a_registry_file(tmp_path):
    registry = default_registry(["substation1", "substation2"], 10, 3)
    assert len(registry) == 26 and registry["substation2-cp10"].substation == "substation2"
    assert registry["substation1-fleet3"].fleet and registry["substation1-cp1"].kw(32, 230) == pytest.approx(22.08)
    good = tmp_path / "good.json"
    good.write_text(json.dumps([{"charger_id": "a-1", "substation": "substation1", "phases": 1}]))
    assert load_registry(str(good), ["substation1"])["a-1"].phases == 1
    for wrong in (
        [{"charger_id": "a-1", "substation": "nowhere"}],
        [{"charger_id": "a-1", "substation": "substation1"}, {"charger_id": "a-1", "substation": "substation1"}],
        [{"charger_id": "a-1", "substation": "substation1", "password": "short"}],
        [{"charger_id": "a-1", "substation": "substation1", "max_current_a": 3}],
        {"not": "a list"},
    ):
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps(wrong))
        with pytest.raises(RegistryError):
            load_registry(str(bad), ["substation1"])


def test_a_remote_starts_id_tag_is_the_vehicle_unless_1_6_cannot_carry_it():
    assert id_tag_for(parse_charge_request({"vehicle_id": "van-7"}), "a" * 24) == "van-7"
    long = id_tag_for(parse_charge_request({"vehicle_id": "v" * 21}), "b" * 24)
    assert long == ("R" + "b" * 24)[:ID_TAG_LENGTH] and len(long) == 20


def test_a_remote_starts_power_is_the_clients_within_what_the_charger_gives():
    asked = parse_charge_request({"max_power_kw": 50, "min_power_kw": 2})
    assert admission_limits(asked, THREE_PHASE, 230) == (22.08, 4.14, 3), "at most 32 A, at least 6 A on 3 phases"
    assert admission_limits(parse_charge_request({"max_power_kw": 7}), ONE_PHASE, 230) == (3.68, 1.38, 1)
    one_phase_car = parse_charge_request({"phases": 1, "max_current_a": 32})
    assert admission_limits(one_phase_car, THREE_PHASE, 230) == (7.36, 1.38, 1), "a 1-phase car on one of three"


def test_a_start_request_names_a_charger_or_none_and_says_which_field_is_wrong():
    assert parse_start_request({"charger_id": "substation1-cp1"}).charger_id == "substation1-cp1"
    plain = parse_start_request({"energy_kwh": 5})
    assert plain.charger_id is None and "charger_id" not in plain.to_json()
    assert "charger_id" not in parse_start_request({"charger_id": "x"}).without_charger().to_json()
    with pytest.raises(InvalidRequest) as wrong:
        parse_start_request({"charger_id": "no spaces", "energy_kwh": -1})
    assert {error["field"] for error in wrong.value.errors} == {"charger_id", "energy_kwh"}


def test_a_cars_charging_needs_become_its_sessions_energy_in_all_and_its_departure():
    from ocpp_service.csms import ChargingNeeds, Csms, Transaction
    from ocpp_service.v201 import read_time

    transaction = Transaction("t1", "s.0123456789abcdef", meter_start_wh=1_000.0)
    transaction.register_wh = 4_000.0  # 3 kWh in so far
    change = Csms._session_change(transaction, ChargingNeeds(12_000.0, 1_800_000_000.0))
    assert change.energy_kwh == pytest.approx(15.0), "what the meter counted, and what the car still wants"
    assert change.departs and change.departure_at == 1_800_000_000.0
    assert change.to_json()["departure_time"] == "2027-01-15T08:00:00+00:00"
    unknown_meter = Csms._session_change(Transaction("t2", "s.0123456789abcdef"), ChargingNeeds(5_000.0, None))
    assert unknown_meter.energy_kwh == 5.0 and not unknown_meter.departs, "no departure said: unchanged"
    assert Csms._session_change(transaction, ChargingNeeds(0.0, None)).energy_kwh == 3.0, "done with what it has"
    assert Csms._session_change(transaction, ChargingNeeds(900_000.0, None)).energy_kwh == 250.0, "a battery's most"
    assert Csms._session_change(transaction, ChargingNeeds(None, None)).energy_kwh is None
    assert read_time("2026-12-08T07:00:00Z") == read_time("2026-12-08T08:00:00+01:00") == 1796713200.0
    assert read_time("2026-12-08T07:00:00") == 1796713200.0, "OCPP's times without an offset are UTC"
    with pytest.raises(ValueError):
        read_time("tomorrow")


def test_a_limit_is_never_above_the_chargers_maximum_even_one_between_steps():
    odd = Charger("odd", "s", max_current_a=16.96)
    assert limit_a(22.0, odd, 230) == 16.9, "rounded down, not to 17.0"
    assert limit_a(22.0, Charger("c", "s"), 230) == 31.8 and limit_a(4.14, Charger("c", "s"), 230) == 6.0
