"""Sessions outlive the process: a substation rebuilt from its SQLite journal knows what it knew."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import pytest

from grid_common.protocol import ChargerLink, GridPhase, SessionState
from substation_service.sessions import Admitted, Queued, Refused
from substation_service.sqlite_journal import COLUMNS, CREATE, SCHEMA_VERSION, SqliteJournal
from substation_service.substation import Substation
from tests.helpers import charge
from tests.substations import make_substation

# What schema 5 kept: no departure.
CREATE_BEFORE_DEPARTURES = CREATE.replace(" departure_at REAL,", "")
COLUMNS_BEFORE_DEPARTURES = tuple(c for c in COLUMNS if c != "departure_at")
CREATE_BEFORE_PHASES = CREATE_BEFORE_DEPARTURES.replace(
    " phases INTEGER NOT NULL DEFAULT 3, grid_phase TEXT, circuit TEXT, switchable INTEGER NOT NULL DEFAULT 0,"
    " wired_phase TEXT,",
    "",
)
CREATE_BEFORE_CHARGERS = CREATE_BEFORE_PHASES.replace(
    " charger_id TEXT, transaction_id TEXT, failsafe_kw REAL NOT NULL DEFAULT 0,", ""
)
COLUMNS_BEFORE_PHASES = tuple(
    c for c in COLUMNS_BEFORE_DEPARTURES if c not in ("phases", "grid_phase", "circuit", "switchable", "wired_phase")
)
# What schemas 2 and 3 kept.
COLUMNS_BEFORE_CHARGERS = tuple(
    c for c in COLUMNS_BEFORE_PHASES if c not in ("charger_id", "transaction_id", "failsafe_kw")
)

QUEUED, CHARGING, PAUSED, COMPLETED, STOPPED = (
    SessionState.QUEUED,
    SessionState.CHARGING,
    SessionState.PAUSED,
    SessionState.COMPLETED,
    SessionState.STOPPED,
)


def substation_on(path, now: float, capacity_kw=33.0, history_limit=100, allocation="fixed", **settings) -> Substation:
    """A substation whose journal is the SQLite file at `path`, started (or restarted) at `now`."""
    journal = SqliteJournal(str(path))
    return make_substation(
        capacity_kw, journal=journal, now=now, history_limit=history_limit, allocation=allocation, **settings
    )


def test_a_restarted_substation_knows_every_session_its_energy_and_its_load(tmp_path):
    path = tmp_path / "sessions.sqlite3"
    before = substation_on(path, now=0)
    long = before.admit(charge("EV-1", 22, 11), now=0).session  # 20 s
    short = before.admit(charge("EV-2", 11, 11), now=0).session  # 10 s
    stopped = before.admit(charge("EV-3", 11, 11), now=1).session
    before.stop(stopped.session_id, now=2)
    # The process is killed here: nothing is closed or flushed.

    after = substation_on(path, now=5)
    report = after.report(5)
    assert report.active_sessions == 2 and report.load_kw == pytest.approx(22)
    assert after.session(long.session_id, 5).energy_delivered_kwh == pytest.approx(22 * 5 / 20)
    assert after.session(stopped.session_id, 5).state == STOPPED
    assert isinstance(after.admit(charge("EV-4", 11, 22), now=5), Refused), "capacity counts the restored sessions"
    assert after.session(short.session_id, 12).state == COMPLETED, "restored sessions still end on time"


def test_sessions_that_ended_while_the_process_was_down_are_completed_at_restart(tmp_path):
    path = tmp_path / "sessions.sqlite3"
    first = substation_on(path, now=0).admit(charge("EV-1", 11, 11), now=0).session
    later = substation_on(path, now=60)
    assert later.report(60).active_sessions == 0 and later.report(60).load_kw == 0
    restored = later.session(first.session_id, 60)
    assert restored.state == COMPLETED and restored.ended_at == pytest.approx(10)
    assert substation_on(path, now=61).session(first.session_id, 61).state == COMPLETED, "and that is kept"


def test_a_replayed_admission_after_restart_is_the_same_session(tmp_path):
    path = tmp_path / "sessions.sqlite3"
    admitted = substation_on(path, now=0).admit(charge("EV-1", 11, 11), now=0, session_id="s1.00000000000000aa")
    again = substation_on(path, now=1).admit(charge("EV-1", 11, 11), now=1, session_id="s1.00000000000000aa")
    assert isinstance(again, Admitted) and again.replayed
    assert again.session.session_id == admitted.session.session_id and again.session.state == CHARGING


def test_history_beyond_the_limit_leaves_the_journal_too(tmp_path):
    path = tmp_path / "sessions.sqlite3"
    substation = substation_on(path, now=0, capacity_kw=1000, history_limit=2)
    ids = [substation.admit(charge(f"EV-{i}", 11, 11), now=0).session.session_id for i in range(4)]
    for session_id in ids:
        substation.stop(session_id, now=1)
    kept = {session.session_id for session in SqliteJournal(str(path)).sessions()}
    assert kept == set(ids[2:])


def test_queued_and_paused_sessions_survive_a_restart_in_their_order(tmp_path):
    path = tmp_path / "sessions.sqlite3"
    # 30 kW: two minimums of 11 fit, the third waits; then the background rises and pauses the newest.
    before = substation_on(path, now=0, allocation="fair", capacity_kw=30)
    first, second = (before.admit(charge(f"EV-{n}", 22, 11, min_power_kw=11), now=0).session for n in (1, 2))
    queued = before.admit(charge("EV-3", 11, 11, min_power_kw=11, wait=True), now=1)
    assert isinstance(queued, Queued)
    before.stop(first.session_id, now=2)  # EV-3 starts at once: its minimum fits
    assert before.session(queued.session.session_id, 2).state == CHARGING
    late = before.admit(charge("EV-4", 11, 11, min_power_kw=11, wait=True), now=3).session
    assert late.state == QUEUED and late.position == 1

    after = substation_on(path, now=4, allocation="fair", capacity_kw=30)
    assert after.session(second.session_id, 4).state == CHARGING
    assert after.session(late.session_id, 4).state == QUEUED and after.session(late.session_id, 4).position == 1
    assert after.report(4).queued_sessions == 1 and after.report(4).active_sessions == 2
    assert after.session(second.session_id, 4).energy_delivered_kwh > 11 * 3 / 10, "its energy so far is kept"


def test_a_paused_session_is_journaled_as_paused(tmp_path):
    path = tmp_path / "sessions.sqlite3"
    # 40 kW peak background at 19:00 simulated: at 18:00 it is 38 kW and rising, leaving 22.7 kW of 61.
    substation = substation_on(path, now=0, allocation="fair", capacity_kw=61, background_peak_kw=40)
    sessions = [substation.admit(charge(f"EV-{n}", 250, 11, min_power_kw=11), now=0).session for n in range(3)]
    assert all(s.state == CHARGING for s in sessions)
    substation.report(18 * 10.0)
    states = {s.session_id: s.state for s in SqliteJournal(str(path)).sessions()}
    assert sorted(states.values()) == [CHARGING, CHARGING, PAUSED]
    assert states[sessions[2].session_id] == PAUSED, "the most recently started is paused first"


def test_a_journal_of_version_0_2_is_taken_over(tmp_path):
    path = tmp_path / "sessions.sqlite3"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE sessions (session_id TEXT PRIMARY KEY, vehicle_id TEXT NOT NULL, power_kw REAL NOT NULL,"
        " energy_kwh REAL NOT NULL, started_at REAL NOT NULL, ends_at REAL NOT NULL, state TEXT NOT NULL,"
        " ended_at REAL)"
    )
    db.executemany(
        "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            ("s1.00000000000000aa", "EV-1", 11, 22, 0, 20, "charging", None),
            ("s1.00000000000000bb", "EV-2", 11, 11, 0, 10, "stopped", 5),
        ],
    )
    db.commit()
    db.close()
    substation = substation_on(path, now=5)
    charging = substation.session("s1.00000000000000aa", 5)
    assert charging.state == CHARGING and charging.allocated_kw == 11
    assert charging.energy_delivered_kwh == pytest.approx(5.5)
    assert substation.session("s1.00000000000000aa", 20).state == COMPLETED
    assert substation.session("s1.00000000000000bb", 5).energy_delivered_kwh == pytest.approx(5.5)


def test_a_journal_of_schema_2_is_rebuilt_keyed_by_session_id_alone_and_keeps_every_session(tmp_path):
    path = tmp_path / "sessions.sqlite3"
    before = substation_on(path, now=0)
    sessions = [before.admit(charge(f"EV-{n}", 11, 11), now=n).session for n in range(3)]
    before.stop(sessions[1].session_id, now=4)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("ALTER TABLE sessions RENAME TO sessions_3")  # as schema 2 kept them: a rowid table, no chargers
    db.execute(CREATE_BEFORE_CHARGERS.removesuffix(" WITHOUT ROWID"))
    db.execute(f"INSERT INTO sessions SELECT {', '.join(COLUMNS_BEFORE_CHARGERS)} FROM sessions_3")
    db.execute("DROP TABLE sessions_3")
    db.execute("PRAGMA user_version = 2")
    db.close()

    after = substation_on(path, now=5)
    states = [after.session(s.session_id, 5).state for s in sessions]
    assert states == [CHARGING, STOPPED, CHARGING]
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 6
    with pytest.raises(sqlite3.OperationalError, match="rowid"):
        db.execute("SELECT rowid FROM sessions")
    assert db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'sessions_before'").fetchone()[0] == 0


def test_a_journal_of_schema_3_takes_its_sessions_over_as_on_no_charger_and_keeps_a_chargers_session(tmp_path):
    path = tmp_path / "sessions.sqlite3"
    before = substation_on(path, now=0)
    session = before.admit(charge("EV-1", 11, 11), now=0).session
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("ALTER TABLE sessions RENAME TO sessions_4")
    db.execute(CREATE_BEFORE_CHARGERS)
    db.execute(f"INSERT INTO sessions SELECT {', '.join(COLUMNS_BEFORE_CHARGERS)} FROM sessions_4")
    db.execute("DROP TABLE sessions_4")
    db.execute("PRAGMA user_version = 3")
    db.close()

    after = substation_on(path, now=1)
    kept = after.session(session.session_id, 1)
    assert kept.state == CHARGING and kept.charger_id is None
    plugged = after.admit(charge("EV-2", 11, 11), now=1, charger=ChargerLink("s1-cp1", "17", 7.5)).session
    again = substation_on(path, now=2).session(plugged.session_id, 2)
    assert (again.charger_id, again.transaction_id) == ("s1-cp1", "17")


class CountingJournal(SqliteJournal):
    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.writes = 0

    def record(self, sessions) -> None:
        self.writes += 1
        super().record(sessions)


@pytest.mark.parametrize("allocation", ["fair", "fixed"])
def test_the_journal_holds_every_session_as_the_substation_does_with_one_write_per_admission_at_full_power(
    tmp_path, allocation
):
    journal = CountingJournal(str(tmp_path / "sessions.sqlite3"))
    substation = make_substation(44.0, journal=journal, now=0, allocation=allocation)

    def kept_as_held() -> bool:
        held = {s.session_id: SqliteJournal._row(s) for s in substation.book.sessions.values()}
        kept = {s.session_id: SqliteJournal._row(s) for s in journal.sessions()}
        return all(kept[key] == row for key, row in held.items())

    writes_per_admission = []
    # Two at their maximum fit (one write each); the third makes them share or waits (more than one).
    for n, (minimum, maximum) in enumerate([(11, 22), (11, 22), (11, 22)]):
        before = journal.writes
        outcome = substation.admit(charge(f"EV-{n}", 11, maximum, min_power_kw=minimum, wait=True), now=n)
        assert isinstance(outcome, Admitted | Queued)
        writes_per_admission.append(journal.writes - before)
        assert kept_as_held(), f"after admission {n}"
    assert writes_per_admission[:2] == [1, 1]
    if allocation == "fair":
        assert writes_per_admission[2] == 2, "journaled at 0 kW, then at its share with the others' new shares"


def test_a_journal_of_schema_4_takes_its_sessions_over_as_three_phase_and_keeps_a_one_phase_cars_phase(tmp_path):
    path = tmp_path / "sessions.sqlite3"
    before = substation_on(path, now=0, allocation="fair")
    session = before.admit(charge("EV-1", 11, 11), now=0).session
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("ALTER TABLE sessions RENAME TO sessions_5")
    db.execute(CREATE_BEFORE_PHASES)
    db.execute(f"INSERT INTO sessions SELECT {', '.join(COLUMNS_BEFORE_PHASES)} FROM sessions_5")
    db.execute("DROP TABLE sessions_5")
    db.execute("PRAGMA user_version = 4")
    db.close()

    after = substation_on(path, now=1, allocation="fair")
    kept = after.session(session.session_id, 1)
    assert kept.state == CHARGING and kept.phases == 3 and kept.grid_phase is None
    one_phase = charge("EV-2", 11, 7.36, min_power_kw=1.38, phases=1)
    plugged = after.admit(one_phase, now=1, charger=ChargerLink("s1-cp1", "17", 3.68, GridPhase.L3)).session
    assert plugged.grid_phase == GridPhase.L3
    again = substation_on(path, now=2, allocation="fair").session(plugged.session_id, 2)
    assert (again.phases, again.grid_phase) == (1, GridPhase.L3)


def test_a_journal_of_schema_5_takes_its_sessions_over_without_departures_and_keeps_a_departure_from_then_on(
    tmp_path,
):
    path = tmp_path / "sessions.sqlite3"
    before = substation_on(path, now=0, allocation="fair")
    session = before.admit(charge("EV-1", 11, 11), now=0).session
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("ALTER TABLE sessions RENAME TO sessions_6")
    db.execute(CREATE_BEFORE_DEPARTURES)
    db.execute(f"INSERT INTO sessions SELECT {', '.join(COLUMNS_BEFORE_DEPARTURES)} FROM sessions_6")
    db.execute("DROP TABLE sessions_6")
    db.execute("PRAGMA user_version = 5")
    db.close()

    after = substation_on(path, now=1, allocation="planned")
    assert after.session(session.session_id, 1).departure_at is None
    leaving = datetime.fromtimestamp(100.0, UTC)
    plugged = after.admit(charge("EV-2", 11, 11, departure_time=leaving), now=1).session
    assert substation_on(path, now=2, allocation="planned").session(plugged.session_id, 2).departure_at == 100.0


def test_a_sessions_new_energy_and_departure_are_kept_and_its_end_moves_with_its_energy(tmp_path):
    from grid_common.protocol import SessionChange
    from substation_service.sessions import SessionEnded

    path = tmp_path / "sessions.sqlite3"
    before = substation_on(path, now=0, allocation="planned")
    session = before.admit(charge("EV-1", 22, 11), now=0).session  # 11 kW: 22 kWh would take 20 s
    leaves = datetime.fromtimestamp(100.0, UTC)
    amended = before.amend(session.session_id, SessionChange(11.0, True, leaves), now=5)
    assert amended is not None and amended.energy_kwh == 11.0 and amended.departure_at == 100.0
    assert amended.energy_delivered_kwh == pytest.approx(5.5), "what it had stays"
    # The process is killed here: the change must be in the journal.
    after = substation_on(path, now=6, allocation="planned")
    restored = after.session(session.session_id, 6)
    assert restored.energy_kwh == 11.0 and restored.departure_at == 100.0
    assert after.session(session.session_id, 9.9).state == CHARGING, "11 kWh at 11 kW: 10 s in all"
    assert after.session(session.session_id, 10.1).state == COMPLETED, "it ends when its new energy is in"
    with pytest.raises(SessionEnded):
        after.amend(session.session_id, SessionChange(22.0), now=11)
    second = after.admit(charge("EV-2", 22, 11), now=11).session
    done = after.amend(second.session_id, SessionChange(0.5), now=12)  # 1.1 kWh is in already
    assert done is not None and done.state == COMPLETED and done.energy_delivered_kwh == pytest.approx(1.1)
    assert after.amend("s1.nothing", SessionChange(5.0), now=12) is None
