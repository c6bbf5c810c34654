"""When queued sessions could start (substation_service/forecast.py): at an end, as the background's known
profile leaves room, or not within the horizon; and a substation's estimate under a rising background is when
the session really starts, not when the room of now would have let it."""

from __future__ import annotations

import pytest

from substation_service.forecast import QueueForecast
from tests.helpers import charge
from tests.substations import HOUR, make_substation

pytestmark = pytest.mark.unit

TIME_SCALE = 9.0  # a probe (a quarter of a simulated hour) every 100 wall seconds


def test_a_need_starts_at_once_at_an_end_or_when_the_room_grows():
    room = lambda moment: 10.0 if moment < 250 else 20.0  # noqa: E731
    assert QueueForecast(0.0, room, [], 5.0, TIME_SCALE).start(4.0, 50.0) == 0.0, "fits now"
    assert QueueForecast(0.0, room, [(30.0, 6.0)], 5.0, TIME_SCALE).start(8.0, 50.0) == 30.0, "at the end"
    assert QueueForecast(0.0, room, [], 5.0, TIME_SCALE).start(8.0, 50.0) == 300.0, "the first look after 250 s"


def test_each_start_counts_for_the_next_until_it_ends_and_nothing_is_foreseen_past_the_horizon():
    forecast = QueueForecast(0.0, lambda moment: 10.0, [], 0.0, TIME_SCALE)
    assert forecast.start(6.0, 150.0) == 0.0
    assert forecast.start(6.0, 150.0) == 150.0, "after the first ends"
    assert forecast.available_kw() == pytest.approx(4.0)
    assert QueueForecast(0.0, lambda moment: 10.0, [], 0.0, TIME_SCALE).start(11.0, 1.0) is None


def test_under_a_rising_background_the_estimate_is_when_it_starts_not_when_the_room_of_now_would_let_it():
    # 61 kW, a background rising to 40 kW at 19:00: 34.4 kW to admit at 15:30, 27.5 at 17:00, 33 at 22:00.
    moment = 15.5 * HOUR
    substation = make_substation(capacity_kw=61.0, background_peak_kw=40, now=moment)
    substation.admit(charge("ends-at-17", 7.5, 5, min_power_kw=5), moment)
    for vehicle in ("long-1", "long-2"):
        substation.admit(charge(vehicle, 250, 11, min_power_kw=11), moment)
    queued = substation.admit(charge("waits", 100, 8, min_power_kw=8, wait=True), moment).session
    assert queued.state == "queued"
    # The room of 15:30 would have let it start when the first car ends at 17:00; by then the background has
    # risen, and the room comes back only past 21:00.
    estimate = queued.estimated_start
    assert estimate is not None and estimate > 21 * HOUR
    while substation.session(queued.session_id, moment).state == "queued":
        moment += 0.05
    assert moment == pytest.approx(estimate, abs=0.25 * HOUR), "within a probe of when it started"
