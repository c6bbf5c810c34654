"""The simulated charger's profile store (load_tester/fleet/profiles.py): OCPP's stacking rules, validity,
amperes to watts, and parsing both versions' payloads as the `ocpp` library hands them to a handler."""

from __future__ import annotations

from decimal import Decimal

import pytest

from load_tester.fleet.profiles import (
    ChargingProfile,
    ProfileError,
    ProfileKind,
    ProfileStore,
    Purpose,
    RateUnit,
    SchedulePeriod,
    parse_time,
    parse_v16,
    parse_v201,
)

pytestmark = pytest.mark.unit

T0 = 1_800_000_000.0  # a wall time, epoch seconds
V = 230.0
MAX_W = 32 * 3 * V  # the charger's own maximum, 3 x 32 A


def profile(
    profile_id: int = 1,
    *,
    purpose: Purpose = Purpose.TX_DEFAULT,
    stack_level: int = 0,
    limits: tuple[tuple[float, float], ...] = ((0, 16.0),),
    unit: RateUnit = RateUnit.AMPERES,
    phases: int | None = None,
    connector_id: int = 1,
    transaction_id: str | None = None,
    kind: ProfileKind = ProfileKind.ABSOLUTE,
    start: float | None = T0,
    valid_from: float | None = None,
    valid_to: float | None = None,
    duration_s: float | None = None,
) -> ChargingProfile:
    return ChargingProfile(
        id=profile_id,
        stack_level=stack_level,
        purpose=purpose,
        kind=kind,
        unit=unit,
        periods=tuple(SchedulePeriod(offset, limit, phases) for offset, limit in limits),
        connector_id=connector_id,
        transaction_id=transaction_id,
        valid_from=valid_from,
        valid_to=valid_to,
        start_schedule=start,
        duration_s=duration_s,
    )


def watts(amperes: float, phases: int = 3) -> float:
    return amperes * phases * V


def test_without_profiles_the_limit_is_the_chargers_own_maximum():
    store = ProfileStore(max_current_a=32, phases=3)
    assert store.limit_w(T0, 3, V) == MAX_W
    assert store.limit_w(T0, 1, V) == watts(32, 1)  # a 1-phase car can take one phase's worth


def test_amperes_become_watts_with_the_periods_phases_and_the_cars():
    store = ProfileStore()
    store.install(profile(limits=((0, 16.0),)), T0)
    assert store.limit_w(T0, 3, V) == pytest.approx(11_040)  # 3 x 16 A: numberPhases absent means 3
    assert store.limit_w(T0, 1, V) == pytest.approx(3_680)  # a 1-phase car under it draws 16 A on one phase
    store.install(profile(limits=((0, 16.0),), phases=1), T0)  # same id: replaces
    assert store.limit_w(T0, 3, V) == pytest.approx(3_680)
    store.install(profile(limits=((0, 7_000.0),), unit=RateUnit.WATTS), T0)
    assert store.limit_w(T0, 3, V) == 7_000 and store.limit_w(T0, 1, V) == 7_000


def test_the_period_in_force_is_the_last_started_one():
    store = ProfileStore()
    store.install(profile(limits=((0, 16.0), (60, 10.0), (120, 6.0))), T0)
    assert store.limit_w(T0 + 59.9, 3, V) == pytest.approx(watts(16))
    assert store.limit_w(T0 + 60, 3, V) == pytest.approx(watts(10))
    assert store.limit_w(T0 + 3_600, 3, V) == pytest.approx(watts(6))
    assert store.limit_w(T0 - 1, 3, V) == MAX_W  # not started yet


