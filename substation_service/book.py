"""Every session a substation holds, in the orders that matter, with what is kept over them: the state on
which substation.py decides. A session changes state only through here (start, finish, a new power), so that
the sums (totals.py), who placed what (ledger.py), when sessions end (ends.py), the counters and the
journal's write-behind follow it."""

from __future__ import annotations

import bisect
from collections import OrderedDict
from operator import attrgetter

from grid_common.protocol import GridPhase, SessionState
from substation_service.charger_draws import ChargerDraws
from substation_service.circuits import CircuitTree
from substation_service.counters import Counters
from substation_service.ends import Completions
from substation_service.journal import JournalWriter
from substation_service.ledger import BalancerLedger
from substation_service.meter import MeterSettings
from substation_service.policy import Policy
from substation_service.sessions import Session
from substation_service.totals import Totals

ORDER = attrgetter("order")


class SessionBook:
    def __init__(
        self,
        policy: Policy,
        time_scale: float,
        history_limit: int,
        journal: JournalWriter,
        counters: Counters,
        meters: MeterSettings,
        circuits: CircuitTree | None = None,
    ) -> None:
        self.policy = policy
        self.time_scale = time_scale
        self.history_limit = history_limit
        self.journal = journal
        self.counters = counters
        self.sessions: dict[str, Session] = {}  # queued, charging and paused
        self.started: list[Session] = []  # charging and paused, in order (Session.order)
        self.queue: list[Session] = []  # queued, in order
        self.finished: OrderedDict[str, Session] = OrderedDict()  # the latest `history_limit`
        self.fresh: list[Session] = []  # started since the last reallocation: at 0 kW until it
        self.ends = Completions()
        self.totals = Totals(circuits)
        self.ledger = BalancerLedger()
        # Sessions plugged into a charger, queued or started: a queued car's charger holds it at 0 kW only while
        # its limits reach it.
        self.on_chargers: dict[str, Session] = {}
        self.capped: dict[str, Session] = {}  # those of them that draw less than their maximum (meter.py)
        self.draws = ChargerDraws(meters, circuits)  # what they add to the power capacity is checked against
        # Sessions on chargers, by the number of the change that last touched them (OCPP service's feed).
        self.charger_changes: dict[str, int] = {}
        self.change_count = 0

    def get(self, session_id: str) -> Session | None:
        """A session held now or finished lately."""
        return self.sessions.get(session_id) or self.finished.get(session_id)

    def next_end(self) -> float | None:
        return self.ends.next(self.sessions)

    def enqueue(self, session: Session) -> None:
        self.sessions[session.session_id] = session
        bisect.insort(self.queue, session, key=ORDER)
        self._count(session, +1)
        self.counters.queued += 1
        if session.charger_id is not None:
            self.on_chargers[session.session_id] = session
        self.changed(session)

    def changed(self, session: Session) -> None:
        """A session on a charger changed (its state or limit): the feed shows it again."""
        if session.charger_id is not None:
            self.change_count += 1
            self.charger_changes[session.session_id] = self.change_count
            self.draws.touch(session)

    def heard(self, session: Session, power_kw: float, moment: float) -> None:
        """A queued session's charger says what it draws: held at 0 kW by it, it counts but is not shared."""
        session.meter.power_kw, session.meter.read_at = power_kw, moment
        self.draws.touch(session)

    def start(self, session: Session, now: float) -> None:
        """Queued or new, it starts: at 0 kW until the reallocation that follows gives it its power."""
        if session.state == SessionState.QUEUED and session.session_id in self.sessions:
            self._count(session, -1)
            self.queue.remove(session)
            self.counters.waits.observe(now - session.requested_at)
        session.state = SessionState.PAUSED
        session.started_at = session.delivered_at = now
        self.sessions[session.session_id] = session
        if session.charger_id is not None:
            self.on_chargers[session.session_id] = session
        bisect.insort(self.started, session, key=ORDER)
        self._count(session, +1)
        self.fresh.append(session)
        self.counters.started += 1
        self.changed(session)

    def reshape(self, session: Session, phases: int, grid_phase: GridPhase | None, moment: float) -> None:
        """A started session switched to `phases` (phase_switching.py): its bounds a phase stay, its sums move."""
        self._count(session, -1)
        session.settle(moment, self.time_scale)
        session.switch_to(phases, grid_phase, moment)
        self._count(session, +1)
        self.changed(session)

    def apply(self, session: Session, kw: float, moment: float) -> bool:
        """Give a started session its new power (0: paused); whether anything changed."""
        state = SessionState.CHARGING if kw > 0 else SessionState.PAUSED
        if kw == session.allocated_kw and state == session.state:
            return False
        session.settle(moment, self.time_scale)
        if state == session.state == SessionState.CHARGING:  # the usual change: the sums move by the difference
            delta = kw - session.allocated_kw
            self.totals.change_power(session, delta)
            self.ledger.change_power(session, delta)
            session.set_limit(kw, moment)
        else:
            if session.state == SessionState.CHARGING:
                self.counters.paused += 1
                session.paused_at = moment
            self._count(session, -1)
            session.set_limit(kw, moment)
            session.state = state
            self._count(session, +1)
        if state == SessionState.CHARGING:
            self.ends.push(session, self.time_scale)
        self.changed(session)
        return True

    def meter(self, session: Session, energy_kwh: float | None, moment: float) -> None:
        """A started session's meter read `session.meter.power_kw` now, and `energy_kwh` since it started: the
        energy is the meter's from here on, and it flows at what the car draws, up to its limit."""
        session.settle(moment, self.time_scale)
        if energy_kwh is not None:
            session.delivered_kwh = energy_kwh
            session.meter.energy_kwh = energy_kwh
        measured = session.meter.power_kw or 0.0
        session.flow_kw = min(measured, session.allocated_kw)
        session.version += 1  # its end moves
        if session.cap_kw < session.max_kw:
            self.capped[session.session_id] = session
        else:
            self.capped.pop(session.session_id, None)
        self.draws.touch(session)
        if session.state == SessionState.CHARGING:
            self.ends.push(session, self.time_scale)

    def complete_due(self, moment: float) -> None:
        """Every session whose energy is all delivered by `moment` completes, at its own moment."""
        while (due := self.ends.pop_due(self.sessions, moment)) is not None:
            end, session = due
            session.settle(end, self.time_scale)
            session.delivered_kwh = session.energy_kwh
            self.finish(session, SessionState.COMPLETED, end)
            self.counters.completed += 1

    def finish(self, session: Session, state: SessionState, moment: float) -> None:
        """It ends (completed, or stopped) at `moment`: out of the sums, into the history."""
        self._count(session, -1)
        if session.started:
            session.settle(moment, self.time_scale)
            self.started.remove(session)
        elif session.state == SessionState.QUEUED:
            self.queue.remove(session)
        session.state = state
        session.ended_at = moment
        if session.allocated_kw:
            session.set_limit(0.0, moment)
        session.version += 1
        del self.sessions[session.session_id]
        self.capped.pop(session.session_id, None)
        self.on_chargers.pop(session.session_id, None)
        self.changed(session)
        self.journal.write_behind([session])
        self.counters.energy_finished_kwh += session.delivered_kwh
        self.finished[session.session_id] = session
        self.trim_history()

    def restore(self, kept: list[Session]) -> float | None:
        """Take back the sessions a journal kept, in order of arrival; when the latest of them last changed."""
        last_moment = None
        for session in kept:
            self.changed(session)
            if session.state.ended:
                self.finished[session.session_id] = session
                continue
            self.sessions[session.session_id] = session
            self._count(session, +1)
            if session.state == SessionState.QUEUED:
                bisect.insort(self.queue, session, key=ORDER)
                if session.charger_id is not None:
                    self.on_chargers[session.session_id] = session
                continue
            bisect.insort(self.started, session, key=ORDER)
            if session.charger_id is not None:
                # What it drew while this process was down is the meter's to say, not a replay of its limit.
                session.meter.power_kw = session.flow_kw = 0.0
                self.on_chargers[session.session_id] = session
            self.ends.push(session, self.time_scale)
            last_moment = session.delivered_at if last_moment is None else max(last_moment, session.delivered_at)
        self.trim_history()
        return last_moment

    def trim_history(self) -> None:
        dropped = []
        while len(self.finished) > self.history_limit:
            dropped.append(self.finished.popitem(last=False)[0])
            self.charger_changes.pop(dropped[-1], None)
        if dropped:
            self.journal.forget(dropped)  # rows kept longer than the history: trimmed next time if not now

    def _count(self, session: Session, sign: int) -> None:
        """A session counted in (+1) or out (-1) of the sums, in its state now."""
        self.totals.add(session, self.policy.needed_kw(session), sign)
        self.ledger.add(session, sign)
        if not self.sessions or (len(self.sessions) == 1 and sign < 0):
            self.totals.reset()
