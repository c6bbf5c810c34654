"""Chargers' meters at the substation (substation_service/meter.py): measured power checked against capacity,
under-draw given to others and given back, silent chargers counted at their default, energy from the meter,
the feed of sessions on chargers, and OCPP periods that never repeat."""

from __future__ import annotations

import itertools
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grid_common.protocol import ChargerLink, GridPhase, MeterReading, SchedulePeriod, SessionState
from grid_common.protocol.session_report import whole_second_periods
from substation_service.charger_draws import walk, walk_phases
from substation_service.meter import MeterSettings
from tests.helpers import charge
from tests.substations import make_substation

pytestmark = pytest.mark.unit

METERS = MeterSettings(stale_s=10.0, follow_s=5.0, underdraw_s=10.0, margin_kw=1.0)


def on_charger(substation, vehicle: str, now: float, *, max_kw: float = 22.0, failsafe_kw: float = 0.0, **fields):
    link = ChargerLink(f"cp-{vehicle}", f"tx-{vehicle}", failsafe_kw)
    return substation.admit(charge(vehicle, 100, max_kw, **fields), now, charger=link).session


def test_a_charger_that_draws_more_than_its_limit_shows_as_overload_once_it_had_time_to_follow():
    substation = make_substation(22.0, meters=METERS, now=0)
    a = on_charger(substation, "a", 0)
    b = on_charger(substation, "b", 0)
    assert substation.session(a.session_id, 0).allocated_kw == pytest.approx(11.0)
    substation.read_meters([MeterReading(a.session_id, 11.0), MeterReading(b.session_id, 11.0)], 6.0)
    substation.advance(8.0)
    assert substation.counters.overload_seconds == 0
    substation.read_meters([MeterReading(a.session_id, 16.0), MeterReading(b.session_id, 11.0)], 8.0)
    substation.advance(12.0)
    assert substation.counters.overload_seconds == pytest.approx(4.0, abs=1.01), "5 kW over 22 kW, for 4 s"


def test_a_silent_meter_counts_at_the_limit_and_the_chargers_default_never_at_zero():
    substation = make_substation(40.0, charger_kw=40.0, meters=METERS, now=0)
    a = on_charger(substation, "a", 0, failsafe_kw=10.0, max_kw=11.0, min_power_kw=4.0)
    # Never read: its charger may draw its default beside its limit, so the others share 10 kW less.
    assert substation.counted_ev_power_kw(0) == pytest.approx(11.0 + 0.0)  # limit 11 covers a default of 10
    b = substation.admit(charge("b", 100, 40.0, min_power_kw=4.0), 0).session
    assert substation.session(b.session_id, 0).allocated_kw == pytest.approx(40 - 10 - 11)
    substation.read_meters([MeterReading(a.session_id, 2.0)], 1.0)
    substation.advance(2.0)
    assert substation.session(b.session_id, 2.0).allocated_kw == pytest.approx(40 - 11), "heard: no reserve"
    assert substation.counted_ev_power_kw(2.0) == pytest.approx(2.0 + 29.0), "what it draws, measured"
    substation.advance(12.0)  # 11 s without a reading
    assert substation.session(b.session_id, 12.0).allocated_kw == pytest.approx(40 - 10 - 11)
    assert substation.counted_ev_power_kw(12.0) == pytest.approx(11.0 + 19.0), "its limit again, not 2 kW"


def test_a_car_that_takes_less_gives_the_rest_to_the_others_and_gets_it_back_when_it_draws_more():
    substation = make_substation(22.0, meters=METERS, now=0)
    a = on_charger(substation, "a", 0)
    b = on_charger(substation, "b", 0)
    for second in range(0, 12):
        substation.read_meters([MeterReading(a.session_id, 3.0), MeterReading(b.session_id, 11.0)], float(second))
    substation.advance(13.0)
    a_now, b_now = (substation.session(s.session_id, 13.0) for s in (a, b))
    assert a_now.allocated_kw == pytest.approx(4.0), "what it draws and a 1 kW margin"
    assert b_now.allocated_kw == pytest.approx(18.0)
    substation.read_meters([MeterReading(a.session_id, 3.8), MeterReading(b.session_id, 18.0)], 14.0)
    substation.advance(15.0)
    assert substation.session(a.session_id, 15.0).allocated_kw == pytest.approx(11.0), "its share back"