def test_within_a_purpose_the_highest_stack_level_in_force_wins():
    store = ProfileStore()
    store.install(profile(1, stack_level=0, limits=((0, 16.0),)), T0)
    store.install(profile(2, stack_level=2, limits=((0, 20.0),), valid_to=T0 + 100), T0)
    store.install(profile(3, stack_level=1, limits=((0, 8.0),)), T0)
    assert store.limit_w(T0 + 10, 3, V) == pytest.approx(watts(20))  # higher, though less strict
    assert store.limit_w(T0 + 100, 3, V) == pytest.approx(watts(8))  # level 2 expired: level 1


def test_a_connector_profile_beats_a_station_wide_one_of_the_same_level():
    store = ProfileStore()
    store.install(profile(1, connector_id=0, limits=((0, 10.0),)), T0)
    store.install(profile(2, connector_id=1, limits=((0, 20.0),)), T0)
    assert store.limit_w(T0, 3, V) == pytest.approx(watts(20))


def test_a_tx_profile_overrules_the_default_and_the_station_maximum_caps_both():
    store = ProfileStore()
    store.begin_transaction("tx-1", T0)
    store.install(profile(1, purpose=Purpose.STATION_MAX, connector_id=0, limits=((0, 20.0),)), T0)
    store.install(profile(2, purpose=Purpose.TX_DEFAULT, limits=((0, 16.0),)), T0)
    assert store.limit_w(T0 + 1, 3, V) == pytest.approx(watts(16)), "no TxProfile: the default"
    store.install(profile(3, purpose=Purpose.TX, limits=((0, 25.0),), kind=ProfileKind.RELATIVE, start=None), T0)
    assert store.limit_w(T0 + 1, 3, V) == pytest.approx(watts(20)), "the TxProfile's 25 A, capped at 20"
    store.install(profile(5, purpose=Purpose.TX, limits=((0, 18.0),), kind=ProfileKind.RELATIVE, start=None), T0)
    assert store.limit_w(T0 + 1, 3, V) == pytest.approx(watts(18)), "above the default: it overrules it"
    store.install(profile(4, purpose=Purpose.STATION_MAX, connector_id=0, limits=((0, 6.0),)), T0)  # same level
    assert [p.id for p in store.profiles] == [2, 5, 4]  # 4 replaced 1 (5 replaced 3): same purpose, level, connector
    assert store.limit_w(T0 + 1, 3, V) == pytest.approx(watts(6))


def test_when_a_tx_profile_expires_the_tx_default_applies_again():
    store = ProfileStore()
    store.install(profile(1, purpose=Purpose.TX_DEFAULT, connector_id=0, limits=((0, 10.0),)), T0)
    store.begin_transaction("tx-1", T0)
    store.install(
        profile(2, purpose=Purpose.TX, limits=((0, 6.0),), kind=ProfileKind.RELATIVE, start=None, valid_to=T0 + 30),
        T0,
    )
    assert store.limit_w(T0 + 29, 3, V) == pytest.approx(watts(6))
    assert store.limit_w(T0 + 30, 3, V) == pytest.approx(watts(10))


def test_a_tx_profile_is_for_its_transaction_and_goes_with_it():
    store = ProfileStore()
    tx = profile(5, purpose=Purpose.TX, limits=((0, 8.0),), kind=ProfileKind.RELATIVE, start=None)
    with pytest.raises(ProfileError, match="no transaction"):
        store.install(tx, T0)
    store.begin_transaction("42", T0)
    with pytest.raises(ProfileError, match="unknown transaction 41"):
        store.install(profile(5, purpose=Purpose.TX, transaction_id="41"), T0)
    installed = store.install(tx, T0)
    assert installed.transaction_id == "42"  # bound to the running transaction
    assert store.limit_w(T0, 3, V) == pytest.approx(watts(8))
    store.end_transaction()
    assert store.profiles == [] and store.limit_w(T0, 3, V) == MAX_W


def test_a_relative_schedule_counts_from_the_transactions_start():
    store = ProfileStore()
    store.begin_transaction("tx", T0 + 100)
    store.install(profile(purpose=Purpose.TX, limits=((0, 10.0), (60, 6.0)), kind=ProfileKind.RELATIVE, start=None), T0)
    assert store.limit_w(T0 + 159, 3, V) == pytest.approx(watts(10))
    assert store.limit_w(T0 + 160, 3, V) == pytest.approx(watts(6))


