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


def test_a_car_behind_a_waiting_head_starts_at_once_when_that_cannot_delay_the_heads_start():
    # 33 kW. The head needs 22 kW and waits for a 20 kW car that ends at 5 s; then, beside a 5 kW car that goes
    # on, 6 kW are left.
    substation = make_substation(capacity_kw=33.0, now=0.0)
    fixed = lambda vehicle, kwh, kw, **more: charge(vehicle, kwh, kw, min_power_kw=kw, **more)  # noqa: E731
    ends_at_5 = substation.admit(fixed("ends-at-5", 10, 20), 0.0).session
    substation.admit(fixed("goes-on", 100, 5), 0.0)
    head = substation.admit(fixed("head", 50, 22, wait=True), 0.0).session
    assert head.state == "queued"
    would_delay = substation.admit(fixed("long-8", 100, 8, wait=True), 0.0).session
    beside = substation.admit(fixed("long-5", 100, 5, wait=True), 0.0).session
    before = substation.admit(fixed("short-3", 1.5, 3, wait=True), 0.0).session
    state = lambda session, moment: substation.session(session.session_id, moment).state  # noqa: E731
    assert state(would_delay, 0.1) == "queued", "8 kW for hours: at 5 s only 6 kW are left beside the head"
    assert state(beside, 0.1) == "charging", "5 kW for hours: it fits beside the head then"
    assert state(before, 0.1) == "charging", "it ends by 5 s, before the head starts"
    assert substation.report(0.1).ev_power_kw == pytest.approx(33.0), "none of the headroom idle"
    assert state(ends_at_5, 5.0) == "completed"
    assert state(head, 6.0) == "charging", "the head started when it would have anyway"
    assert state(would_delay, 6.0) == "queued"


def test_a_queued_car_behind_the_head_starts_at_the_step_that_frees_room_for_it_and_not_for_the_head():
    substation = make_substation(capacity_kw=33.0, now=0.0)
    fixed = lambda vehicle, kwh, kw, **more: charge(vehicle, kwh, kw, min_power_kw=kw, **more)  # noqa: E731
    substation.admit(fixed("ends-at-5", 10, 20), 0.0)
    stopped = substation.admit(fixed("stops-at-1", 100, 13), 0.0).session
    head = substation.admit(fixed("head", 50, 22, wait=True), 0.0).session
    small = substation.admit(fixed("small", 100, 3, wait=True), 0.0).session
    assert (head.state, small.state) == ("queued", "queued"), "the substation is full"
    substation.stop(stopped.session_id, 1.0)
    assert substation.session(head.session_id, 1.0).state == "queued", "13 kW free: not the head's 22"
    assert substation.session(small.session_id, 1.0).state == "charging", "beside the head once it starts at 5 s"
    assert substation.session(head.session_id, 6.0).state == "charging"
