"""ALLOCATION=fair in the substation's domain: admission on minimums, sharing, pausing, the queue, energy."""

from __future__ import annotations

import pytest

from grid_common.protocol import SessionState
from grid_common.simulated_time import DailyProfile, SimulatedClock
from substation_service.background import BackgroundDemand
from substation_service.sessions import Admitted, Outdated, Queued, Refused
from substation_service.substation import Substation
from tests.helpers import charge
from tests.substations import HOUR, make_substation

QUEUED, CHARGING, PAUSED, COMPLETED, STOPPED = (
    SessionState.QUEUED,
    SessionState.CHARGING,
    SessionState.PAUSED,
    SessionState.COMPLETED,
    SessionState.STOPPED,
)


def test_sessions_share_the_headroom_max_min_fairly():
    substation = make_substation(capacity_kw=33)
    sessions = [substation.admit(charge(f"EV-{n}", 50, 22), now=0).session for n in range(3)]
    assert [substation.session(s.session_id, 0).allocated_kw for s in sessions] == [pytest.approx(11)] * 3
    small = substation.admit(charge("EV-small", 50, 3.7), now=0).session
    assert substation.session(small.session_id, 0).allocated_kw == 3.7, "capped by its own maximum"
    assert substation.session(sessions[0].session_id, 0).allocated_kw == pytest.approx((33 - 3.7) / 3)
    assert substation.report(0).ev_power_kw == pytest.approx(33)


def test_admission_counts_minimums_and_a_full_substation_refuses_or_queues():
    substation = make_substation(capacity_kw=33)
    outcomes = [substation.admit(charge(f"EV-{n}", 11, 11), now=0) for n in range(24)]
    assert [type(o) for o in outcomes] == [Admitted] * 23 + [Refused], "23 minimums of 1.4 kW fit in 33 kW"
    assert outcomes[-1].reason == "capacity"
    queued = substation.admit(charge("EV-waits", 11, 11, wait=True), now=0)
    assert isinstance(queued, Queued) and queued.session.state == QUEUED and queued.session.position == 1
    assert queued.session.estimated_start is not None and queued.session.estimated_start > 0
    assert substation.report(0).queued_sessions == 1


def test_a_car_whose_minimum_no_charger_here_gives_is_refused():
    refused = make_substation(capacity_kw=100).admit(charge("EV", 11, 50, min_power_kw=30), now=0)
    assert isinstance(refused, Refused) and refused.reason == "charger"


def test_energy_is_the_integral_of_the_allocated_power_and_the_end_is_exact():
    substation = make_substation(capacity_kw=22)
    first = substation.admit(charge("EV-1", 22, 22), now=0).session  # alone: 22 kW
    assert substation.session(first.session_id, 2).energy_delivered_kwh == pytest.approx(22 * 2 / HOUR)
    second = substation.admit(charge("EV-2", 22, 22), now=5).session  # from now on 11 kW each
    at_5 = 22 * 5 / HOUR
    assert substation.session(first.session_id, 7).energy_delivered_kwh == pytest.approx(at_5 + 11 * 2 / HOUR)
    # The first has 22 - 11 = 11 kWh left at 11 kW: one more simulated hour.
    end = 5 + (22 - at_5) / 11 * HOUR
    assert substation.session(first.session_id, 7).estimated_end == pytest.approx(end)
    done = substation.session(first.session_id, end + 0.001)
    assert done.state == COMPLETED and done.ended_at == pytest.approx(end) and done.energy_delivered_kwh == 22
    # Its power went to the second at that very moment, not at the next step.
    expected = 11 * (end - 5) / HOUR + 22 * 0.5 / HOUR
    assert substation.session(second.session_id, end + 0.5).energy_delivered_kwh == pytest.approx(expected)


def test_nothing_changes_when_nothing_changes():
    substation = make_substation(capacity_kw=33)
    session = substation.admit(charge("EV-1", 200, 22), now=0).session
    before = substation.session(session.session_id, 0).charging_schedule()
    for moment in range(1, 20):
        substation.report(moment)
    assert substation.session(session.session_id, 20).charging_schedule() == before
    assert len(before["chargingSchedulePeriod"]) == 1


def test_the_schedule_records_each_change_of_limit_like_ocpp():
    substation = make_substation(capacity_kw=22)
    first = substation.admit(charge("EV-1", 100, 22), now=0).session
    substation.admit(charge("EV-2", 100, 22), now=3)
    schedule = substation.session(first.session_id, 4).charging_schedule()
    assert schedule["chargingRateUnit"] == "W" and schedule["minChargingRate"] == 1400
    assert schedule["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 22000},
        {"startPeriod": 3, "limit": 11000},
    ]


def rising_background(capacity_kw=61.0):
    """Background of 40 kW at its 19:00 peak: 61 kW less it leaves 43 kW at midnight, 33.8 at 16:00, 29 at
    17:00, 21.2 at 18:54, 27 at 21:00 and 36 at 22:30."""
    return make_substation(capacity_kw=capacity_kw, background_peak_kw=40)