def test_energy_comes_from_the_meter_and_a_session_whose_meter_shows_it_all_completes():
    substation = make_substation(22.0, meters=METERS, now=0)
    a = substation.admit(charge("a", 5.0, 11.0), 0, charger=ChargerLink("cp-a", "1")).session
    substation.read_meters([MeterReading(a.session_id, 7.0, energy_kwh=1.25)], 1.0)
    assert substation.session(a.session_id, 1.0).energy_delivered_kwh == pytest.approx(1.25)
    assert substation.session(a.session_id, 1.0).measured_kw == 7.0
    unknown = substation.read_meters([MeterReading(a.session_id, 7.0, 5.0), MeterReading("s1.0000000000", 1)], 2.0)
    assert unknown == ["s1.0000000000"]
    assert substation.session(a.session_id, 2.0).state == SessionState.COMPLETED


def test_the_feed_shows_sessions_on_chargers_that_changed_since_a_cursor():
    substation = make_substation(22.0, meters=METERS, now=0)
    substation.admit(charge("plain", 100, 11.0), 0)  # on no charger: never in the feed
    a = on_charger(substation, "a", 0)
    cursor, sessions = substation.charger_feed(0, 0)
    assert [s.session_id for s in sessions] == [a.session_id] and sessions[0].charger_id == "cp-a"
    assert substation.charger_feed(cursor, 0.5) == (cursor, [])
    b = on_charger(substation, "b", 1.0)  # a's limit falls as b shares
    cursor_2, sessions = substation.charger_feed(cursor, 1.0)
    assert cursor_2 > cursor and {s.session_id for s in sessions} == {a.session_id, b.session_id}
    substation.stop(a.session_id, 2.0)
    _, sessions = substation.charger_feed(cursor_2, 2.0)
    assert {(s.session_id, s.state) for s in sessions} >= {(a.session_id, SessionState.STOPPED)}


def test_a_reader_with_nothing_new_is_answered_at_the_next_change_and_one_of_another_epoch_at_once():
    substation = make_substation(22.0, meters=METERS, now=0)
    a = on_charger(substation, "a", 0)
    cursor, _ = substation.charger_feed(0, 0)
    started = time.monotonic()
    assert substation.charger_feed(cursor, 0.1, wait_s=0.3, epoch=substation.epoch) == (cursor, [])
    assert time.monotonic() - started >= 0.25, "held until the wait ran out, nothing having changed"
    started = time.monotonic()
    assert substation.charger_feed(cursor, 0.2, wait_s=5, epoch="an-earlier-epoch") == (cursor, [])
    assert time.monotonic() - started < 1, "a reader of another epoch is answered at once"

    answers: list[tuple[int, list]] = []
    reader = threading.Thread(
        target=lambda: answers.append(substation.charger_feed(cursor, 0.3, wait_s=10, epoch=substation.epoch))
    )
    started = time.monotonic()
    reader.start()
    time.sleep(0.2)
    assert not answers, "held while nothing changes"
    b = on_charger(substation, "b", 0.5)  # a's limit falls as b shares
    reader.join(5)
    assert answers and time.monotonic() - started < 2, "answered at the change, not after the 10 s wait"
    assert {s.session_id for s in answers[0][1]} == {a.session_id, b.session_id}


def test_a_restarted_substation_takes_a_chargers_energy_from_its_meter_not_from_a_replay(tmp_path):
    from substation_service.sqlite_journal import SqliteJournal

    path = str(tmp_path / "s.sqlite3")
    before = make_substation(22.0, meters=METERS, journal=SqliteJournal(path), now=0)
    a = on_charger(before, "a", 0, max_kw=11.0)
    before.read_meters([MeterReading(a.session_id, 11.0, energy_kwh=0.5)], 1.0)
    after = make_substation(22.0, meters=METERS, journal=SqliteJournal(path), now=30.0)
    # 29 s at 11 kW would be 32 kWh of replay; the meter has said nothing since.
    assert after.session(a.session_id, 30.0).energy_delivered_kwh < 1.0
    after.read_meters([MeterReading(a.session_id, 11.0, energy_kwh=2.0)], 31.0)
    assert after.session(a.session_id, 31.0).energy_delivered_kwh == pytest.approx(2.0)


