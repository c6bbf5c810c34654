"""The grid operator's limits (substation_service/grid_limits.py) and how a substation keeps them: a schedule is
checked as it is set, a limit in force holds from the moment it is set, one ahead from the step before it
starts, sessions are paused in the usual order when the minimums do not fit, and the rated capacity comes back
when the last period ends."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grid_common.protocol import Allocation, SessionState
from substation_service.grid_limits import GridLimits, InvalidSchedule, LimitPeriod
from tests.helpers import charge
from tests.substations import make_substation

pytestmark = pytest.mark.unit


def test_capacity_over_an_interval_is_the_lowest_of_the_rating_and_every_period_overlapping_it():
    limits = GridLimits(100.0)
    limits.set([LimitPeriod(10, 20, 60.0), LimitPeriod(30, 40, 150.0), LimitPeriod(50, 60, 20.0)], now=0)
    assert limits.capacity_between(0, 9.9) == 100.0
    assert limits.capacity_between(0, 10) == 60.0, "a period starting at the end of the interval counts"
    assert limits.capacity_between(20, 29) == 100.0, "a period is over at its end"
    assert limits.capacity_between(30, 40) == 100.0, "a limit above the rating changes nothing"
    assert limits.lowest_ahead(0) == 20.0
    assert limits.in_force(15) == LimitPeriod(10, 20, 60.0) and limits.in_force(25) is None


@pytest.mark.parametrize(
    ("periods", "says"),
    [
        ([LimitPeriod(10, 5, 50.0)], "end after it starts"),
        ([LimitPeriod(-10, -5, 50.0)], "already ended"),
        ([LimitPeriod(0, 10, -1.0)], "0 or more"),
        ([LimitPeriod(0, 10, 50.0), LimitPeriod(5, 20, 40.0)], "before period 1 ends"),
        ([LimitPeriod(8 * 86400, 8 * 86400 + 10, 50.0)], "more than a week ahead"),
        ([LimitPeriod(i, i + 1, 50.0) for i in range(97)], "at most 96"),
        ([LimitPeriod(0, float("inf"), 50.0)], "finite"),
        ([LimitPeriod(0, 8 * 86400, 50.0)], "lasts more than a week"),
    ],
)
def test_a_schedule_that_cannot_be_kept_is_refused_whole_and_changes_nothing(periods, says):
    limits = GridLimits(100.0)
    limits.set([LimitPeriod(0, 100, 70.0)], now=0)
    with pytest.raises(InvalidSchedule, match=says):
        limits.set(periods, now=0)
    assert limits.periods == (LimitPeriod(0, 100, 70.0),) and limits.changes == 1


def test_a_limit_set_now_holds_at_once_and_pauses_the_lowest_priority_newest_first():
    substation = make_substation(100.0, now=0)
    ids = [
        substation.admit(charge(f"EV{n}", 50, 22.0, min_power_kw=10.0, priority=p), 0.0).session.session_id
        for n, p in enumerate([1, 0, 0, 1])
    ]
    substation.set_grid_limits([LimitPeriod(1.0, 61.0, 25.0)], 1.0)
    states = {i: substation.session(i, 1.0) for i in ids}
    assert sum(s.allocated_kw for s in states.values()) <= 25.0 + 1e-6, "never over the new limit, from now"
    paused = [i for i, s in states.items() if s.state == SessionState.PAUSED]
    # Minimums of 10 kW under 25 kW: two charge, the priority-1 ones; of the priority-0 ones the newest waits first.
    assert paused == [ids[1], ids[2]]
    assert substation.report(1.0).grid_limit_kw == 25.0
    assert substation.report(1.0).available_kw == pytest.approx(0.0, abs=1e-3)


def test_a_limit_ahead_holds_from_the_step_before_it_starts_and_lapses_at_its_end():
    substation = make_substation(100.0, now=0)
    session = substation.admit(charge("EV", 500, 22.0, min_power_kw=5.0), 0.0).session.session_id
    substation.set_grid_limits([LimitPeriod(10.5, 20.0, 8.0)], 0.0)
    substation.advance(9.0)
    assert substation.session(session, 9.0).allocated_kw == pytest.approx(22.0)
    substation.advance(10.0)  # the step from 10 s reaches 11 s: the limit starts within it
    assert substation.session(session, 10.0).allocated_kw == pytest.approx(8.0)
    substation.advance(21.0)
    assert substation.session(session, 21.0).allocated_kw == pytest.approx(22.0), "the rated capacity again"
    assert substation.report(21.0).grid_limit_kw is None
    assert substation.counters.overload_seconds == 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 40), st.floats(0.5, 15), st.floats(0, 120)), min_size=1, max_size=5),
    st.lists(st.tuples(st.floats(1, 22), st.integers(0, 3)), min_size=1, max_size=12),
    st.sampled_from(list(Allocation)),
)
def test_ev_power_and_background_never_exceed_the_limit_in_force_once_a_step_has_passed(windows, cars, allocation):
    substation = make_substation(120.0, background_peak_kw=30.0, allocation=allocation, now=0)
    for n, (max_kw, priority) in enumerate(cars):
        substation.admit(charge(f"EV{n}", 200, max_kw, min_power_kw=min(max_kw, 1.4), priority=priority, wait=True), 0)
    periods, start = [], 1.0
    for gap, length, limit in windows:
        begins = start + gap
        start = begins + length
        periods.append(LimitPeriod(begins, start, limit))
    substation.set_grid_limits(periods, 0.5)
    moment = 0.5
    while moment < start + 2:
        moment += 0.25
        substation.advance(moment)
        capacity = substation.limits.capacity_between(moment, moment)
        report = substation.report(moment)
        assert report.ev_power_kw + report.background_kw <= max(capacity, report.background_kw) + 1e-3
    assert substation.counters.overload_seconds == 0


def test_a_limit_said_to_start_before_it_was_set_starts_when_it_is_set_and_counts_no_overload():
    # The route reads the clock before the substation's lock; the ticker may have moved the state past it.
    substation = make_substation(100.0, now=0)
    substation.admit(charge("EV", 500, 22.0, min_power_kw=5.0), 0.0)
    substation.advance(5.0)
    substation.set_grid_limits([LimitPeriod(4.0, 30.0, 8.0)], 4.0)
    assert substation.limits.periods[0].start == 5.0
    substation.advance(6.0)
    assert substation.counters.overload_seconds == 0


def test_under_the_fixed_policy_a_limit_below_the_maxima_pauses_the_newest_sessions():
    substation = make_substation(100.0, allocation=Allocation.FIXED, now=0)
    ids = [substation.admit(charge(f"EV{n}", 250, 22.0), 0.0).session.session_id for n in range(3)]
    substation.set_grid_limits([LimitPeriod(1.0, 61.0, 50.0)], 1.0)
    assert [substation.session(i, 1.0).allocated_kw for i in ids] == [22.0, 22.0, 0.0]
    substation.advance(30.0)
    assert substation.counters.overload_seconds == 0
    substation.advance(62.0)
    assert [substation.session(i, 62.0).allocated_kw for i in ids] == [22.0, 22.0, 22.0], "resumed after the window"


def test_after_a_long_stall_the_catch_up_keeps_a_limit_that_started_beyond_the_last_look_ahead():
    # Asked nothing for 5 000 steps, the substation catches up in at most 2 000 longer steps: the first of them
    # must not outrun the one step the last allocation looked ahead over.
    substation = make_substation(100.0, now=0)
    substation.admit(charge("EV", 250, 22.0, min_power_kw=5.0), 0.0)
    substation.set_grid_limits([LimitPeriod(2.2, 5000.0, 8.0)], 0.0)
    substation.advance(5000.0)
    assert substation.counters.overload_seconds == 0


def test_a_limit_above_the_rating_changes_nothing_and_is_not_said_to_be_in_force():
    limits = GridLimits(100.0)
    limits.set([LimitPeriod(0, 10, 150.0)], now=0)
    assert limits.in_force(5) is None and limits.capacity_between(0, 10) == 100.0


def test_a_restarted_substation_keeps_the_grid_operators_limit_from_its_journal(tmp_path):
    from substation_service.sqlite_journal import SqliteJournal

    path = str(tmp_path / "sessions.sqlite3")
    substation = make_substation(100.0, journal=SqliteJournal(path), now=0)
    car = substation.admit(charge("EV", 250, 22.0, min_power_kw=5.0), 0.0).session.session_id
    substation.set_grid_limits([LimitPeriod(0.0, 100.0, 8.0), LimitPeriod(100.0, 200.0, 15.0)], 0.0)
    restarted = make_substation(100.0, journal=SqliteJournal(path), now=10.0)
    assert restarted.limits.periods == substation.limits.periods
    assert restarted.session(car, 10.0).allocated_kw == pytest.approx(8.0), "held from its first step"
    assert restarted.counters.overload_seconds == 0


def test_a_limit_the_journal_cannot_keep_is_refused_and_changes_nothing(tmp_path):
    from substation_service.journal import JournalError
    from substation_service.sqlite_journal import SqliteJournal

    journal = SqliteJournal(str(tmp_path / "sessions.sqlite3"))
    substation = make_substation(100.0, journal=journal, now=0)
    substation.admit(charge("EV", 250, 22.0), 0.0)
    journal.close()  # every write fails from now on
    with pytest.raises(JournalError):
        substation.set_grid_limits([LimitPeriod(0.0, 100.0, 8.0)], 1.0)
    assert substation.limits.periods == () and substation.report(1.0).grid_limit_kw is None
