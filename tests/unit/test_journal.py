"""Sessions outlive the process: a substation rebuilt from its SQLite journal knows what it knew."""

from __future__ import annotations

import pytest

from substation_service.journal import SqliteJournal
from substation_service.profile import BackgroundDemand, DailyProfile, SimulatedClock
from substation_service.substation import CHARGING, COMPLETED, STOPPED, Admitted, Refused, Substation

TIME_SCALE = 360.0  # 11 kWh at 11 kW: 10 s


def substation_on(path, now: float, capacity_kw=33.0, history_limit=100) -> Substation:
    background = BackgroundDemand(0.0, DailyProfile(), SimulatedClock(TIME_SCALE))
    journal = SqliteJournal(str(path))
    return Substation("s1", capacity_kw, 22.0, TIME_SCALE, background, history_limit=history_limit,
                      journal=journal, now=now)  # fmt: skip


def test_a_restarted_substation_knows_every_session_its_energy_and_its_load(tmp_path):
    path = tmp_path / "sessions.sqlite3"
    before = substation_on(path, now=0)
    long = before.admit("EV-1", 22, 11, now=0).session  # 20 s
    short = before.admit("EV-2", 11, 11, now=0).session  # 10 s
    stopped = before.admit("EV-3", 11, 11, now=1).session
    before.stop(stopped.session_id, now=2)
    # The process is killed here: nothing is closed or flushed.

    after = substation_on(path, now=5)
    report = after.report(5)
    assert report.active_sessions == 2 and report.load_kw == pytest.approx(22)
    assert after.session(long.session_id, 5).energy_delivered_kwh(5) == pytest.approx(22 * 5 / 20)
    assert after.session(stopped.session_id, 5).state == STOPPED
    assert isinstance(after.admit("EV-4", 11, 22, now=5), Refused), "capacity counts the restored sessions"
    assert after.session(short.session_id, 12).state == COMPLETED, "restored sessions still end on time"


def test_sessions_that_ended_while_the_process_was_down_are_completed_at_restart(tmp_path):
    path = tmp_path / "sessions.sqlite3"
    first = substation_on(path, now=0).admit("EV-1", 11, 11, now=0).session
    later = substation_on(path, now=60)
    assert later.report(60).active_sessions == 0 and later.report(60).load_kw == 0
    restored = later.session(first.session_id, 60)
    assert restored.state == COMPLETED and restored.ended_at == pytest.approx(10)
    assert substation_on(path, now=61).session(first.session_id, 61).state == COMPLETED, "and that is kept"


def test_a_replayed_admission_after_restart_is_the_same_session(tmp_path):
    path = tmp_path / "sessions.sqlite3"
    admitted = substation_on(path, now=0).admit("EV-1", 11, 11, now=0, session_id="s1.00000000000000aa")
    again = substation_on(path, now=1).admit("EV-1", 11, 11, now=1, session_id="s1.00000000000000aa")
    assert isinstance(again, Admitted) and again.replayed and again.session == admitted.session
    assert again.session.state == CHARGING


def test_history_beyond_the_limit_leaves_the_journal_too(tmp_path):
    path = tmp_path / "sessions.sqlite3"
    substation = substation_on(path, now=0, capacity_kw=1000, history_limit=2)
    ids = [substation.admit(f"EV-{i}", 11, 11, now=0).session.session_id for i in range(4)]
    for session_id in ids:
        substation.stop(session_id, now=1)
    kept = {session.session_id for session in SqliteJournal(str(path)).sessions()}
    assert kept == set(ids[2:])
