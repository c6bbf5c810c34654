"""A substation's EV sessions: admission, the sharing of its headroom, energy and completion.

Pure domain: no Flask, no I/O but the journal it is handed. Time is whatever `now` the caller passes
(wall seconds); nothing runs on its own. Each call first brings the state up to `now` (`_advance`): every
allocation step, and every completion at its exact moment, in order, so energy is the exact integral of the
allocated power, piecewise constant between reallocations, and no session needs a thread.

How the headroom is shared, and so what admission counts, is the substation's policy (policy.py: fair or
fixed). Either way the invariant holds at every instant: EV power allocated + background <= capacity. The
substation checks it at every step from its own state (`counters.overload_seconds`, which stays 0).
The sums it answers from are in totals.py, who placed what in ledger.py, how it writes in journal.py, what
it says of itself in reports.py.
"""

from __future__ import annotations

import contextlib
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from operator import attrgetter

from grid_common.protocol import (
    GRID_PHASES,
    Allocation,
    ChargeRequest,
    ChargerLink,
    GridPhase,
    LoadReport,
    SessionChange,
    SessionReport,
    SessionState,
    new_session_id,
)
from substation_service.background import BackgroundDemand
from substation_service.book import SessionBook
from substation_service.circuits import CircuitTree
from substation_service.counters import Counters
from substation_service.damping import Damping
from substation_service.grid_limits import GridLimits, LimitPeriod
from substation_service.journal import Journal, JournalError, JournalWriter, NoJournal
from substation_service.meter import MeterSettings, lapse
from substation_service.on_chargers import OnChargers
from substation_service.phase_switching import PhaseSwitching, switches
from substation_service.phases import PhaseSupply, roomiest_phase
from substation_service.planning import Plan
from substation_service.policy import TOLERANCE_KW, Committed, Grid, Headroom, Shares, backfill_for, policy_for
from substation_service.sessions import (
    Abandoned,
    Admitted,
    Outdated,
    Queued,
    RefusalReason,
    Refused,
    Session,
    SessionConflict,
    SessionEnded,
)
from substation_service.telling import Telling

# A process that was down long catches up in at most this many steps (each as long as it must be).
MAX_CATCH_UP_STEPS = 2_000
# Far above the drift of a thousand float additions, far below a watt a car could notice.
FIT_MARGIN_KW = 1e-6
ORDER = attrgetter("order")


class UnknownCircuit(ValueError):
    """An admission names a circuit this substation does not have (its CIRCUITS and the registry disagree)."""