def test_ocpp_periods_start_at_0_and_increase_strictly_when_limits_change_within_a_second():
    schedule = [SchedulePeriod(100.0, 11), SchedulePeriod(100.3, 7), SchedulePeriod(100.6, 5), SchedulePeriod(101.2, 6)]
    periods = whole_second_periods(100.0, schedule)
    assert [(p.start_period, p.limit) for p in periods] == [(0, 7000.0), (1, 6000.0)]
    starts = [p.start_period for p in periods]
    assert starts[0] == 0 and all(a < b for a, b in itertools.pairwise(starts))


def test_a_queued_car_on_a_silent_charger_counts_at_its_default_since_only_its_limit_of_0_holds_it():
    substation = make_substation(30.0, charger_kw=30.0, meters=METERS, now=0)
    first = substation.admit(charge("a", 100, 30.0, min_power_kw=20.0), 0).session
    queued = on_charger(substation, "q", 0, failsafe_kw=5.0, max_kw=11.0, min_power_kw=11.0, wait=True)
    assert substation.session(queued.session_id, 0).state == SessionState.QUEUED
    substation.advance(1.0)
    assert substation.session(first.session_id, 1.0).allocated_kw == pytest.approx(25.0), "5 kW kept for it"
    substation.read_meters([MeterReading(queued.session_id, 0.0)], 1.5)
    substation.advance(2.0)
    assert substation.session(first.session_id, 2.0).allocated_kw == pytest.approx(30.0), "heard at 0 kW"
    assert substation.session(queued.session_id, 2.0).state == SessionState.QUEUED


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["admit", "read", "stop", "wait"]),
            st.floats(0.0, 30.0),  # kW drawn, default, or maximum
            st.integers(0, 40),  # which session
            st.floats(0.0, 7.0),  # seconds that pass before it
        ),
        max_size=60,
    )
)
def test_the_sums_of_chargers_draws_kept_as_sessions_change_are_those_of_a_walk_over_every_session(operations):
    """charger_draws.py keeps what silent chargers may draw and what is counted beyond limits by differences and
    timed renewals; at every moment they must equal the sums walked over every session on a charger."""
    substation = make_substation(60.0, charger_kw=22.0, meters=METERS, now=0)
    now, ids = 0.0, []
    for kind, kw, which, wait_s in operations:
        now += wait_s
        if kind == "admit":
            ids.append(on_charger(substation, f"v{len(ids)}", now, failsafe_kw=round(kw / 3, 1),
                                  max_kw=max(6.0, kw), min_power_kw=4.0, wait=True,
                                  phases=1 if which % 2 else 3).session_id)  # fmt: skip
        elif kind == "read" and ids:
            substation.read_meters([MeterReading(ids[which % len(ids)], kw)], now)
        elif kind == "stop" and ids:
            substation.stop(ids[which % len(ids)], now)
        else:
            substation.advance(now)
        on_chargers = substation.book.on_chargers
        silent, beyond = substation.book.draws.at(now, on_chargers)
        assert (silent, beyond) == pytest.approx(walk(on_chargers, now, METERS), abs=1e-9)
        silent_by_phase, beyond_by_phase = substation.book.draws.on_phases(now, on_chargers)
        walked_silent, walked_beyond = walk_phases(on_chargers, now, METERS)
        assert silent_by_phase == pytest.approx(walked_silent, abs=1e-9)
        assert beyond_by_phase == pytest.approx(walked_beyond, abs=1e-9)


def test_a_reading_between_two_steps_counts_an_overdraw_from_its_moment_not_from_the_last_step():
    substation = make_substation(22.0, meters=METERS, now=0)
    a = on_charger(substation, "a", 0)
    b = on_charger(substation, "b", 0)
    substation.read_meters([MeterReading(a.session_id, 11.0), MeterReading(b.session_id, 11.0)], 6.0)
    substation.read_meters([MeterReading(a.session_id, 16.0), MeterReading(b.session_id, 11.0)], 8.5)
    substation.advance(12.0)
    assert substation.counters.overload_seconds == pytest.approx(3.5), "from 8.5 s, when the meter read it"


