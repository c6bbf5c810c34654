"""The simulated car (load_tester/fleet/car.py): IEC 61851's 6 A minimum, the delay before it follows a lower
offer, energy on the grid's clock, and the fleet's mix of cars."""

from __future__ import annotations

import random

import pytest

from load_tester.fleet.car import CAR_MIX, Car, random_car

pytestmark = pytest.mark.unit

T0 = 1_000.0


def plugged(**settings) -> Car:
    car = Car(**{"phases": 3, "max_current_a": 16.0, "energy_need_wh": 10_000.0, "follow_delay_s": 1.0, **settings})
    car.plugged_in(T0)
    return car


def test_the_mix_is_7_4_11_and_22_kw():
    assert [round(model.max_power_kw, 1) for model in CAR_MIX] == [7.4, 11.0, 22.1]
    assert Car(phases=1, max_current_a=32).max_power_w == pytest.approx(7_360)
    assert Car(phases=3, max_current_a=16).max_power_w == pytest.approx(11_040)


def test_it_draws_its_maximum_or_the_limit_whichever_is_lower():
    car = plugged()
    assert car.draw_w(22_000, T0) == pytest.approx(11_040)
    car = plugged()
    assert car.draw_w(8_000, T0) == 8_000
    assert car.current_per_phase_a == pytest.approx(8_000 / 690)


def test_below_6_a_per_phase_it_draws_nothing():
    car = plugged()
    assert car.draw_w(3 * 6 * 230, T0) == pytest.approx(4_140)  # 6 A: allowed
    car = plugged()
    assert car.draw_w(3 * 6 * 230 - 1, T0) == 0  # just under: it pauses
    one_phase = plugged(phases=1, max_current_a=32.0)
    assert one_phase.draw_w(1_380, T0) == pytest.approx(1_380)  # 1 x 6 A


def test_it_follows_a_higher_offer_at_once_and_a_lower_one_after_its_delay():
    car = plugged(follow_delay_s=1.0)
    assert car.draw_w(4_500, T0) == 4_500
    assert car.draw_w(9_000, T0 + 0.1) == 9_000  # up: at once
    assert car.draw_w(5_000, T0 + 1.0) == 9_000  # down: not yet
    assert car.follow_deadline() == pytest.approx(T0 + 2.0)
    assert car.draw_w(4_200, T0 + 1.5) == 9_000  # lower again: still the first delay
    assert car.draw_w(4_200, T0 + 2.0) == 4_200  # the delay of the first lower offer is over: the latest
    assert car.follow_deadline() is None


def test_a_pause_also_waits_for_the_delay_and_a_raise_cancels_it():
    car = plugged(follow_delay_s=2.0)
    car.draw_w(11_040, T0)
    assert car.draw_w(0, T0 + 1) == pytest.approx(11_040)
    assert car.draw_w(11_040, T0 + 1.5) == pytest.approx(11_040)  # offered back before the delay ended
    assert car.follow_deadline() is None
    assert car.draw_w(0, T0 + 2) == pytest.approx(11_040)  # a new lower offer: a new delay
    assert car.draw_w(0, T0 + 4) == 0


def test_energy_counts_at_the_draw_in_force_on_the_grids_clock():
    car = plugged(energy_need_wh=50_000.0)
    car.draw_w(11_040, T0)
    assert car.advance(T0 + 10, time_scale=1) == pytest.approx(11_040 * 10 / 3600)
    assert car.advance(T0 + 20, time_scale=360) == pytest.approx(11_040 * 10 * 360 / 3600)
    assert car.delivered_wh == pytest.approx(30.667 + 11_040, rel=1e-3)
    assert car.advance(T0 + 20, time_scale=360) == 0  # no time, no energy


def test_it_stops_when_its_need_is_met_without_overshooting():
    car = plugged(energy_need_wh=100.0)
    car.draw_w(11_040, T0)
    car.advance(T0 + 3_600, time_scale=1)
    assert car.delivered_wh == 100 and car.need_met and car.remaining_wh == 0
    assert car.power_w == 0
    assert car.draw_w(22_000, T0 + 3_601) == 0


def test_a_misbehaving_car_ignores_the_limit():
    car = plugged(misbehaving=True)
    assert car.draw_w(0, T0) == pytest.approx(11_040)
    assert car.draw_w(4_140, T0 + 10) == pytest.approx(11_040)


def test_random_cars_come_from_the_mix_with_needs_in_range_and_repeat_with_the_seed():
    cars = [random_car(random.Random(f"1:cp-{n}")) for n in range(200)]
    assert {(car.phases, car.max_current_a) for car in cars} == {(m.phases, m.max_current_a) for m in CAR_MIX}
    assert all(5_000 <= car.energy_need_wh <= 40_000 for car in cars)
    again = [random_car(random.Random(f"1:cp-{n}")) for n in range(200)]
    assert [car.energy_need_wh for car in cars] == [car.energy_need_wh for car in again]


def test_a_car_below_the_minimum_is_a_mistake():
    with pytest.raises(ValueError, match="below the minimum"):
        Car(max_current_a=5)
    with pytest.raises(ValueError, match="phases"):
        Car(phases=4)


def test_offered_fewer_phases_it_draws_on_those_its_minimum_and_maximum_with_them():
    car = plugged(max_current_a=32.0)
    assert car.draw_w(31.8 * 230, T0, phases=1) == pytest.approx(31.8 * 230)
    assert (car.phases_in_use, car.current_per_phase_a) == (1, pytest.approx(31.8))
    assert plugged().draw_w(5 * 230, T0, phases=1) == 0, "under 6 A on its one phase: paused"
    one_phase = plugged(phases=1, max_current_a=32.0)
    assert one_phase.draw_w(22_080, T0, phases=3) == pytest.approx(7_360) and one_phase.phases_in_use == 1


def test_told_to_go_to_one_phase_it_keeps_its_three_until_it_follows_the_lower_offer():
    car = plugged(max_current_a=32.0)
    car.draw_w(22_080, T0)
    assert car.draw_w(31.8 * 230, T0 + 0.5, phases=1) == pytest.approx(22_080), "within its follow delay"
    assert (car.phases_in_use, car.current_per_phase_a) == (3, pytest.approx(32.0)), "not 96 A on L1"
    assert car.draw_w(31.8 * 230, T0 + 1.5, phases=1) == pytest.approx(31.8 * 230)
    assert (car.phases_in_use, car.current_per_phase_a) == (1, pytest.approx(31.8))