class Substation(OnChargers, Telling):
    """All state that must be exact lives here, behind one lock, in one process."""

    def __init__(
        self,
        name: str,
        capacity_kw: float,
        charger_max_power_kw: float,
        time_scale: float,
        background: BackgroundDemand,
        *,
        allocation: Allocation = Allocation.FAIR,
        step_s: float = 1.0,
        lookahead_s: float = 2.5,
        queue_limit: int = 100,
        history_limit: int = 10_000,
        journal: Journal | None = None,
        meters: MeterSettings | None = None,
        supply: PhaseSupply | None = None,
        circuits: CircuitTree | None = None,
        damping: Damping | None = None,
        phase_switching: PhaseSwitching | None = None,
        draining: Callable[[], bool] = lambda: False,
        now: float = 0.0,
    ) -> None:
        self.name = name
        self.draining = draining  # whether its process is shutting down (its reports say so)
        self.limits = GridLimits(capacity_kw)
        self.charger_max_power_kw = charger_max_power_kw
        self.time_scale = time_scale
        self.background = background
        self.step_s = step_s
        # Never shorter than a step: what is admitted must fit at least until the next reallocation.
        self.supply = supply or PhaseSupply()
        self.circuits = circuits or CircuitTree()
        # The grid operator's limits on each circuit: a power over time, none at first (GridLimits at no rating).
        self.circuit_limits = {name: GridLimits(math.inf) for name in self.circuits.circuits}
        self.damping = damping or Damping()
        self.phase_switching = phase_switching or PhaseSwitching()
        self._switching = False  # whether a session on a charger that can switch phases was ever admitted
        self.grid = Grid(
            self.limits,
            charger_max_power_kw,
            background,
            max(lookahead_s, step_s),
            step_s,
            time_scale,
            self.supply,
            self.circuits,
            self.circuit_limits,
        )
        self.policy = policy_for(allocation, self.grid)
        self.allocation = self.policy.kind
        self.queue_limit = queue_limit
        self.meters = meters or MeterSettings()
        self.counters = Counters()
        self.journal = JournalWriter(journal or NoJournal())
        self.book = SessionBook(
            self.policy, time_scale, history_limit, self.journal, self.counters, self.meters, self.circuits
        )
        self.epoch = secrets.token_hex(8)
        self._report_sequence = 0
        self._lock = threading.Lock()
        # Readers of the charger feed wait here for a change (long polling); _locked wakes them.
        self._feed_changed = threading.Condition(self._lock)
        self._fed_header: tuple[float, float, tuple[float, float, float]] | None = None
        self._arrivals = 0
        self._latest = now  # the latest moment the state has reached
        self._allocated_at = now
        self._looked_ahead_s = step_s  # how far the last allocation looked ahead: the next step comes by then
        self._accounted_until = now
        self._energy_baseline_kwh = 0.0  # what sessions restored from the journal had received before
        self._headroom = Headroom(0.0, (0.0, 0.0, 0.0))
        self._levels: dict[int, float] = {}  # per priority, the level of the last fair allocation
        self._all_at_max = True  # every started session draws its maximum
        self._fed_plan: Plan | None = None  # the plan whose limits ahead the charger feed has shown
        # Whether the journal's sessions were read: until they are, nothing is admitted, read or changed.
        self.sessions_known = False
        self._restore(now)

    @property
    def capacity_kw(self) -> float:
        """Its rated capacity: what it holds when the grid operator sets no lower limit."""
        return self.limits.rated_kw

    @capacity_kw.setter
    def capacity_kw(self, kw: float) -> None:
        self.limits.rated_kw = kw

    @property
    def journal_error(self) -> str | None:
        """Why the journal cannot keep what the substation is asked to change; None when it can."""
        return self.journal.error

    # --- queries -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The substation's lock; on the way out, whoever waits for the charger feed is woken if a session on a
        charger changed meanwhile (an admission, a stop, meters, the ticker's step: all come through here), or
        what the feed says of the substation as a whole (a new grid limit, say), which counts as a change."""
        with self._lock:
            before = self.book.change_count
            try:
                yield
            finally:
                header = self.feed_header(self._latest)
                if header != self._fed_header:  # a grid limit, the background: a change of the feed as a whole
                    self._fed_header = header
                    self.book.change_count += 1
                if self.book.change_count != before:
                    self._feed_changed.notify_all()

    def report(self, now: float, balancer: str | None = None) -> LoadReport:
        """The load now; for `balancer`, also what other balancers' sessions draw and how many there are.
        JournalError while its sessions are not known."""
        with self._locked():
            self._require_sessions()
            return self._report(self._advance(now), balancer)

    def session(self, session_id: str, now: float) -> SessionReport | None:
        with self._locked():
            self._require_sessions()
            now = self._advance(now)
            session = self.book.get(session_id)
            return None if session is None else self._session_report(session, now)

    # --- commands ------------------------------------------------------------------------------
    def admit(
        self,
        request: ChargeRequest,
        now: float,
        session_id: str | None = None,
        *,
        placed_by: str | None = None,
        others_ev_power_at_most: float | None = None,
        others_sessions_at_most: int | None = None,
        abandoned: Callable[[], bool] | None = None,
        charger: ChargerLink | None = None,
    ) -> Admitted | Queued | Refused | Outdated | Abandoned:
        """Start the session if it fits now; else queue it if it asked to wait and the queue has room.

        `abandoned` says whether the caller has given up on it (its deadline passed): asked once the lock is
        held, so that an admission read in time but made after that is not made at all (Abandoned), since
        the caller may be placing it elsewhere.

        With a condition (`others_*_at_most`), only if the sessions balancers other than `placed_by` placed
        here stay within it. Its own sessions are left out (its concurrent requests may arrive in any
        order), and so is background demand, which moves with the clock rather than with other balancers'
        choices; sessions that ended only make a condition truer.
        """
        max_kw = min(request.max_power_kw, self.charger_max_power_kw)
        with self._locked():
            self._require_sessions()
            now = self._advance(now)
            existing = None if session_id is None else self.book.get(session_id)
            if existing is not None:
                if not existing.same_request(request, max_kw, None if charger is None else charger.charger_id):
                    raise SessionConflict(existing.session_id)
                kind = Queued if existing.state == SessionState.QUEUED else Admitted
                return kind(self._session_report(existing, now), self._report(now, placed_by), replayed=True)
            if abandoned is not None and abandoned():
                return Abandoned(self._report(now, placed_by))
            if request.min_power_kw > max_kw + TOLERANCE_KW:
                return self._refuse(RefusalReason.CHARGER, request.min_power_kw, now, placed_by)
            book = self.book
            outdated = book.ledger.outdated(
                placed_by, others_ev_power_at_most, others_sessions_at_most, book.totals.ev_power_kw, len(book.sessions)
            )
            session = Session(
                session_id or new_session_id(self.name), request.vehicle_id, request.energy_kwh,
                request.min_power_kw, max_kw, request.priority, requested_at=now, sequence=self._arrivals,
                delivered_at=now, placed_by=placed_by, phases=request.phases, departure_at=request.departure_at,
            )  # fmt: skip
            silent_phase_kw = self._silent_chargers_phase_kw(now)
            committed_phase_kw = [
                committed + silent
                for committed, silent in zip(book.totals.committed_phase_kw, silent_phase_kw, strict=True)
            ]
            if charger is not None:
                session.charger_id, session.transaction_id = charger.charger_id, charger.transaction_id
                session.failsafe_kw = charger.failsafe_kw
                if charger.circuit is not None and charger.circuit not in self.circuits:
                    raise UnknownCircuit(charger.circuit)
                session.circuit = charger.circuit
                session.wired_phase = charger.grid_phase
                session.switchable = charger.phase_switching and session.phases == 3
                self._switching = self._switching or session.switchable
            if charger is not None and charger.grid_phase is not None:
                session.place_on(charger.grid_phase)  # wired there
            else:  # a car without a charger's wiring is put where there is most room
                room = self.grid.admission_phase_headroom_kw(now)
                session.place_on(roomiest_phase([r - c for r, c in zip(room, committed_phase_kw, strict=True)]))
            needed_kw = self.policy.needed_kw(session)
            committed = Committed(
                book.totals.committed_kw + self._silent_chargers_kw(now),
                committed_phase_kw,
                self._circuit_committed_kw(now) if session.circuit is not None else (),
            )
            fits = self.policy.fits(committed, session, now)
            if not fits and session.switchable and self.allocation.shares:
                # Its charger can switch it: on one phase, 6 A on its charger's L1 may fit where 3 x 6 A does not.
                one_phase = session.copy()
                one_phase.switch_to(1, session.wired_phase or GridPhase.L1, now)
                if self.policy.fits(committed, one_phase, now):
                    session, fits = one_phase, True
                    self.counters.phase_switches += 1
            if fits and (not self._blocked(session.priority) or self._backfills(session, now)):
                if outdated:
                    return Outdated(outdated, self._report(now, placed_by))
                return self._begin(session, now)
            if not request.wait:
                return self._refuse(RefusalReason.CAPACITY, needed_kw, now, placed_by)
            if len(book.queue) >= self.queue_limit:
                return self._refuse(RefusalReason.QUEUE, needed_kw, now, placed_by)
            if outdated:
                return Outdated(outdated, self._report(now, placed_by))
            if not self.journal.record([session]):
                return self._refuse(RefusalReason.JOURNAL, needed_kw, now, placed_by)
            self._arrivals += 1
            book.enqueue(session)
            return Queued(self._session_report(session, now), self._report(now, placed_by))

    def _begin(self, session: Session, now: float) -> Admitted | Refused:
        """A new session that starts now. Journaled as it starts: at the power it will draw when that is its
        maximum, which the reallocation then leaves as it is (one write per admission, not two); else at 0 kW
        until the reallocation gives it its share and writes that."""
        headroom = self._step_headroom(now, self.step_s)
        totals = self.book.totals
        max_phase_kw = [
            kw + weight * session.max_kw for kw, weight in zip(totals.max_phase_kw, session.weights, strict=True)
        ]
        at_full_power = self._draws_max(totals.max_sum_kw + session.max_kw, max_phase_kw, totals.paused, headroom)
        started = session.copy(state=SessionState.PAUSED, started_at=now, delivered_at=now, schedule=deque())
        if at_full_power:
            started.set_limit(session.max_kw, now)
            started.state = SessionState.CHARGING
        if not self.journal.record([started]):
            return self._refuse(RefusalReason.JOURNAL, self.policy.needed_kw(session), now, session.placed_by)
        self._arrivals += 1
        self.book.start(session, now)
        self._reallocate(now, journaled=session if at_full_power else None)
        self.book.ledger.count_started(session.placed_by)
        return Admitted(self._session_report(session, now), self._report(now, session.placed_by))

    def stop(self, session_id: str, now: float) -> SessionReport | None:
        """End a session early (a queued one is cancelled) and share its power; a finished one is returned."""
        with self._locked():
            self._require_sessions()
            now = self._advance(now)
            session = self.book.sessions.get(session_id)
            if session is None:
                finished = self.book.finished.get(session_id)
                return None if finished is None else self._session_report(finished, now)
            was_started = session.started
            ended = self._settled_copy(session, now, state=SessionState.STOPPED, ended_at=now, allocated_kw=0.0)
            if not self.journal.record([ended]):
                raise JournalError(self.journal_error)
            self.book.finish(session, SessionState.STOPPED, now)
            self.counters.stopped += 1
            if was_started:
                self._reallocate(now)
            return self._session_report(session, now)

    def amend(self, session_id: str, change: SessionChange, now: float) -> SessionReport | None:
        """A running session's energy or departure said anew (its driver, or its car through OCPP's
        NotifyEVChargingNeeds): kept in the journal, planned and shared anew at once. None for a session it does
        not know; SessionEnded for one that ended. An energy already delivered completes the session now."""
        with self._locked():
            self._require_sessions()
            now = self._advance(now)
            session = self.book.sessions.get(session_id)
            if session is None:
                finished = self.book.finished.get(session_id)
                if finished is None:
                    return None
                raise SessionEnded(self._session_report(finished, now))
            energy_kwh = session.energy_kwh if change.energy_kwh is None else change.energy_kwh
            departure_at = change.departure_at if change.departs else session.departure_at
            amended = self._settled_copy(session, now, energy_kwh=energy_kwh, departure_at=departure_at)
            if not self.journal.record([amended]):
                raise JournalError(self.journal_error)
            book, was_started = self.book, session.started
            if was_started:
                session.settle(now, self.time_scale)
            session.energy_kwh, session.departure_at = energy_kwh, departure_at
            session.version += 1  # its end moves with its energy
            self.policy.plan = None  # what the plan promised was for the old needs
            self._all_at_max = False
            book.changed(session)
            if was_started and session.delivered_kwh >= energy_kwh:
                session.energy_kwh = session.delivered_kwh  # what it got is a fact: it is done with that
                book.finish(session, SessionState.COMPLETED, now)
                self.counters.completed += 1
            elif session.state == SessionState.CHARGING:
                book.ends.push(session, self.time_scale)
            if was_started:
                self._reallocate(now)
            return self._session_report(session, now)

    def set_grid_limits(self, periods: Sequence[LimitPeriod], now: float, circuit: str | None = None) -> None:
        """The grid operator's schedule of limits on the substation, or on one of its circuits, replacing the last
        (none: no limit); shared anew at once, so a limit in force now holds from now. InvalidSchedule, and nothing
        changed, for one that cannot be kept; UnknownCircuit for a circuit it does not have; JournalError for one
        the journal cannot keep (a restart must not forget a limit)."""
        if circuit is not None and circuit not in self.circuit_limits:
            raise UnknownCircuit(circuit)
        limits = self.limits if circuit is None else self.circuit_limits[circuit]
        with self._locked():
            self._require_sessions()
            now = self._advance(now)
            # Known from now: a period said to start earlier (the clock was read before the lock) starts now.
            periods = [replace(p, start=max(p.start, now)) if p.end > now else p for p in periods]
            limits.check(periods, now)
            if not self.journal.record_limits(periods, circuit or ""):  # kept as sessions are, or not changed at all
                raise JournalError(self.journal_error)
            limits.set(periods, now)
            self._all_at_max = False
            self._reallocate(now)

    def advance(self, now: float) -> None:
        """Bring every session up to `now`: what a ticker calls every step, so metrics and queues move; and a
        journal in error is tried again, so that the substation comes back by itself once it can write."""
        with self._locked():
            self._try_journal(now)
            if self.sessions_known:
                self._advance(now)

    def check_journal(self, now: float) -> str | None:
        """Why the journal cannot keep what it is asked to change, having tried it again now; None if it can."""
        with self._locked():
            self._try_journal(now)
            return self.journal_error

    # --- internals (lock held) -----------------------------------------------------------------
    def _settled_copy(self, session: Session, now: float, **changes: object) -> Session:
        """The session with `changes` and its energy counted to `now`: what the journal keeps before it changes."""
        twin = session.copy(**changes)
        twin.delivered_kwh, twin.delivered_at = session.delivered(now, self.time_scale), now
        return twin

    def _require_sessions(self) -> None:
        if not self.sessions_known:
            raise JournalError(self.journal_error)

    def _try_journal(self, now: float) -> None:
        """A journal in error, tried again: opened and read if it never was (then the sessions are known)."""
        if self.journal.error is None:
            return
        if not self.sessions_known:
            if self.journal.reopen():
                self._restore(now)
        else:
            self.journal.try_again()

    def _blocked(self, priority: int) -> bool:
        """Paused sessions, and queued ones of the same or a higher priority, go first."""
        queue = self.book.queue
        return self.book.totals.paused > 0 or bool(queue and queue[0].priority >= priority)

    def _backfills(self, session: Session, now: float) -> bool:
        """Whether a newcomer that fits now may start ahead of the queue's head, which waits, since that cannot
        delay the head's foreseen start (forecast.py). Never while a session is paused: those go first."""
        book = self.book
        if book.totals.paused or not book.queue:
            return False
        backfill = backfill_for(self.policy, book.queue[0], book.started, [], book.totals.committed_kw, now)
        # A head that fits now starts at the next step, and those behind it in order: none goes before it.
        return backfill.head_start > now and backfill.allows(session, now)

    def _refuse(self, reason: RefusalReason, needed_kw: float, now: float, balancer: str | None) -> Refused:
        self.counters.refused[reason] += 1
        report = self._report(now, balancer)
        return Refused(reason, report, needed_kw, report.next_session_end_s)

    def _advance(self, now: float) -> float:
        """Every reallocation step and every completion up to `now`, in order, each at its own moment; `now`
        itself, or the latest moment already reached if it is later: requests read the clock before they
        take the lock, so one that read it earlier may come second, and time must not run back."""
        now = self._latest = max(now, self._latest)
        step_s = max(self.step_s, (now - self._allocated_at) / MAX_CATCH_UP_STEPS)
        while True:
            # A catch-up's longer steps begin after the last allocation's own look-ahead, which it was made for.
            next_step = self._allocated_at + min(step_s, self._looked_ahead_s)
            next_end = self.book.next_end()
            moment = next_step if next_end is None else min(next_step, next_end)
            if moment > now:
                # Accounted up to now with the state as it was: whatever the caller changes next counts from now.
                self._account(now)
                self.limits.forget_ended(self._accounted_until)  # what has been accounted for needs them no more
                for limits in self.circuit_limits.values():
                    limits.forget_ended(self._accounted_until)
                return now
            self._account(moment)
            self.book.complete_due(moment)
            self._reallocate(moment, step_s)

    def _step_headroom(self, moment: float, step_s: float) -> Headroom:
        """What the sessions may draw together over the step from `moment`, in total and on each phase: capacity
        less the background's peak, and less what silent chargers may draw on their own."""
        end = moment + step_s
        capacity = self.limits.capacity_between(moment, end)
        background_kw = self.background.peak_between(moment, end)
        total = max(0.0, capacity - background_kw - self._silent_chargers_kw(moment))
        phases = self.supply.headrooms(self.limits.rated_kw, background_kw, self._silent_chargers_phase_kw(moment))
        if not self.circuits:
            return Headroom(total, phases)
        silent = self._circuit_silent_kw(moment)
        capacities = self.grid.circuit_capacities(moment, end)
        return Headroom(total, phases, tuple(max(0.0, c - s) for c, s in zip(capacities, silent, strict=True)))

    def _circuit_silent_kw(self, moment: float) -> list[float]:
        """On each circuit limit: what silent chargers may draw on their own (kept sums: charger_draws.py)."""
        return self.book.draws.on_circuits(moment, self.book.on_chargers)[0]

    def _circuit_committed_kw(self, moment: float) -> list[float]:
        """On each circuit limit: what admission counts for the started sessions, with the silent draws."""
        silent = self._circuit_silent_kw(moment)
        return [kw + extra for kw, extra in zip(self.book.totals.committed_circuit_kw, silent, strict=True)]

    def _circuit_counted_kw(self, moment: float) -> list[float]:
        """On each circuit limit: the power counted against it (allocated, or measured where meters speak), with
        the silent draws."""
        silent, beyond = self.book.draws.on_circuits(moment, self.book.on_chargers)
        allocated = self.book.totals.ev_circuit_kw
        return [kw + a + b for kw, a, b in zip(allocated, silent, beyond, strict=True)]

    def _draws_max(self, max_sum_kw: float, max_phase_kw: Sequence[float], paused: int, headroom: Headroom) -> bool:
        """Whether every started session draws its maximum over the next step, their maxima summing to
        `max_sum_kw` (`max_phase_kw` on each phase): none was held back, none is paused or waits, and the maxima
        fit the `headroom`."""
        return (
            self._all_at_max
            and not paused
            and not self.book.queue
            and not self.damping.ramp_per_s  # a ramp starts every car at its minimum
            and not self._switching  # a car switched to one phase may switch back: every step looks
            and not self.circuits  # the maxima are not summed per circuit: share every step
            and max_sum_kw <= headroom.total_kw + TOLERANCE_KW
            and all(kw <= room + TOLERANCE_KW for kw, room in zip(max_phase_kw, headroom.phase_kw, strict=True))
        )

    def _reallocate(self, moment: float, step_s: float | None = None, *, journaled: Session | None = None) -> None:
        """Share the headroom over the next step among the started sessions, start what fits from the
        queue, and account the interval that ends here for overload. `journaled`: a session just started,
        already journaled at its maximum, which needs no second write if that is what it gets."""
        began = time.perf_counter()
        step_s = step_s or self.step_s
        self._account(moment)
        capped = self.book.capped
        for session in list(capped.values()):
            if lapse(session, moment, self.meters):
                del capped[session.session_id]
                self._all_at_max = False  # its share comes back: share anew
        headroom = self._step_headroom(moment, step_s)
        book, totals = self.book, self.book.totals
        paused_before = totals.paused - len(book.fresh)  # the fresh ones are at 0 kW only until now
        if self._draws_max(totals.max_sum_kw, totals.max_phase_kw, paused_before, headroom):
            # Every session draws its maximum and still fits: only those just started need their power.
            for session in book.fresh:
                book.apply(session, session.max_kw, moment)
            changed = [session for session in book.fresh if session is not journaled]
            self.policy.plan_ahead(book.started, headroom.total_kw, moment)
        else:
            shares = self._shares(headroom, moment)
            reshaped = self._switch_phases(shares, headroom, moment) if self._switching else []
            if reshaped:  # shared anew with the cars on their new phases
                shares = self._shares(headroom, moment)
            for head in shares.starts:
                book.start(head, moment)
            self._levels = shares.levels
            if self.damping.ramp_per_s:
                elapsed, ramp = moment - self._allocated_at, self.damping.next_kw
                changed = [
                    s
                    for s in book.started
                    if book.apply(
                        s, ramp(s.allocated_kw, shares.kw.get(s.session_id, 0.0), s.min_kw, s.max_kw, elapsed), moment
                    )
                ]
            else:
                changed = [s for s in book.started if book.apply(s, shares.kw.get(s.session_id, 0.0), moment)]
            if journaled is not None and journaled not in changed:
                changed.append(journaled)  # journaled at its maximum, it got another share: write that
            changed.extend(s for s in reshaped if s not in changed)
        book.fresh = []
        if self.policy.plan is not self._fed_plan:
            self._fed_plan = self.policy.plan  # a new plan: chargers with a departure learn the limits ahead
            for session in book.on_chargers.values():
                if session.departure_at is not None and session.state == SessionState.CHARGING:
                    book.changed(session)
        self.journal.write_behind(changed)
        self._all_at_max = totals.paused == 0 and all(level == math.inf for level in self._levels.values())
        self._headroom = headroom
        self._allocated_at = moment
        self._looked_ahead_s = step_s
        book.ends.compact(book.sessions, self.time_scale)
        self.counters.reallocations.observe(time.perf_counter() - began)

    def _shares(self, headroom: Headroom, moment: float) -> Shares:
        """The policy's shares of `headroom` over the step from `moment`, for the sessions as they are now."""
        book, totals = self.book, self.book.totals
        committed = Committed(
            totals.committed_kw,
            totals.committed_phase_kw,
            self._circuit_committed_kw(moment) if self.circuits else (),
        )
        return self.policy.shares(
            book.started,
            book.queue,
            headroom,
            committed,
            moment,
            even=totals.uneven == 0,
            held=self._held(moment),
            everyone_fits=self._everyone_fits(headroom),
        )

    def _everyone_fits(self, headroom: Headroom) -> bool:
        """Whether what admission counts for the started sessions (kept sums: totals.py) fits under every limit of
        the step's `headroom` with a margin that float drift in the sums cannot eat: then each of them fits."""
        totals = self.book.totals
        return (
            totals.committed_kw <= headroom.total_kw - FIT_MARGIN_KW
            and all(
                kw <= room - FIT_MARGIN_KW
                for kw, room in zip(totals.committed_phase_kw, headroom.phase_kw, strict=True)
            )
            and all(
                kw <= room - FIT_MARGIN_KW
                for kw, room in zip(totals.committed_circuit_kw, headroom.circuits_kw, strict=True)
            )
        )

    def _switch_phases(self, shares: Shares, headroom: Headroom, moment: float) -> list[Session]:
        """Cars on chargers that can switch phases, switched now (phase_switching.py): a paused 3-phase car whose
        minimum on one phase fits goes to one phase; one switched down goes back to three once there is room."""
        if not self.allocation.shares:
            return []
        candidates = [s for s in self.book.started if s.switchable]
        if not candidates:
            return []
        used_total, used_phase = 0.0, [0.0, 0.0, 0.0]
        for session in self.book.started:
            kw = shares.kw.get(session.session_id, 0.0)
            used_total += kw
            for phase in range(3):
                used_phase[phase] += session.weights[phase] * kw
        decided = switches(
            candidates,
            shares.kw,
            headroom.total_kw - used_total,
            [room - used for room, used in zip(headroom.phase_kw, used_phase, strict=True)],
            moment,
            self.phase_switching,
        )
        for switch in decided:
            self.book.reshape(switch.session, switch.phases, switch.grid_phase, moment)
            self.counters.phase_switches += 1
        return [switch.session for switch in decided]

    def _held(self, moment: float) -> int | None:
        """The place among the started sessions of the first paused one that must stay paused yet (damping.py);
        None when none must. Only paused sessions are looked at, and only with a least pause set."""
        if not self.damping.min_pause_s or not self.book.totals.paused:
            return None
        for place, session in enumerate(self.book.started):
            if session.state == SessionState.PAUSED and self.damping.still_paused(session.paused_at, moment):
                return place
        return None

    def _account(self, moment: float) -> None:
        """The interval since the power last changed: had EV power and background exceeded capacity (or the grid
        operator's limit) in it? Called before every change of power, so the power was constant over the interval.
        A limit below the background alone, with no car drawing, is the grid's state, not an overload by cars."""
        if moment <= self._accounted_until:
            return
        background_peak = self.background.peak_between(self._accounted_until, moment)
        capacity = self.limits.capacity_between(self._accounted_until, moment)
        ev_kw = self.counted_ev_power_kw(moment)
        if ev_kw > TOLERANCE_KW and (
            ev_kw + background_peak > capacity + TOLERANCE_KW
            or any(phase_kw < -TOLERANCE_KW for phase_kw in self._phase_room_kw(moment, background_peak))
            or self._circuit_over(moment)
        ):
            self.counters.overload_seconds += moment - self._accounted_until
        self._accounted_until = moment

    def circuit_report(self, now: float) -> list[dict]:
        """Each circuit, its limit and what is counted against it now: in A on each phase (current limits) or in
        kW (power limits); JournalError while its sessions are not known."""
        with self._locked():
            self._require_sessions()
            return self._circuit_report(self._advance(now))

    def _circuit_report(self, now: float) -> list[dict]:
        """circuit_report, the lock held."""
        counted = self._circuit_counted_kw(now)
        report, amperes = [], self.supply.amperes
        for circuit in self.circuits.circuits.values():
            entry: dict = {"name": circuit.name, "parent": circuit.parent}
            used = [counted[i] for i, limit in enumerate(self.circuits.limits) if limit.circuit == circuit.name]
            if circuit.max_current_a is not None:
                entry["max_current_a"] = circuit.max_current_a
                entry["current_a"] = {p.value: round(amperes(kw), 3) for p, kw in zip(GRID_PHASES, used, strict=True)}
            else:
                entry["max_power_kw"] = circuit.max_power_kw
                entry["power_kw"] = round(used[0], 3)
            in_force = self.circuit_limits[circuit.name].in_force(now)
            entry["grid_limit_kw"] = None if in_force is None else in_force.limit_kw
            report.append(entry)
        return report

    def _circuit_over(self, moment: float) -> bool:
        """Whether a circuit carries more than its limit (never: the allocator keeps it so, meters permitting)."""
        if not self.circuits:
            return False
        counted = self._circuit_counted_kw(moment)
        capacities = self.grid.circuit_capacities(self._accounted_until, moment)
        return any(c > cap + TOLERANCE_KW for c, cap in zip(counted, capacities, strict=True))

    def _restore(self, now: float) -> None:
        """Take back every session the journal kept: a restarted process knows what it knew, then catches up
        with what happened while it was down (sessions that ended, steps that passed)."""
        try:
            kept = self.journal.sessions()
            kept_limits = self.journal.limits()  # a limit forgotten would be overrun: unreadable, nothing is known
            kept_circuit_limits = {name: self.journal.limits(name) for name in self.circuit_limits}
        except JournalError:
            return
        self.sessions_known = True
        self.limits.restore(kept_limits)  # ended ones go as the catch-up passes them
        for name, periods in kept_circuit_limits.items():
            self.circuit_limits[name].restore(periods)
        self._arrivals = max([self._arrivals, *(session.sequence + 1 for session in kept)])
        self._energy_baseline_kwh = sum(s.delivered_kwh for s in kept if not s.state.ended)
        last_moment = self.book.restore(kept)
        self._allocated_at = self._accounted_until = min(now, last_moment) if last_moment is not None else now
        self._all_at_max = False  # the first step reallocates all
        self._reallocate(self._advance(now))  # the headroom is known from the start