def test_a_chargers_first_limit_below_its_default_gives_its_car_time_to_follow_as_any_lower_limit():
    # Its charger drew its default (10 kW) until the first limit (7 kW) reached it: the first readings may show
    # the default, as they may show an older, higher limit after any lowering.
    substation = make_substation(22.0, meters=METERS, now=0)
    a = on_charger(substation, "a", 0, failsafe_kw=10.0, max_kw=7.0, min_power_kw=7.0)
    b = on_charger(substation, "b", 0, max_kw=15.0, min_power_kw=1.4)
    substation.read_meters([MeterReading(a.session_id, 10.0), MeterReading(b.session_id, 15.0)], 1.0)
    substation.advance(4.9)
    assert substation.session(b.session_id, 4.9).allocated_kw == pytest.approx(15.0)
    assert substation.counters.overload_seconds == 0, "within 5 s of its first limit it counts at that limit"
    substation.read_meters([MeterReading(a.session_id, 10.0), MeterReading(b.session_id, 15.0)], 5.0)
    substation.advance(7.0)
    # Over from 5 s, when its time ran out (the interval accounted at a moment counts as it is then: from 4.9 s).
    assert substation.counters.overload_seconds == pytest.approx(2.0, abs=0.11), "at its default after 5 s: over"


def wired(substation, vehicle: str, now: float, *, max_kw: float = 22.0, failsafe_kw: float = 0.0, **fields):
    """A 3-phase 32 A charger's session, its L1 on the grid's L2."""
    link = ChargerLink(f"cp-{vehicle}", f"tx-{vehicle}", failsafe_kw, grid_phase=GridPhase.L2)
    return substation.admit(charge(vehicle, 100, max_kw, min_power_kw=4.14, **fields), now, charger=link).session


def test_a_car_seen_drawing_on_one_phase_goes_to_one_phase_and_gets_what_it_can_take_not_its_minimum():
    # 30 kW for two cars on 3-phase chargers: 15 kW each. One of them is a 1-phase car: at 15 kW's current on
    # three phases (21.7 A) it takes 21.7 A on one, 5 kW. Judged in kW alone it was capped and walked down.
    substation = make_substation(30.0, meters=METERS, now=0)
    one, three = wired(substation, "one", 0), wired(substation, "three", 0)
    assert substation.session(one.session_id, 0).allocated_kw == pytest.approx(15.0)
    for second in range(6, 16):  # on one phase for less than the under-draw time: as it was, and not capped
        readings = [MeterReading(one.session_id, 5.0, phases=1), MeterReading(three.session_id, 15.0, phases=3)]
        substation.read_meters(readings, float(second))
    waiting = substation.session(one.session_id, 15.0)
    assert (waiting.phases, waiting.allocated_kw) == (3, pytest.approx(15.0)), "5 kW is all 21.7 A gives on one"
    substation.read_meters([MeterReading(one.session_id, 5.0, phases=1)], 16.0)
    seen = substation.session(one.session_id, 16.0)
    assert (seen.phases, seen.grid_phase) == (1, "L2"), "on one phase, on its charger's L1"
    assert seen.allocated_kw == pytest.approx(22.0 / 3), "its 32 A on one phase, all it can take"
    # Its 7.3 kW now count where they flow, on L2 (10 kW a phase): the 3-phase car has the rest of L2 on each phase.
    assert substation.session(three.session_id, 16.0).allocated_kw == pytest.approx(3 * (10 - 22.0 / 3))
    for second in range(17, 40):  # it takes all it is given from here: never capped, never walked down
        substation.read_meters([MeterReading(one.session_id, 22.0 / 3, phases=1)], float(second))
    assert substation.session(one.session_id, 40.0).allocated_kw == pytest.approx(22.0 / 3)
    assert substation.counters.phase_switches == 1


