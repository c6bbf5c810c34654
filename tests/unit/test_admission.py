"""Admission, completion and energy with ALLOCATION=fixed (each session at its maximum for its whole life,
as in version 0.2), and what both allocations share: conditions, replays, history. Without Flask."""

import threading

import pytest

from grid_common.protocol import SessionState
from substation_service.sessions import Admitted, Outdated, Refused, Session, SessionConflict
from tests import substations
from tests.helpers import charge
from tests.substations import TIME_SCALE

COMPLETED, STOPPED = SessionState.COMPLETED, SessionState.STOPPED


def make_substation(capacity_kw=50.0, **settings):
    """Admission as `fixed` allocation makes it: each session its maximum for its whole life."""
    return substations.make_substation(capacity_kw, **{"allocation": "fixed", "history_limit": 100, **settings})


def test_admits_until_capacity_then_refuses():
    substation = make_substation(capacity_kw=33)
    outcomes = [substation.admit(charge(f"EV-{i}", 11, 11), now=0) for i in range(4)]
    assert [type(o) for o in outcomes] == [Admitted, Admitted, Admitted, Refused]
    report = substation.report(0)
    assert report.active_sessions == 3
    assert report.load_kw == pytest.approx(33)
    assert report.utilization == pytest.approx(1.0)
    assert substation.counters.refused == {"capacity": 1, "queue": 0, "charger": 0, "journal": 0}


def test_session_power_is_capped_by_the_charger():
    substation = make_substation(capacity_kw=100, charger_kw=22)
    outcome = substation.admit(charge("EV-1", 50, 150), now=0)
    assert outcome.session.allocated_kw == 22
    assert substation.admit(charge("EV-2", 11, 7.4), now=0).session.allocated_kw == pytest.approx(7.4)


def test_default_session_lasts_ten_seconds_and_completes_on_its_own():
    substation = make_substation(capacity_kw=11)
    session = substation.admit(charge("EV-1", 11, 11), now=100).session
    assert session.estimated_end == pytest.approx(110)
    assert isinstance(substation.admit(charge("EV-2", 11, 11), now=109.9), Refused)
    finished = substation.session(session.session_id, now=110)
    assert finished.state == COMPLETED and finished.ended_at == pytest.approx(110)
    assert substation.session(session.session_id, now=500).energy_delivered_kwh == pytest.approx(11)
    assert substation.report(110).ev_power_kw == 0
    assert isinstance(substation.admit(charge("EV-2", 11, 11), now=110), Admitted), "capacity freed on completion"
    assert substation.counters.completed == 1


def test_energy_delivered_grows_linearly_and_stops_at_request():
    session = Session("s1.abcdefgh", "EV", 11, 1.4, 11, 0, requested_at=0, sequence=0, state="charging",
                      allocated_kw=11, delivered_at=0)  # fmt: skip
    assert session.delivered(0, TIME_SCALE) == 0
    assert session.delivered(2.5, TIME_SCALE) == pytest.approx(2.75)
    assert session.delivered(10, TIME_SCALE) == pytest.approx(11)
    assert session.delivered(99, TIME_SCALE) == pytest.approx(11)
    assert session.ends_at(TIME_SCALE) == pytest.approx(10)


def test_stop_ends_early_frees_power_and_keeps_partial_energy():
    substation = make_substation(capacity_kw=11)
    session = substation.admit(charge("EV-1", 11, 11), now=0).session
    stopped = substation.stop(session.session_id, now=5)
    assert stopped.state == STOPPED
    assert stopped.energy_delivered_kwh == pytest.approx(5.5)
    assert substation.session(session.session_id, now=100).energy_delivered_kwh == pytest.approx(5.5)
    assert substation.report(5).ev_power_kw == 0
    assert substation.stop(session.session_id, now=7) == stopped, "stopping twice returns the final session"
    assert substation.stop("s1.unknown123", now=7) is None
    assert isinstance(substation.admit(charge("EV-2", 11, 11), now=5), Admitted)


def test_admission_reserves_for_the_background_peak_over_the_session():
    # Background peaks at 19:00 simulated. At 18:00 it is 95% of the 40 kW peak = 38 kW.
    substation = make_substation(capacity_kw=60, background_peak_kw=40)
    at_1800 = 18 * 10.0  # wall seconds for 18:00 at 360x
    # A one-hour session (18:00 -> 19:00) must fit under the 40 kW peak: 40 + 22 > 60.
    assert isinstance(substation.admit(charge("EV-1", 22, 22), now=at_1800), Refused)
    # Half an hour (18:00 -> 18:30) only meets 97.5% of the peak: 39 + 11 + ... fits with 11 kW.
    assert isinstance(substation.admit(charge("EV-2", 5.5, 11), now=at_1800), Admitted)


def test_refusal_says_when_the_next_session_ends():
    substation = make_substation(capacity_kw=22)
    substation.admit(charge("EV-1", 11, 11), now=0)  # ends at 10
    substation.admit(charge("EV-2", 22, 11), now=2)  # ends at 22
    refused = substation.admit(charge("EV-3", 11, 11), now=4)
    assert isinstance(refused, Refused)
    assert refused.retry_after_s == pytest.approx(6)


