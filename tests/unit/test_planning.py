"""Departure planning (substation_service/planning.py): the room is never overdrawn beyond the minimums, every
car stays within its bounds, promises are what the plan delivers, and the car leaving first is served before
the evening takes the room."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from substation_service.planning import DONE_KWH, Need, plan

pytestmark = pytest.mark.unit

TIME_SCALE = 360.0  # a slot (a quarter of a simulated hour) is 2.5 wall seconds
SLOT_S = 2.5
HOUR_S = 10.0


def flat(kw: float):
    return lambda start, end: kw


def test_a_car_alone_with_room_gets_what_it_needs_spread_over_the_slot_and_is_promised():
    result = plan(0.0, [Need("a", 11.0, 1.4, 22.0, 2 * HOUR_S)], flat(50.0), TIME_SCALE)
    assert result.promised == {"a": True} and result.expected_kwh["a"] == pytest.approx(11.0)
    assert result.now_kw("a") == 22.0, "as soon as possible, at its maximum"
    assert sum(result.power_kw["a"]) * SLOT_S * TIME_SCALE / 3600 >= 11.0 - DONE_KWH


def test_the_car_leaving_first_is_served_first_and_the_later_one_takes_the_later_room():
    # 22 kW of room: both need 11 kWh; the early one leaves in an hour, the late one in three.
    needs = [Need("late", 11.0, 1.4, 22.0, 3 * HOUR_S), Need("early", 11.0, 1.4, 22.0, 1 * HOUR_S)]
    result = plan(0.0, needs, flat(22.0), TIME_SCALE)
    assert result.now_kw("early") == pytest.approx(22.0 - 1.4), "all the room above the other's minimum"
    assert result.now_kw("late") == pytest.approx(1.4)
    assert result.promised == {"early": True, "late": True}


def test_a_car_that_cannot_get_its_energy_by_its_departure_is_not_promised_and_is_told_how_much():
    result = plan(0.0, [Need("a", 50.0, 1.4, 11.0, 2 * HOUR_S)], flat(100.0), TIME_SCALE)
    assert result.promised == {"a": False}
    assert result.expected_kwh["a"] == pytest.approx(22.0), "11 kW for two hours"


def test_before_an_evening_peak_the_plan_charges_while_there_is_room():
    # Room 30 kW for the first hour, then 5 kW: a car leaving in three hours needing 20 kWh gets it early.
    room = lambda start, end: 30.0 if end <= HOUR_S else 5.0  # noqa: E731
    result = plan(0.0, [Need("a", 20.0, 1.4, 22.0, 3 * HOUR_S)], room, TIME_SCALE)
    assert result.now_kw("a") == 22.0 and result.promised == {"a": True}


@st.composite
def cases(draw):
    count = draw(st.integers(1, 8))
    needs = []
    for index in range(count):
        low = draw(st.floats(0.5, 7.0))
        high = draw(st.floats(low, 22.0))
        needs.append(Need(f"s{index}", draw(st.floats(0.0, 60.0)), low, high, draw(st.floats(-5.0, 80.0))))
    rooms = draw(st.lists(st.floats(0.0, 80.0), min_size=1, max_size=40))
    return needs, rooms


@settings(max_examples=300, deadline=None)
@given(cases())
def test_the_room_is_kept_above_the_minimums_each_car_keeps_its_bounds_and_a_promise_is_delivered(case):
    needs, rooms = case
    room = lambda start, end: rooms[min(len(rooms) - 1, int(start // SLOT_S))]  # noqa: E731
    result = plan(0.0, needs, room, TIME_SCALE)
    slots = len(next(iter(result.power_kw.values())))
    for slot in range(slots):
        drawing = [need for need in needs if result.power_kw[need.key][slot] > 0]
        total = sum(result.power_kw[need.key][slot] for need in drawing)
        minimums = sum(need.min_kw for need in drawing)
        assert total <= max(room(slot * SLOT_S, 0), minimums) + 1e-9, "above the minimums, never past the room"
        for need in drawing:
            assert need.min_kw - 1e-12 <= result.power_kw[need.key][slot] <= max(need.min_kw, need.max_kw) + 1e-12
    for need in needs:
        delivered = result.expected_kwh[need.key]
        assert delivered <= max(0.0, need.remaining_kwh) + 1e-9
        assert result.promised[need.key] == (delivered >= max(0.0, need.remaining_kwh) - DONE_KWH)


def run_until(substation, session_id, moment, end):
    while moment < end:
        moment += 0.25
        substation.report(moment)
    return substation.session(session_id, end)


@pytest.mark.parametrize("allocation", ["fair", "planned"])
def test_a_driver_leaving_in_an_hour_gets_the_energy_when_the_substation_plans_and_not_from_a_fair_share(allocation):
    from datetime import UTC, datetime

    from tests.helpers import charge
    from tests.substations import HOUR, make_substation

    substation = make_substation(capacity_kw=33.0, allocation=allocation, now=0.0)
    for n in range(3):
        substation.admit(charge(f"stays-{n}", 100, 22), 0.0)
    leaves = datetime.fromtimestamp(HOUR, UTC)  # in a simulated hour
    admitted = substation.admit(charge("leaves", 15, 22, departure_time=leaves), 0.0).session
    after = run_until(substation, admitted.session_id, 0.0, HOUR)
    if allocation == "planned":
        assert admitted.promised is True and admitted.energy_expected_kwh == pytest.approx(15.0)
        assert admitted.allocated_kw == pytest.approx(22.0), "as soon as it can: its maximum, the rest shared"
        periods = admitted.to_json()["charging_plan"]["chargingSchedulePeriod"]
        assert periods[0] == {"startPeriod": 0, "limit": 22000.0} and periods[-1]["limit"] == 0.0, "then done"
        assert after.energy_delivered_kwh == pytest.approx(15.0), "it left with its energy"
    else:
        assert admitted.promised is None, "fair sharing plans nothing"
        assert after.energy_delivered_kwh == pytest.approx(33 / 4), "a fair quarter of 33 kW for the hour"


def test_a_car_that_cannot_make_its_departure_does_not_take_the_room_of_one_that_can():
    # 12 kW of room. "hopeless" leaves first but needs 30 kWh in an hour at 11 kW at most; "can" needs 10 kWh
    # in two hours. Earliest deadline first alone gives the room to "hopeless", which misses anyway.
    from substation_service.planning import plan_most

    needs = [Need("hopeless", 30.0, 1.0, 11.0, 1 * HOUR_S), Need("can", 10.0, 1.0, 11.0, 2 * HOUR_S)]
    alone = plan(0.0, needs, flat(7.0), TIME_SCALE)
    assert alone.promised == {"hopeless": False, "can": False}, "the domino effect"
    most = plan_most(0.0, needs, flat(7.0), TIME_SCALE)
    assert most.promised == {"hopeless": False, "can": True}
    assert most.now_kw("hopeless") == 1.0, "its minimum (and its fair share over the step)"
    assert most.expected_kwh["hopeless"] == pytest.approx(1.0), "what its minimum brings in the hour"


def test_the_departures_bench_plays_the_same_cars_under_both_and_keeps_its_figures():
    from bench.departures import cars, play, tables, totals

    day = cars(seed=1, oversubscription=3.0)
    fair, planned = play("fair", day), play("planned", day)
    assert fair["cars"] == planned["cars"] == len(day) > 50
    assert fair["overload_seconds"] == planned["overload_seconds"] == 0
    assert planned["promised_car"]["promised"] is True
    figures = {"fair": totals([fair]), "planned": totals([planned]), "promised_car": planned["promised_car"]}
    assert [row[0] for row in tables(figures)[0][1]] == ["fair", "planned"]


def test_a_substation_plans_once_a_slot_unless_a_car_it_did_not_plan_charges():
    from datetime import UTC, datetime

    from tests.helpers import charge
    from tests.substations import HOUR, make_substation

    substation = make_substation(capacity_kw=33.0, allocation="planned", now=0.0)
    leaves = datetime.fromtimestamp(3 * HOUR, UTC)
    substation.admit(charge("a", 30, 22, departure_time=leaves), 0.0)
    first = substation.policy.plan
    substation.advance(1.0)  # steps within the first slot (2.5 s at 360x)
    assert substation.policy.plan is first, "the same plan"
    substation.admit(charge("b", 30, 22, departure_time=leaves), 1.5)
    assert substation.policy.plan is not first and set(substation.policy.plan.power_kw) == {
        substation.book.started[0].session_id,
        substation.book.started[1].session_id,
    }, "a new car: planned anew"
    second = substation.policy.plan
    substation.advance(3.5)
    assert substation.policy.plan is second, "its slot runs 2.5 s from 1.5 s"
    substation.advance(4.5)
    assert substation.policy.plan is not second and substation.policy.plan.start >= 4.0, "a new slot: anew"


def test_a_car_alone_drawing_its_maximum_is_still_told_whether_its_energy_comes_by_its_departure():
    # Nothing to share (every car draws its maximum): the plan is still made, for the driver's answer.
    from datetime import UTC, datetime

    from tests.helpers import charge
    from tests.substations import HOUR, make_substation

    substation = make_substation(capacity_kw=100.0, allocation="planned", now=0.0)
    soon = substation.admit(charge("soon", 15, 22, departure_time=datetime.fromtimestamp(HOUR, UTC)), 0.0).session
    assert soon.allocated_kw == 22.0 and soon.promised is True and soon.energy_expected_kwh == pytest.approx(15.0)
    hurried = charge("hurried", 30, 22, departure_time=datetime.fromtimestamp(HOUR, UTC))
    late = substation.admit(hurried, 0.0).session
    assert late.promised is False and late.energy_expected_kwh == pytest.approx(22.0), "22 kW for an hour at most"