def test_when_minimums_no_longer_fit_the_lowest_priority_newest_are_paused_and_resumed_in_order():
    substation = rising_background()
    old_low = substation.admit(charge("old-low", 250, 11, min_power_kw=11), now=0).session
    high = substation.admit(charge("high", 250, 11, min_power_kw=11, priority=2), now=0.1).session
    new_low = substation.admit(charge("new-low", 250, 11, min_power_kw=11), now=0.2).session
    states = lambda t: [substation.session(s.session_id, t).state for s in (high, old_low, new_low)]  # noqa: E731
    assert states(1) == [CHARGING] * 3
    assert states(16 * HOUR) == [CHARGING] * 3
    assert states(17 * HOUR) == [CHARGING, CHARGING, PAUSED], "at 17:00 two minimums fit: the newest low waits"
    assert substation.session(new_low.session_id, 17 * HOUR).allocated_kw == 0
    assert states(18.9 * HOUR) == [CHARGING, PAUSED, PAUSED], "then the older low one too, never the high one"
    assert states(21 * HOUR) == [CHARGING, CHARGING, PAUSED], "resumed in order: the older first"
    assert states(22.5 * HOUR) == [CHARGING] * 3
    assert substation.counters.paused == 3, "the newest low at the morning bump and again at 16:00, the older at 18:54"
    assert substation.counters.overload_seconds == 0


def test_through_the_evening_peak_with_more_sessions_than_fit_nothing_is_ever_over_capacity():
    substation = make_substation(capacity_kw=150, background_peak_kw=45, queue_limit=500)
    moment = 15 * HOUR
    while moment < 23 * HOUR:
        substation.admit(charge("EV", 22, 11, min_power_kw=3, wait=True), now=moment)
        report = substation.report(moment)
        assert report.ev_power_kw + report.background_kw <= report.capacity_kw + 1e-6
        moment += 0.37
    assert substation.counters.overload_seconds == 0
    assert substation.counters.paused > 0 and substation.counters.queued > 0, "the peak made some wait"
    assert substation.counters.waits.count > 0, "and queued ones started"


def test_the_queue_is_first_come_first_served_within_a_priority_and_higher_priorities_go_first():
    substation = make_substation(capacity_kw=11)
    blocker = substation.admit(charge("blocker", 11, 11, min_power_kw=11), now=0).session
    waiting = {
        name: substation.admit(charge(name, 11, 11, min_power_kw=11, wait=True, priority=p), now=t).session
        for name, p, t in (("a", 0, 1), ("b", 1, 2), ("c", 0, 3), ("d", 1, 4))
    }
    assert [substation.session(waiting[n].session_id, 4).position for n in "bdac"] == [1, 2, 3, 4]
    later_low = substation.admit(charge("e", 11, 11, min_power_kw=1, wait=True), now=5)
    assert isinstance(later_low, Queued), "its minimum would fit, but it never overtakes an earlier one"
    substation.stop(blocker.session_id, now=6)
    assert substation.session(waiting["b"].session_id, 6).state == CHARGING, "the head starts at once"
    assert substation.session(waiting["d"].session_id, 6).state == QUEUED


def test_the_head_of_the_queue_starts_within_one_step_once_it_fits():
    substation = make_substation(capacity_kw=11, step_s=0.5)
    running = substation.admit(charge("running", 11, 11, min_power_kw=11), now=0).session  # ends at 10 s
    queued = substation.admit(charge("queued", 11, 11, min_power_kw=11, wait=True), now=1).session
    assert substation.session(running.session_id, 10.01).state == COMPLETED
    started = substation.session(queued.session_id, 10.01)
    assert started.state == CHARGING and started.started_at == pytest.approx(10, abs=0.5)
    assert substation.counters.waits.count == 1


def test_a_full_queue_refuses_and_stopping_a_queued_session_cancels_it():
    substation = make_substation(capacity_kw=11, queue_limit=1)
    substation.admit(charge("running", 11, 11, min_power_kw=11), now=0)
    queued = substation.admit(charge("queued", 11, 11, min_power_kw=11, wait=True), now=0).session
    refused = substation.admit(charge("refused", 11, 11, min_power_kw=11, wait=True), now=0)
    assert isinstance(refused, Refused) and refused.reason == "queue"
    cancelled = substation.stop(queued.session_id, now=1)
    assert cancelled.state == STOPPED and cancelled.energy_delivered_kwh == 0 and cancelled.started_at is None
    assert substation.report(1).queued_sessions == 0


def test_fixed_refuses_what_fair_shares():
    fixed, fair = make_substation(capacity_kw=33, allocation="fixed"), make_substation(capacity_kw=33)
    outcomes = {
        name: [s.admit(charge(f"EV-{n}", 11, 11), now=0) for n in range(6)]
        for name, s in (("fixed", fixed), ("fair", fair))
    }
    assert sum(isinstance(o, Admitted) for o in outcomes["fixed"]) == 3
    assert sum(isinstance(o, Admitted) for o in outcomes["fair"]) == 6
    assert fair.report(0).ev_power_kw == pytest.approx(33) and fixed.report(0).ev_power_kw == pytest.approx(33)