def test_same_session_id_replays_and_different_request_conflicts():
    substation = make_substation(capacity_kw=22)
    first = substation.admit(charge("EV-1", 11, 11), now=0, session_id="s1.abcdefgh01")
    again = substation.admit(charge("EV-1", 11, 11), now=1, session_id="s1.abcdefgh01")
    assert again.replayed and again.session.session_id == first.session.session_id
    assert substation.report(1).active_sessions == 1
    with pytest.raises(SessionConflict):
        substation.admit(charge("EV-2", 11, 11), now=1, session_id="s1.abcdefgh01")


def test_concurrent_admissions_never_exceed_capacity():
    substation = make_substation(capacity_kw=110)
    barrier = threading.Barrier(32)
    results = []

    def admit(i):
        barrier.wait()
        results.append(substation.admit(charge(f"EV-{i}", 11, 11), now=0))

    threads = [threading.Thread(target=admit, args=(i,)) for i in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(isinstance(r, Admitted) for r in results) == 10
    assert substation.report(0).load_kw <= 110 + 1e-9


def test_finished_sessions_are_kept_up_to_the_history_limit():
    substation = make_substation(capacity_kw=1000, history_limit=2)
    ids = [substation.admit(charge("EV", 11, 11), now=t).session.session_id for t in range(3)]
    substation.report(now=60)
    assert substation.session(ids[0], now=60) is None
    assert substation.session(ids[2], now=60).state == COMPLETED


def test_reports_are_sequenced_within_one_process():
    substation = make_substation()
    first, second = substation.report(0), substation.report(0)
    assert second.sequence > first.sequence and first.epoch == second.epoch
    assert make_substation().epoch != substation.epoch


def test_a_conditional_admission_is_declined_when_other_balancers_placed_sessions_since():
    substation = make_substation(capacity_kw=100, background_peak_kw=20)
    assert isinstance(substation.admit(charge("EV-1", 11, 11), now=0, placed_by="other"), Admitted)
    # Balancer "me" still believes other balancers' sessions here draw nothing: its choice was outdated.
    declined = substation.admit(charge("EV-2", 11, 11), now=0, placed_by="me", others_ev_power_at_most=0)
    assert isinstance(declined, Outdated)
    assert declined.report.others_ev_power_kw == 11 and declined.report.active_sessions == 1, "to choose again"
    assert sum(substation.counters.refused.values()) == 0, "not a refusal: there is room"
    # Believing 11 kW is up to date; background demand does not count.
    assert isinstance(
        substation.admit(charge("EV-2", 11, 11), now=0, placed_by="me", others_ev_power_at_most=11), Admitted
    )


def test_a_balancers_own_sessions_never_make_its_view_outdated():
    """Its concurrent requests may arrive in any order: only other balancers' sessions count."""
    substation = make_substation(capacity_kw=100)
    for n in range(3):
        outcome = substation.admit(charge(f"EV-{n}", 11, 11), now=0, placed_by="me", others_ev_power_at_most=0)
        assert isinstance(outcome, Admitted)
        assert outcome.report.others_ev_power_kw == 0 and outcome.report.ev_power_kw == 11 * (n + 1)
    assert substation.report(0, balancer="other").others_ev_power_kw == 33
    assert substation.report(0).others_ev_power_kw is None, "only for a balancer that asks"


def test_sessions_that_ended_only_make_a_condition_truer():
    substation = make_substation(capacity_kw=100)
    session = substation.admit(charge("EV-1", 11, 11), now=0, placed_by="other").session
    assert isinstance(
        substation.admit(charge("EV-2", 11, 11), now=0, placed_by="me", others_ev_power_at_most=0), Outdated
    )
    substation.stop(session.session_id, now=1)
    assert isinstance(
        substation.admit(charge("EV-2", 11, 11), now=1, placed_by="me", others_ev_power_at_most=0), Admitted
    )
    assert substation.report(1, balancer="me").others_ev_power_kw == 0
    substation.admit(charge("EV-3", 11, 11), now=1, placed_by="other")
    assert substation.report(60, balancer="me").others_ev_power_kw == 0, "EV-3 completed"


def test_a_full_substation_refuses_whatever_the_condition():
    substation = make_substation(capacity_kw=11)
    substation.admit(charge("EV-1", 11, 11), now=0, placed_by="other")
    assert isinstance(
        substation.admit(charge("EV-2", 11, 11), now=0, placed_by="me", others_ev_power_at_most=0), Refused
    )


def test_a_substation_shutting_down_says_so_in_every_report_and_admits_what_it_is_still_sent():
    shutting_down = threading.Event()
    substation = make_substation(50.0, draining=shutting_down.is_set)
    assert substation.report(0).draining is False and b"draining" not in substation.report(0).encode()
    shutting_down.set()
    assert substation.report(1).draining is True
    admitted = substation.admit(charge("late", 10, 11), 1)
    assert admitted.session.state == "charging" and admitted.report.draining, "served while it drains"
