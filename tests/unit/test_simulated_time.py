import pytest

from grid_common.simulated_time import RESIDENTIAL_PROFILE, DailyProfile, SimulatedClock
from substation_service.background import BackgroundDemand


def test_profile_interpolates_between_hourly_points():
    profile = DailyProfile()
    assert profile.at(19) == pytest.approx(1.0)
    assert profile.at(3.5) == pytest.approx((RESIDENTIAL_PROFILE[3] + RESIDENTIAL_PROFILE[4]) / 2)
    assert profile.at(23.5) == pytest.approx((RESIDENTIAL_PROFILE[23] + RESIDENTIAL_PROFILE[0]) / 2)
    assert profile.at(24 + 19) == pytest.approx(1.0), "the profile repeats every day"


def test_peak_between_finds_the_knot_inside_a_window():
    profile = DailyProfile()
    assert profile.peak_between(17.5, 20.5) == pytest.approx(1.0)
    assert profile.peak_between(2.0, 3.0) == pytest.approx(max(RESIDENTIAL_PROFILE[2], RESIDENTIAL_PROFILE[3]))
    # Across midnight the window wraps: 23:00 -> 01:00 peaks at 23:00.
    assert profile.peak_between(23, 25) == pytest.approx(RESIDENTIAL_PROFILE[23])
    assert profile.peak_between(0, 30) == pytest.approx(1.0), "a window of a day or more sees the daily peak"


def test_profile_rejects_malformed_shapes():
    with pytest.raises(ValueError):
        DailyProfile((0.5,) * 23)
    with pytest.raises(ValueError):
        DailyProfile((1.5,) * 24)


def test_simulated_clock_runs_time_scale_times_faster():
    clock = SimulatedClock(time_scale=360)
    # 10 wall seconds at 360x is one simulated hour.
    assert clock.hour_of_day(10) - clock.hour_of_day(0) == pytest.approx(1.0)
    assert clock.wall_seconds_for(1.0) == pytest.approx(10.0)
    assert SimulatedClock(360, phase_hours=5).hour_of_day(0) == pytest.approx(5.0)


def test_background_demand_scales_profile_and_can_be_off():
    clock = SimulatedClock(time_scale=3600)  # one simulated hour per wall second
    demand = BackgroundDemand(peak_kw=50, profile=DailyProfile(), clock=clock)
    assert demand.at(19) == pytest.approx(50.0)
    assert demand.peak_between(17, 20) == pytest.approx(50.0)
    assert demand.peak_between(2, 3) == pytest.approx(50 * 0.37)
    off = BackgroundDemand(peak_kw=0, profile=DailyProfile(), clock=clock)
    assert off.at(19) == 0 and off.peak_between(0, 100) == 0


def test_the_background_peak_is_the_same_asked_once_or_again_in_any_order():
    background = BackgroundDemand(100.0, DailyProfile(), SimulatedClock(3600.0))
    windows = [(0.0, 1.0), (0.0, 1.0), (5.5, 7.0), (0.0, 1.0), (5.5, 7.0), (5.5, 9.0), (0.0, 1.0)]
    asked = [background.peak_between(start, end) for start, end in windows]
    fresh = [BackgroundDemand(100.0, DailyProfile(), SimulatedClock(3600.0)).peak_between(*w) for w in windows]
    assert asked == fresh
    assert background == BackgroundDemand(100.0, DailyProfile(), SimulatedClock(3600.0)), (
        "what it remembers is no part of it"
    )


@pytest.mark.parametrize("time_scale", [1, 60, 1800, 3600, 7 / 3])
def test_the_hours_between_two_moments_are_their_scaled_difference_at_todays_wall_time(time_scale):
    # The substation checks an interval's background from its start, and allocated the step it lies in from an
    # earlier start: at epoch seconds near 1.8e9 both must see the same hour to far below the 1e-6 kW tolerance.
    clock = SimulatedClock(time_scale, phase_hours=3.25)
    start = 1_796_000_000.123
    for step in (0.0001, 0.0731, 0.2, 1.7, 33.3):
        later = start + step
        between = (clock.hour_of_day(later) - clock.hour_of_day(start)) % 24
        assert between == pytest.approx((later - start) * time_scale / 3600 % 24, abs=1e-11)


def test_phase_for_makes_the_clock_show_that_hour_at_todays_wall_time():
    clock = SimulatedClock(1800)
    wall = 1_796_000_123.456
    assert SimulatedClock(1800, clock.phase_for(15.5, wall)).hour_of_day(wall) == pytest.approx(15.5, abs=1e-9)