def test_a_newcomer_learns_what_it_could_draw_and_with_how_many():
    substation = make_substation(capacity_kw=33)
    for n in range(3):
        substation.admit(charge(f"EV-{n}", 50, 22), now=0)
    report = substation.report(0)
    assert report.sharing_sessions == (3, 3, 3, 3)
    assert report.shareable_kw[0] == pytest.approx(33 - 3 * 1.4), "what they draw above their minimums"
    assert report.committed_kw == pytest.approx(4.2) and report.demand_kw == 66
    assert report.estimated_start_s == (0, 0, 0, 0)


def test_a_condition_on_other_balancers_sessions():
    substation = make_substation(capacity_kw=100)
    substation.admit(charge("EV-1"), now=0, placed_by="other")
    substation.admit(charge("EV-2"), now=0, placed_by="me")
    assert substation.report(0, balancer="me").others_sessions == 1
    outdated = substation.admit(charge("EV-3"), now=0, placed_by="me", others_sessions_at_most=0)
    assert isinstance(outdated, Outdated) and outdated.condition == "others_sessions"
    assert isinstance(substation.admit(charge("EV-3"), now=0, placed_by="me", others_sessions_at_most=1), Admitted)


def test_a_balancer_learns_how_many_of_its_sessions_started_at_admission():
    substation = make_substation(capacity_kw=3)  # room for two minimums
    substation.admit(charge("EV-1"), now=0, session_id="s.0123456789abcdef", placed_by="me")
    substation.admit(charge("EV-2"), now=0, placed_by="other")
    replay = substation.admit(charge("EV-1"), now=0, session_id="s.0123456789abcdef", placed_by="me")
    queued = substation.admit(charge("EV-3", wait=True), now=0, placed_by="me")
    assert replay.replayed and isinstance(queued, Queued)
    assert substation.report(0, balancer="me").started_for_you == 1, "a replay or a queued session is not one"
    assert substation.report(0, balancer="other").started_for_you == 1
    assert substation.report(0, balancer="new").started_for_you == 0
    assert substation.report(0).started_for_you is None


def test_sessions_by_state_fairness_and_energy_for_the_metrics():
    substation = rising_background()
    for n in range(3):
        substation.admit(charge(f"EV-{n}", 250, 11, min_power_kw=11), now=0)
    assert substation.snapshot(1).sessions_by_state == {
        QUEUED: 0,
        CHARGING: 3,
        PAUSED: 0,
    }
    assert substation.snapshot(1).fairness[0] == pytest.approx(1)
    assert substation.snapshot(17 * HOUR).sessions_by_state == {
        QUEUED: 0,
        CHARGING: 2,
        PAUSED: 1,
    }
    assert substation.snapshot(17 * HOUR).fairness[0] == pytest.approx(2 / 3), "one of three paused: Jain's index 2/3"
    assert 22 * 17 < substation.snapshot(17 * HOUR).energy_delivered_kwh < 33 * 17, (
        "two to three cars at 11 kW for 17 hours"
    )


def test_a_request_that_read_the_clock_earlier_but_came_second_does_not_run_time_back():
    """Handlers read the clock before they take the lock: the later reading wins, energy is counted once."""
    substation = make_substation(capacity_kw=30)
    for name, moment in (("A", 0.0), ("B", 2.0), ("C", 1.9)):
        substation.admit(charge(name, 200, 22), now=moment)
    # 22 kW for 2 s, then 30 kW shared: 3.0 s in, 44 + 30 kW-s... in simulated hours at 360x.
    expected = (22 * 2 + 30 * 1) / HOUR
    assert substation.snapshot(3.0).energy_delivered_kwh == pytest.approx(expected)


def test_at_todays_wall_time_a_rising_background_read_between_steps_is_never_an_overload():
    # The integration test's evening at 1800x, on epoch seconds as the services see them: reads between steps
    # check the background from their own moment, the step was shared from its start; both must agree.
    time_scale = 1800.0
    clock = SimulatedClock(time_scale)
    day_s = 86400 / time_scale
    start = (1_796_000_000 // day_s) * day_s + 15.5 * 3600 / time_scale  # 15:30 on a day in 2026
    background = BackgroundDemand(60.0, DailyProfile(), clock)
    substation = Substation("s1", 100.0, 22.0, time_scale, background, step_s=0.2, queue_limit=50, now=start)
    for n in range(16):
        substation.admit(charge(f"EV{n}", 150, 11, min_power_kw=4, wait=True), now=start + n * 0.001)
    moment = start
    while moment < start + 9 * 3600 / time_scale:
        report = substation.report(moment)
        assert report.ev_power_kw + report.background_kw <= report.capacity_kw + 1e-6
        moment += 0.0137
    assert substation.counters.paused > 0, "the peak paused some"
    assert substation.counters.overload_seconds == 0