def test_validity_and_duration_bound_a_profile():
    store = ProfileStore()
    store.install(profile(1, limits=((0, 10.0),), valid_from=T0 + 10, duration_s=60), T0)
    assert store.limit_w(T0 + 5, 3, V) == MAX_W  # not valid yet
    assert store.limit_w(T0 + 10, 3, V) == pytest.approx(watts(10))
    assert store.limit_w(T0 + 60, 3, V) == MAX_W  # the schedule (from T0) lasted 60 s


def test_a_daily_recurring_profile_repeats():
    store = ProfileStore()
    recurring = ChargingProfile(
        id=1,
        stack_level=0,
        purpose=Purpose.TX_DEFAULT,
        kind=ProfileKind.RECURRING,
        unit=RateUnit.AMPERES,
        periods=(SchedulePeriod(0, 6.0), SchedulePeriod(3_600, 16.0)),
        start_schedule=T0,
        recurrency_period_s=86_400,
    )
    store.install(recurring, T0)
    assert store.limit_w(T0 + 86_400 + 10, 3, V) == pytest.approx(watts(6))
    assert store.limit_w(T0 + 2 * 86_400 + 3_600, 3, V) == pytest.approx(watts(16))


def test_a_limit_above_the_chargers_maximum_is_capped_by_it():
    store = ProfileStore(max_current_a=16)
    store.install(profile(limits=((0, 32.0),)), T0)
    assert store.limit_w(T0, 3, V) == pytest.approx(watts(16))


@pytest.mark.parametrize(
    ("periods", "message"),
    [
        (((0, 16.0), (60, 10.0), (60, 8.0)), "does not increase"),
        (((0, 16.0), (60, 10.0), (30, 8.0)), "does not increase"),
        (((10, 16.0),), "first startPeriod must be 0"),
        (((0, -1.0),), "negative limit"),
    ],
)
def test_schedules_that_break_the_rules_are_refused(periods, message):
    raw = {
        "charging_profile_id": 1,
        "stack_level": 0,
        "charging_profile_purpose": "TxDefaultProfile",
        "charging_profile_kind": "Absolute",
        "charging_schedule": {
            "charging_rate_unit": "A",
            "charging_schedule_period": [{"start_period": start, "limit": limit} for start, limit in periods],
        },
    }
    with pytest.raises(ProfileError, match=message):
        parse_v16(raw, 1)


def test_the_station_maximum_belongs_on_connector_zero():
    with pytest.raises(ProfileError, match="connector/EVSE 0"):
        ProfileStore().install(profile(purpose=Purpose.STATION_MAX, connector_id=1), T0)


def test_clear_by_id_or_by_criteria():
    store = ProfileStore()
    store.install(profile(1, stack_level=0), T0)
    store.install(profile(2, stack_level=1), T0)
    store.install(profile(3, purpose=Purpose.STATION_MAX, connector_id=0), T0)
    assert store.clear(profile_id=2)
    assert not store.clear(profile_id=2)
    assert store.clear(purpose=Purpose.STATION_MAX)
    assert [p.id for p in store.profiles] == [1]
    assert store.clear()  # no criteria: all
    assert store.profiles == []