def test_a_car_on_two_phases_keeps_its_share_and_one_seen_on_three_again_goes_back():
    substation = make_substation(30.0, meters=METERS, now=0)
    two, other = wired(substation, "two", 0), wired(substation, "other", 0)
    for second in range(1, 20):  # 15 kW's current on two phases: 10 kW, what its limit allows on two
        substation.read_meters([MeterReading(two.session_id, 10.0, phases=2)], float(second))
    assert substation.session(two.session_id, 20.0).allocated_kw == pytest.approx(15.0), "not capped"
    for second in (20, 25, 28):  # on one phase, then on two for a moment: the wait starts again
        substation.read_meters([MeterReading(other.session_id, 5.0, phases=1)], float(second))
    substation.read_meters([MeterReading(other.session_id, 5.0, phases=2)], 29.0)
    substation.read_meters([MeterReading(other.session_id, 5.0, phases=1)], 30.0)
    assert substation.session(other.session_id, 30.0).phases == 3
    substation.read_meters([MeterReading(other.session_id, 5.0, phases=1)], 40.0)
    assert substation.session(other.session_id, 40.0).phases == 1
    substation.read_meters([MeterReading(other.session_id, 7.0, phases=3)], 42.0)
    assert substation.session(other.session_id, 42.0).phases == 1, "within 5 s of its switch: still following"
    substation.read_meters([MeterReading(other.session_id, 7.0, phases=3)], 46.0)
    back = substation.session(other.session_id, 46.0)
    assert (back.phases, back.grid_phase) == (3, None), "seen on three: back at once, the safe side"
    assert substation.counters.phase_switches == 2


def test_on_an_uncongested_substation_a_reshaped_car_is_given_its_new_bounds_at_once():
    # Every car at its maximum, all fitting: the substation shares nothing at a step, until something changes.
    substation = make_substation(100.0, meters=METERS, now=0)
    car = wired(substation, "car", 0, failsafe_kw=9.0)  # its charger's default: 13 A a phase
    assert substation.session(car.session_id, 0).allocated_kw == pytest.approx(22.0)
    for second in range(1, 12):
        substation.read_meters([MeterReading(car.session_id, 7.3, phases=1)], float(second))
    one = substation.session(car.session_id, 11.0)
    assert (one.phases, one.allocated_kw) == (1, pytest.approx(22.0 / 3)), "not 22 kW told on one phase"
    assert substation.book.totals.ev_phase_kw == pytest.approx([0.0, 22.0 / 3, 0.0])
    assert substation.book.sessions[car.session_id].failsafe_kw == pytest.approx(3.0), "13 A on its one phase"
    substation.read_meters([MeterReading(car.session_id, 16.0, phases=3)], 17.0)
    three = substation.session(car.session_id, 17.0)
    assert (three.phases, three.allocated_kw) == (3, pytest.approx(22.0))


def test_a_1_phase_session_that_was_never_switched_goes_to_three_when_its_car_draws_on_three():
    # As a reshaped session is after a restart (when it switched is not kept), or one admitted on one phase.
    substation = make_substation(30.0, meters=METERS, now=0)
    link = ChargerLink("cp-x", "tx-x", grid_phase=GridPhase.L3)
    one = substation.admit(charge("x", 100, 7.3, min_power_kw=1.38, phases=1), 0, charger=link).session
    assert substation.session(one.session_id, 0).phases == 1
    substation.read_meters([MeterReading(one.session_id, 15.0, phases=3)], 1.0)
    assert substation.session(one.session_id, 1.0).phases == 3, "its 1-phase current on three phases: counted so"


def test_a_car_its_charger_switches_is_left_to_phase_switching():
    substation = make_substation(30.0, meters=METERS, now=0)
    session = substation.book.sessions[wired(substation, "sw", 0, failsafe_kw=9.0).session_id]
    session.switchable = True
    substation.book.reshape(session, 1, GridPhase.L2, 1.0)  # switched down by the substation
    substation.read_meters([MeterReading(session.session_id, 7.0, phases=3)], 20.0)
    assert session.phases == 1, "its charger may be slow to switch"
    substation.read_meters([MeterReading(session.session_id, 7.0, phases=3)], 29.0)
    assert session.phases == 1
    substation.read_meters([MeterReading(session.session_id, 7.0, phases=3)], 30.0)
    assert (session.phases, session.switchable) == (3, True), "never switched: counted where it draws, still switchable"
    assert session.failsafe_kw == 9.0, "its charger's default, counted on three phases throughout"
    substation.book.reshape(session, 1, GridPhase.L2, 31.0)  # switched down again, and this time it switches
    substation.read_meters([MeterReading(session.session_id, 7.0, phases=1)], 40.0)
    assert session.phases == 1
    substation.book.reshape(session, 3, None, 50.0)  # switched back up
    for second in range(56, 80, 2):
        substation.read_meters([MeterReading(session.session_id, 7.0, phases=1)], float(second))
    assert session.phases == 3, "told to switch up, it may be on its way yet"