def test_parse_v16_as_the_library_hands_it_over():
    # 1.6 numbers arrive as Decimal (the library parses SetChargingProfile floats so), keys in snake_case.
    raw = {
        "charging_profile_id": 7,
        "transaction_id": 12,
        "stack_level": 1,
        "charging_profile_purpose": "TxProfile",
        "charging_profile_kind": "Relative",
        "valid_to": "2027-01-15T12:00:00Z",
        "charging_schedule": {
            "charging_rate_unit": "A",
            "duration": 3600,
            "charging_schedule_period": [
                {"start_period": 0, "limit": Decimal("16.0"), "number_phases": 3},
                {"start_period": 900, "limit": Decimal("6.5"), "number_phases": 1},
            ],
        },
    }
    parsed = parse_v16(raw, 1)
    assert parsed.id == 7 and parsed.transaction_id == "12" and parsed.purpose is Purpose.TX
    assert parsed.kind is ProfileKind.RELATIVE and parsed.unit is RateUnit.AMPERES and parsed.duration_s == 3600
    assert parsed.periods == (SchedulePeriod(0.0, 16.0, 3), SchedulePeriod(900.0, 6.5, 1))
    assert parsed.valid_to == parse_time("2027-01-15T12:00:00+00:00")
    assert parse_v16({**raw, "charging_profile_purpose": "ChargePointMaxProfile"}, 0).purpose is Purpose.STATION_MAX


def test_parse_v201_takes_the_first_schedule():
    raw = {
        "id": 3,
        "stack_level": 0,
        "charging_profile_purpose": "ChargingStationMaxProfile",
        "charging_profile_kind": "Absolute",
        "valid_from": "2027-01-15T11:00:00.000Z",
        "charging_schedule": [
            {
                "id": 1,
                "start_schedule": "2027-01-15T11:00:00Z",
                "charging_rate_unit": "W",
                "charging_schedule_period": [{"start_period": 0, "limit": 22000.0}],
            },
            {"id": 2, "charging_rate_unit": "A", "charging_schedule_period": [{"start_period": 0, "limit": 6.0}]},
        ],
    }
    parsed = parse_v201(raw, 0)
    assert parsed.id == 3 and parsed.purpose is Purpose.STATION_MAX and parsed.connector_id == 0
    assert parsed.unit is RateUnit.WATTS and parsed.limits == [22_000.0]
    assert parsed.start_schedule == parsed.valid_from == parse_time("2027-01-15T11:00:00Z")


def test_unknown_words_are_refused():
    base = {
        "id": 1,
        "stack_level": 0,
        "charging_profile_purpose": "TxDefaultProfile",
        "charging_profile_kind": "Absolute",
        "charging_schedule": [
            {"charging_rate_unit": "A", "charging_schedule_period": [{"start_period": 0, "limit": 6}]}
        ],
    }
    with pytest.raises(ProfileError, match="chargingProfilePurpose"):
        parse_v201({**base, "charging_profile_purpose": "Whatever"}, 1)
    with pytest.raises(ProfileError, match="chargingRateUnit"):
        parse_v201({**base, "charging_schedule": [{"charging_rate_unit": "kW", "charging_schedule_period": []}]}, 1)
    with pytest.raises(ProfileError, match="dateTime"):
        parse_v201({**base, "valid_to": "tomorrow"}, 1)


def test_the_phases_allowed_are_the_transactions_profiles_numberphases_else_the_defaults():
    store = ProfileStore(max_current_a=32, phases=3)
    assert store.phases_allowed(T0, 3) == 3 and store.phases_allowed(T0, 1) == 1
    store.install(profile(1, limits=((0, 16.0),), phases=1), T0)  # the default profile: one phase
    assert store.phases_allowed(T0, 3) == 1
    store.begin_transaction("tx", T0)
    store.install(profile(2, purpose=Purpose.TX, transaction_id="tx", limits=((0, 20.0),)), T0)  # no numberPhases: 3
    assert store.phases_allowed(T0, 3) == 3, "the transaction's profile overrules the default"
    store.install(profile(2, purpose=Purpose.TX, transaction_id="tx", limits=((0, 20.0),), phases=1), T0)
    assert store.phases_allowed(T0, 3) == 1
    assert ProfileStore(max_current_a=32, phases=1).phases_allowed(T0, 3) == 1, "a 1-phase charger"
