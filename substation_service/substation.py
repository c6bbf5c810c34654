"""A substation's EV sessions: admission, the sharing of its headroom, energy and completion.

Pure domain: no Flask, no I/O but the journal it is handed. Time is whatever `now` the caller passes
(wall seconds); nothing runs on its own. Each call first brings the state up to `now` (`_advance`):
every allocation step, and every completion at its exact moment, in order, so energy is the exact
integral of the allocated power, piecewise constant between reallocations, and no session needs a thread.

Two ways to allocate, chosen per substation:
- fair (the default): a session is admitted when its minimum fits with everyone's under the headroom
  over the admission's look-ahead. The headroom over the next step is shared: every charging session
  its minimum, then priority by priority, max-min fair (allocation.py). When the background rises until
  minimums no longer fit, the lowest-priority, most recently started sessions are paused (0 kW), and
  resumed in that order as soon as they fit again. Queued sessions start, in order, once they fit.
- fixed: each session draws its maximum for its whole life, admitted only if that fits under capacity
  with the background's peak over its whole life; never paused.
Either way the invariant holds at every instant: EV power allocated + background <= capacity. The
substation checks it at every step from its own state (`counters.overload_seconds`, which stays 0).
"""

from __future__ import annotations

import bisect
import contextlib
import heapq
import math
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from operator import attrgetter

from grid_common.protocol import (
    CHARGING,
    COMPLETED,
    DEFAULT_MAX_POWER_KW,
    DEFAULT_MIN_POWER_KW,
    FAIR,
    FIXED,
    PAUSED,
    PRIORITIES,
    QUEUED,
    STOPPED,
    ChargeRequest,
    LoadReport,
    SchedulePeriod,
    SessionReport,
    new_session_id,
)
from substation_service.allocation import allocate_with_levels, fitting_prefix, jain_index
from substation_service.background import BackgroundDemand
from substation_service.counters import Counters
from substation_service.sessions import (
    Abandoned,
    Admitted,
    Journal,
    JournalError,
    NoJournal,
    Outdated,
    Queued,
    Refused,
    Session,
    SessionConflict,
)

# Float sums of kW drift; a session that fits to within a milliwatt fits.
TOLERANCE_KW = 1e-6
# A process that was down long catches up in at most this many steps (each as long as it must be).
MAX_CATCH_UP_STEPS = 2_000
ORDER = attrgetter("order")
# Balancers whose started sessions a substation keeps counting (started_for_you): each gunicorn worker of
# each balancer replica is one, and one forgotten only makes that balancer count in flight more cautiously.
REMEMBERED_BALANCERS = 1024


class Substation:
    """All state that must be exact lives here, behind one lock, in one process."""

    def __init__(
        self,
        name: str,
        capacity_kw: float,
        charger_max_power_kw: float,
        time_scale: float,
        background: BackgroundDemand,
        *,
        allocation: str = FAIR,
        step_s: float = 1.0,
        lookahead_s: float = 2.5,
        queue_limit: int = 100,
        schedule_limit: int = 48,
        history_limit: int = 10_000,
        journal: Journal | None = None,
        now: float = 0.0,
    ) -> None:
        if allocation not in (FAIR, FIXED):
            raise ValueError(f"allocation is {FAIR} or {FIXED}, not {allocation!r}")
        self.name = name
        self.capacity_kw = capacity_kw
        self.charger_max_power_kw = charger_max_power_kw
        self.time_scale = time_scale
        self.background = background
        self.allocation = allocation
        self.step_s = step_s
        # Never shorter than a step: what is admitted must fit at least until the next reallocation.
        self.lookahead_s = max(lookahead_s, step_s)
        self.queue_limit = queue_limit
        self.schedule_limit = schedule_limit
        self.history_limit = history_limit
        self.counters = Counters()
        self.epoch = secrets.token_hex(8)
        self._report_sequence = 0
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}  # queued, charging and paused
        self._started: list[Session] = []  # charging and paused, in order (Session.order)
        self._queue: list[Session] = []  # queued, in order
        self._finished: OrderedDict[str, Session] = OrderedDict()
        self._ends: list[tuple[float, int, str]] = []  # min-heap (end, version, id); stale entries skipped
        self._arrivals = 0
        self._latest = now  # the latest moment the state has reached
        self._allocated_at = now
        self._accounted_until = now
        self._energy_baseline_kwh = 0.0  # what sessions restored from the journal had received before
        self._headroom_kw = 0.0
        self._levels: dict[int, float] = {}  # per priority, the level of the last fair allocation
        # Sums over the sessions here, kept as they change (_contribute), so that no answer walks them all.
        self._ev_power_kw = 0.0  # allocated to started sessions
        self._committed_kw = 0.0  # what admission counts for started sessions
        self._max_sum_kw = 0.0  # the maxima of started sessions
        self._queued_max_kw = 0.0
        self._paused = 0
        self._excess_kw = [0.0] * len(PRIORITIES)  # per priority: charging sessions' power above their minimum
        self._charging = [0] * len(PRIORITIES)  # per priority: charging sessions
        self._by_balancer: dict[str, list[float]] = {}  # balancer -> [kW allocated, sessions]
        self._started_for: OrderedDict[str, int] = OrderedDict()  # balancer -> sessions started at admission
        self._all_at_max = True  # every started session draws its maximum
        self._fresh: list[Session] = []  # started since the last reallocation: at 0 kW until it
        self._journal: Journal = journal or NoJournal()
        # What changed on its own (allocations, completions, starts from the queue) while the journal could
        # not write: written, latest state, at the next chance. `journal_error` says why, meanwhile.
        self._unwritten: dict[str, Session] = {}
        self.journal_error: str | None = None
        # Whether the journal's sessions were read: until they are, nothing is admitted, read or changed.
        self.sessions_known = False
        self._restore(now)

    # --- queries -------------------------------------------------------------------------------
    def report(self, now: float, balancer: str | None = None) -> LoadReport:
        """The load now; for `balancer`, also what other balancers' sessions draw and how many there are.
        JournalError while its sessions are not known."""
        with self._lock:
            self._require_sessions()
            now = self._advance(now)
            return self._report(now, balancer)

    def session(self, session_id: str, now: float) -> SessionReport | None:
        with self._lock:
            self._require_sessions()
            now = self._advance(now)
            session = self._sessions.get(session_id) or self._finished.get(session_id)
            return None if session is None else self._session_report(session, now)

    def sessions_by_state(self, now: float) -> dict[str, int]:
        with self._lock:
            now = self._advance(now)
            return {QUEUED: len(self._queue), CHARGING: len(self._started) - self._paused, PAUSED: self._paused}

    def oldest_wait_s(self, now: float) -> float:
        """How long the session longest in the queue has waited; 0 with an empty queue."""
        with self._lock:
            now = self._advance(now)
            return max((now - session.requested_at for session in self._queue), default=0.0)

    def energy_delivered_kwh(self, now: float) -> float:
        """While this process ran (a Prometheus counter: it starts again at 0 with the process)."""
        with self._lock:
            now = self._advance(now)
            current = sum(s.delivered(now, self.time_scale) for s in self._sessions.values())
            return self.counters.energy_finished_kwh + current - self._energy_baseline_kwh

    def fairness(self, now: float) -> dict[int, float]:
        """Jain's index per priority of each started session's power over its max-min fair share (its own
        maximum when that is below the level): 1 when all get their fair share; a paused one counts 0."""
        with self._lock:
            now = self._advance(now)
            ratios: dict[int, list[float]] = {p: [] for p in PRIORITIES}
            for session in self._started:
                level = self._levels.get(session.priority, math.inf)
                fair_kw = min(session.max_kw, max(level, session.min_kw))
                ratios[session.priority].append(session.allocated_kw / fair_kw if fair_kw > 0 else 1.0)
            return {priority: jain_index(values) for priority, values in ratios.items()}

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
        with self._lock:
            self._require_sessions()
            now = self._advance(now)
            if session_id is not None:
                existing = self._sessions.get(session_id) or self._finished.get(session_id)
                if existing is not None:
                    if not existing.same_request(request, max_kw):
                        raise SessionConflict(session_id)
                    kind = Queued if existing.state == QUEUED else Admitted
                    return kind(self._session_report(existing, now), self._report(now, placed_by), replayed=True)
            if abandoned is not None and abandoned():
                return Abandoned(self._report(now, placed_by))
            if request.min_power_kw > max_kw + TOLERANCE_KW:
                return self._refuse("charger", request.min_power_kw, now, placed_by)
            outdated = self._outdated(placed_by, others_ev_power_at_most, others_sessions_at_most)
            session = Session(
                session_id=session_id or new_session_id(self.name),
                vehicle_id=request.vehicle_id,
                energy_kwh=request.energy_kwh,
                min_kw=request.min_power_kw,
                max_kw=max_kw,
                priority=request.priority,
                requested_at=now,
                sequence=self._arrivals,
                delivered_at=now,
                placed_by=placed_by,
            )
            if self._can_start(session, now):
                if outdated:
                    return Outdated(outdated, self._report(now, placed_by))
                # Journaled as it starts: at the power it will draw when that is its maximum, which the
                # reallocation then leaves as it is (one write per admission, not two); else at 0 kW until
                # the reallocation gives it its share and writes that.
                headroom = self._step_headroom(now, self.step_s)
                at_full_power = self._draws_max(self._max_sum_kw + session.max_kw, self._paused, headroom)
                if not self._journaled([self._as_started(session, now, session.max_kw if at_full_power else 0.0)]):
                    return self._refuse("journal", self._needed_kw(session), now, placed_by)
                self._arrivals += 1
                self._start(session, now)
                self._reallocate(now, journaled=session if at_full_power else None)
                self._count_started_for(placed_by)
                return Admitted(self._session_report(session, now), self._report(now, placed_by))
            if not request.wait:
                return self._refuse("capacity", self._needed_kw(session), now, placed_by)
            if len(self._queue) >= self.queue_limit:
                return self._refuse("queue", self._needed_kw(session), now, placed_by)
            if outdated:
                return Outdated(outdated, self._report(now, placed_by))
            if not self._journaled([session]):
                return self._refuse("journal", self._needed_kw(session), now, placed_by)
            self._arrivals += 1
            self._sessions[session.session_id] = session
            bisect.insort(self._queue, session, key=ORDER)
            self._contribute(session, +1)
            self.counters.queued += 1
            return Queued(self._session_report(session, now), self._report(now, placed_by))

    def stop(self, session_id: str, now: float) -> SessionReport | None:
        """End a session early (a queued one is cancelled) and share its power; a finished one is returned."""
        with self._lock:
            self._require_sessions()
            now = self._advance(now)
            session = self._sessions.get(session_id)
            if session is None:
                finished = self._finished.get(session_id)
                return None if finished is None else self._session_report(finished, now)
            was_started = session.started
            ended = session.copy(state=STOPPED, ended_at=now, allocated_kw=0.0)
            ended.delivered_kwh, ended.delivered_at = session.delivered(now, self.time_scale), now
            if not self._journaled([ended]):
                raise JournalError(self.journal_error)
            self._account(now)
            self._finish(session, STOPPED, now)
            self.counters.stopped += 1
            if was_started:
                self._reallocate(now)
            return self._session_report(session, now)

    def advance(self, now: float) -> None:
        """Bring every session up to `now`: what a ticker calls every step, so metrics and queues move; and a
        journal in error is tried again, so that the substation comes back by itself once it can write."""
        with self._lock:
            if self.journal_error is not None:
                self._try_journal(now)
            if self.sessions_known:
                self._advance(now)

    def check_journal(self, now: float) -> str | None:
        """Why the journal cannot keep what it is asked to change, having tried it again now; None if it can."""
        with self._lock:
            if self.journal_error is not None:
                self._try_journal(now)
            return self.journal_error

    # --- internals (lock held) -----------------------------------------------------------------
    def _require_sessions(self) -> None:
        if not self.sessions_known:
            raise JournalError(self.journal_error)

    def _try_journal(self, now: float) -> None:
        """The journal in error, tried again: opened and read if it never was, else what waits to be written,
        or a probe when nothing does. `journal_error` says how it went."""
        if not self.sessions_known:
            try:
                self._journal = self._journal.reopen()
            except JournalError as error:
                self.journal_error = str(error)
                return
            self._restore(now)
        elif self._unwritten:
            self._journaled([])
        else:
            try:
                self._journal.probe()
            except JournalError as error:
                self.journal_error = str(error)
            else:
                self.journal_error = None

    def _needed_kw(self, session: Session) -> float:
        """What admission counts for a session: its minimum when sharing, its maximum when fixed."""
        return session.min_kw if self.allocation == FAIR else session.max_kw

    def _journaled(self, sessions: list[Session]) -> bool:
        """Write what a client asked for, with whatever is waiting to be written; False when the journal
        cannot, and then nothing of the request may change."""
        try:
            self._journal.record([*self._unwritten.values(), *sessions])
        except JournalError as error:
            self.journal_error = str(error)
            return False
        self._unwritten.clear()
        self.journal_error = None
        return True

    def _write_behind(self, sessions: list[Session]) -> None:
        """What changed on its own is written now if the journal can, else at the next chance."""
        if not sessions and not self._unwritten:
            return
        for session in sessions:
            self._unwritten[session.session_id] = session
        self._journaled([])

    def _blocked(self, priority: int) -> bool:
        """Paused sessions, and queued ones of the same or a higher priority, go first."""
        return self._paused > 0 or bool(self._queue and self._queue[0].priority >= priority)

    def _fits(self, session: Session, now: float) -> bool:
        needed = self._needed_kw(session)
        if self.allocation == FAIR:
            headroom = self.capacity_kw - self.background.peak_between(now, now + self.lookahead_s)
        else:
            duration_s = session.energy_kwh / session.max_kw * 3600.0 / self.time_scale
            headroom = self.capacity_kw - self.background.peak_between(now, now + max(duration_s, self.step_s))
        return self._committed_kw + needed <= headroom + TOLERANCE_KW

    def _can_start(self, session: Session, now: float) -> bool:
        return not self._blocked(session.priority) and self._fits(session, now)

    def _start(self, session: Session, now: float) -> None:
        """Queued or new, it starts: at 0 kW until the reallocation that follows gives it its power."""
        if session.state == QUEUED and session.session_id in self._sessions:
            self._contribute(session, -1)
            self._queue.remove(session)
            self.counters.waits.observe(now - session.requested_at)
        session.state = PAUSED
        session.started_at = now
        session.delivered_at = now
        self._sessions[session.session_id] = session
        bisect.insort(self._started, session, key=ORDER)
        self._contribute(session, +1)
        self._fresh.append(session)
        self.counters.started += 1

    def _contribute(self, session: Session, sign: int) -> None:
        """Add a session to the sums kept over the sessions here (+1), or take it out (-1)."""
        if session.state in (CHARGING, PAUSED):
            self._ev_power_kw += sign * session.allocated_kw
            self._committed_kw += sign * self._needed_kw(session)
            self._max_sum_kw += sign * session.max_kw
            if session.state == CHARGING:
                self._excess_kw[session.priority] += sign * (session.allocated_kw - session.min_kw)
                self._charging[session.priority] += sign
            else:
                self._paused += sign
        elif session.state == QUEUED:
            self._queued_max_kw += sign * session.max_kw
        if session.placed_by is not None:
            placed = self._by_balancer.setdefault(session.placed_by, [0.0, 0])
            placed[0] += sign * (session.allocated_kw if session.started else 0.0)
            placed[1] += sign
            if placed[1] == 0:
                del self._by_balancer[session.placed_by]
        if not self._sessions or (len(self._sessions) == 1 and sign < 0):
            self._reset_sums()

    def _reset_sums(self) -> None:
        """With no session left, every sum is exactly 0: float drift does not outlive the sessions."""
        self._ev_power_kw = self._committed_kw = self._max_sum_kw = self._queued_max_kw = 0.0
        self._excess_kw = [0.0] * len(PRIORITIES)

    def _count_started_for(self, balancer: str | None) -> None:
        if balancer is None:
            return
        self._started_for[balancer] = self._started_for.get(balancer, 0) + 1
        self._started_for.move_to_end(balancer)
        if len(self._started_for) > REMEMBERED_BALANCERS:
            self._started_for.popitem(last=False)

    def _refuse(self, reason: str, needed_kw: float, now: float, balancer: str | None) -> Refused:
        self.counters.refused[reason] += 1
        report = self._report(now, balancer)
        return Refused(reason, report, needed_kw, report.next_session_end_s)

    def _outdated(self, balancer: str | None, ev_power_at_most: float | None, sessions_at_most: int | None) -> str:
        """Which condition other balancers' sessions break, or "" when none is."""
        if ev_power_at_most is not None and self._others_ev_power_kw(balancer) > ev_power_at_most + TOLERANCE_KW:
            return "others_ev_power"
        if sessions_at_most is not None and self._others_sessions(balancer) > sessions_at_most:
            return "others_sessions"
        return ""

    def _others_ev_power_kw(self, balancer: str | None) -> float:
        own = self._by_balancer.get(balancer, (0.0, 0))[0] if balancer is not None else 0.0
        return max(0.0, self._ev_power_kw - own)

    def _others_sessions(self, balancer: str | None) -> int:
        own = self._by_balancer.get(balancer, (0.0, 0))[1] if balancer is not None else 0
        return len(self._sessions) - int(own)

    def _advance(self, now: float) -> float:
        """Every reallocation step and every completion up to `now`, in order, each at its own moment; `now`
        itself, or the latest moment already reached if it is later: requests read the clock before they
        take the lock, so one that read it earlier may come second, and time must not run back."""
        now = self._latest = max(now, self._latest)
        step_s = max(self.step_s, (now - self._allocated_at) / MAX_CATCH_UP_STEPS)
        while True:
            next_step = self._allocated_at + step_s
            next_end = self._next_end()
            moment = next_step if next_end is None else min(next_step, next_end)
            if moment > now:
                return now
            self._account(moment)
            self._complete_due(moment)
            self._reallocate(moment, step_s)

    def _next_end(self) -> float | None:
        while self._ends:
            end, version, key = self._ends[0]
            session = self._sessions.get(key)
            if session is not None and session.version == version and session.state == CHARGING:
                return end
            heapq.heappop(self._ends)
        return None

    def _complete_due(self, moment: float) -> None:
        while (end := self._next_end()) is not None and end <= moment:
            _, _, key = heapq.heappop(self._ends)
            session = self._sessions[key]
            self._settle(session, end)
            session.delivered_kwh = session.energy_kwh
            self._finish(session, COMPLETED, end)
            self.counters.completed += 1

    def _settle(self, session: Session, moment: float) -> None:
        """Count the energy delivered up to `moment` at the power in effect."""
        session.delivered_kwh = session.delivered(moment, self.time_scale)
        session.delivered_at = moment

    def _finish(self, session: Session, state: str, moment: float) -> None:
        self._contribute(session, -1)
        if session.started:
            self._settle(session, moment)
            self._started.remove(session)
        elif session.state == QUEUED:
            self._queue.remove(session)
        session.state = state
        session.ended_at = moment
        if session.allocated_kw:
            self._set_limit(session, 0.0, moment)
        session.version += 1
        del self._sessions[session.session_id]
        self._write_behind([session])
        self.counters.energy_finished_kwh += session.delivered_kwh
        self._finished[session.session_id] = session
        self._trim_history()

    def _set_limit(self, session: Session, kw: float, moment: float) -> None:
        """A new power for the session, kept in its schedule when it differs by 0.1 kW or more (OCPP's
        resolution); several changes at one moment are one period."""
        session.allocated_kw = kw
        session.version += 1
        if session.schedule and session.schedule[-1].start == moment:
            session.schedule.pop()
        if not session.schedule or round(session.schedule[-1].limit_kw, 1) != round(kw, 1):
            session.schedule.append(SchedulePeriod(moment, kw))
            if len(session.schedule) > self.schedule_limit:
                session.schedule.popleft()

    def _as_started(self, session: Session, now: float, kw: float) -> Session:
        """A copy of the session as starting it at `kw` now makes it: what the journal keeps of it."""
        started = session.copy(state=PAUSED, started_at=now, delivered_at=now, schedule=deque())
        if kw > 0:
            self._set_limit(started, kw, now)
            started.state = CHARGING
        return started

    def _step_headroom(self, moment: float, step_s: float) -> float:
        """What the sessions may draw together over the step from `moment`: capacity less the background's peak."""
        return max(0.0, self.capacity_kw - self.background.peak_between(moment, moment + step_s))

    def _draws_max(self, max_sum_kw: float, paused: int, headroom: float) -> bool:
        """Whether every started session draws its maximum over the next step, their maxima summing to
        `max_sum_kw`: none was held back, none is paused or waits, and the maxima fit the `headroom`."""
        return self._all_at_max and not paused and not self._queue and max_sum_kw <= headroom + TOLERANCE_KW

    def _reallocate(self, moment: float, step_s: float | None = None, *, journaled: Session | None = None) -> None:
        """Share the headroom over the next step among the started sessions, start what fits from the
        queue, and account the interval that ends here for overload. `journaled`: a session just started,
        already journaled at its maximum, which needs no second write if that is what it gets."""
        began = time.perf_counter()
        step_s = step_s or self.step_s
        self._account(moment)
        headroom = self._step_headroom(moment, step_s)
        paused_before = self._paused - len(self._fresh)  # the fresh ones are at 0 kW only until now
        if self._draws_max(self._max_sum_kw, paused_before, headroom):
            # Every session draws its maximum and still fits: only those just started need their power.
            for session in self._fresh:
                self._apply(session, session.max_kw, moment)
            changed = [session for session in self._fresh if session is not journaled]
        else:
            fixed = self.allocation == FIXED
            shares = self._fixed_shares(moment) if fixed else self._fair_shares(headroom, moment)
            changed = [
                session
                for session in self._started
                if self._apply(session, shares.get(session.session_id, 0.0), moment)
            ]
            if journaled is not None and journaled not in changed:
                changed.append(journaled)  # journaled at its maximum, it got another share: write that
        self._fresh = []
        self._write_behind(changed)
        self._all_at_max = self._paused == 0 and all(level == math.inf for level in self._levels.values())
        self._headroom_kw = headroom
        self._allocated_at = moment
        self._compact_ends()
        self.counters.reallocations.observe(time.perf_counter() - began)

    def _apply(self, session: Session, kw: float, moment: float) -> bool:
        """Give a session its new power (0: paused); whether anything changed."""
        state = CHARGING if kw > 0 else PAUSED
        if kw == session.allocated_kw and state == session.state:
            return False
        self._settle(session, moment)
        if state == session.state == CHARGING:  # the usual change: the sums move by the difference alone
            delta = kw - session.allocated_kw
            self._ev_power_kw += delta
            self._excess_kw[session.priority] += delta
            if session.placed_by is not None:
                self._by_balancer[session.placed_by][0] += delta
            self._set_limit(session, kw, moment)
        else:
            if session.state == CHARGING:
                self.counters.paused += 1
            self._contribute(session, -1)
            self._set_limit(session, kw, moment)
            session.state = state
            self._contribute(session, +1)
        if state == CHARGING:
            heapq.heappush(self._ends, (session.ends_at(self.time_scale), session.version, session.session_id))
        return True

    def _compact_ends(self) -> None:
        """Completion times made stale by later changes of power stay in the heap until they reach its top:
        rebuild it when they outnumber the live ones, so it does not grow with every step."""
        if len(self._ends) > 2 * len(self._sessions) + 64:
            live = []
            for session in self._sessions.values():
                end = session.ends_at(self.time_scale)
                if end is not None:
                    live.append((end, session.version, session.session_id))
            heapq.heapify(live)
            self._ends = live

    def _fixed_shares(self, moment: float) -> dict[str, float]:
        """Each session its maximum; the queue's heads start, in order, while theirs fit."""
        self._levels = {}
        while self._queue and self._fits(self._queue[0], moment):
            self._start(self._queue[0], moment)
        return {session.session_id: session.max_kw for session in self._started}

    def _fair_shares(self, headroom: float, moment: float) -> dict[str, float]:
        fitting, waiting = fitting_prefix(headroom, [session.demand for session in self._started])
        if not waiting:  # nobody paused: the queue's heads start, in order, while their minimums fit
            admission_headroom = min(headroom, self._admission_headroom(moment))
            used = sum(d.min_kw for d in fitting)
            while self._queue:
                head = self._queue[0]
                if used + head.min_kw > admission_headroom + TOLERANCE_KW:
                    break
                self._start(head, moment)
                used += head.min_kw
                fitting.append(head.demand)
        shares, self._levels = allocate_with_levels(headroom, fitting)
        if waiting:
            self._levels = {**self._levels, **{d.priority: self._levels.get(d.priority, 0.0) for d in waiting}}
        return shares

    def _admission_headroom(self, moment: float) -> float:
        return self.capacity_kw - self.background.peak_between(moment, moment + self.lookahead_s)

    def _account(self, moment: float) -> None:
        """The interval since the power last changed: had EV power and background exceeded capacity in it?
        Called before every change of power, so the power was constant over the interval."""
        if moment <= self._accounted_until:
            return
        background_peak = self.background.peak_between(self._accounted_until, moment)
        if self._ev_power_kw + background_peak > self.capacity_kw + TOLERANCE_KW:
            self.counters.overload_seconds += moment - self._accounted_until
        self._accounted_until = moment

    def _restore(self, now: float) -> None:
        """Take back every session the journal kept: a restarted process knows what it knew, then catches up
        with what happened while it was down (sessions that ended, steps that passed)."""
        last_moment = None
        try:
            kept = list(self._journal.sessions())
        except JournalError as error:
            self.journal_error = str(error)
            return
        self.sessions_known, self.journal_error = True, None
        for session in kept:
            self._arrivals = max(self._arrivals, session.sequence + 1)
            if session.state in (COMPLETED, STOPPED):
                self._finished[session.session_id] = session
                continue
            self._sessions[session.session_id] = session
            self._contribute(session, +1)
            self._energy_baseline_kwh += session.delivered_kwh
            if session.state == QUEUED:
                bisect.insort(self._queue, session, key=ORDER)
                continue
            bisect.insort(self._started, session, key=ORDER)
            if session.state == CHARGING:
                heapq.heappush(self._ends, (session.ends_at(self.time_scale), session.version, session.session_id))
            last_moment = session.delivered_at if last_moment is None else max(last_moment, session.delivered_at)
        self._allocated_at = self._accounted_until = min(now, last_moment) if last_moment is not None else now
        self._all_at_max = False  # the first step reallocates all
        self._trim_history()
        now = self._advance(now)
        self._reallocate(now)  # the headroom is known from the start

    def _trim_history(self) -> None:
        dropped = []
        while len(self._finished) > self.history_limit:
            dropped.append(self._finished.popitem(last=False)[0])
        if dropped:
            with contextlib.suppress(JournalError):  # rows kept longer than the history: trimmed next time
                self._journal.forget(dropped)

    def _sharing_state(self) -> tuple[tuple[float, ...], tuple[int, ...]]:
        """Per priority p: what a newcomer of priority p could draw from (headroom nobody takes, and what
        charging sessions of priority <= p draw above their minimum), and how many it would share it with."""
        spare = max(0.0, self._headroom_kw - self._ev_power_kw)
        if self.allocation == FIXED:  # nobody shares: a newcomer gets what no session takes
            return (spare,) * len(PRIORITIES), (0,) * len(PRIORITIES)
        shareable, sharing, excess, count = [], [], 0.0, 0
        for priority in PRIORITIES:
            excess += self._excess_kw[priority]
            count += self._charging[priority]
            shareable.append(spare + max(0.0, excess))
            sharing.append(count)
        return tuple(shareable), tuple(sharing)

    def _estimated_starts(self, now: float, queued: list[Session]) -> list[float | None]:
        """When each of `queued` (in queue order) would start: as the sessions here end and free what
        admission counts for them (paused ones take it first: they count as committed already), and as
        each queued one, once started, ends in turn (at its maximum: an estimate). Background changes are
        not foreseen. None: not foreseeable (nothing charging will end)."""
        frees = [(end, self._needed_kw(s)) for s in self._started if (end := s.ends_at(self.time_scale)) is not None]
        heapq.heapify(frees)
        available = self._admission_headroom(now) - self._committed_kw
        moment, starts = now, []
        for session in queued:
            need = self._needed_kw(session)
            while available < need - TOLERANCE_KW and frees:
                end, kw = heapq.heappop(frees)
                moment, available = max(moment, end), available + kw
            if available < need - TOLERANCE_KW:
                return starts + [None] * (len(queued) - len(starts))
            available -= need
            starts.append(moment)
            duration = session.energy_kwh / session.max_kw * 3600.0 / self.time_scale
            heapq.heappush(frees, (moment + duration, need))
        return starts

    def _session_report(self, session: Session, now: float) -> SessionReport:
        position = estimated_start = None
        if session.state == QUEUED:
            queue = self._queue
            position = queue.index(session) + 1
            estimated_start = self._estimated_starts(now, queue[:position])[-1]
        ended = session.state in (COMPLETED, STOPPED)
        estimated_end = session.ended_at if ended else session.ends_at(self.time_scale)
        return SessionReport(
            session_id=session.session_id,
            substation=self.name,
            vehicle_id=session.vehicle_id,
            state=session.state,
            allocated_kw=session.allocated_kw,
            min_power_kw=session.min_kw,
            max_power_kw=session.max_kw,
            priority=session.priority,
            energy_kwh=session.energy_kwh,
            energy_delivered_kwh=session.delivered(now, self.time_scale),
            requested_at=session.requested_at,
            started_at=session.started_at,
            estimated_end=estimated_end,
            ended_at=session.ended_at,
            position=position,
            estimated_start=estimated_start,
            schedule=tuple(session.schedule),
        )

    def _newcomer(self, kw: float, priority: int, now: float) -> Session:
        """A session the report asks about: arriving now at `priority`, drawing `kw` at least and at most."""
        return Session("", "", 1.0, kw, kw, priority, now, self._arrivals)

    def _report(self, now: float, balancer: str | None = None) -> LoadReport:
        self._report_sequence += 1
        shareable, sharing = self._sharing_state()
        queue = self._queue
        # A newcomer asking for the defaults: admission counts its minimum (fair) or its maximum (fixed).
        default_max = min(DEFAULT_MAX_POWER_KW, self.charger_max_power_kw)
        newcomer_kw = DEFAULT_MIN_POWER_KW if self.allocation == FAIR else default_max
        starts: list[float | None] = []
        fits = None  # whether a newcomer fits now: the same whatever its priority, so asked once at most
        for priority in PRIORITIES:
            ahead = [s for s in queue if s.priority >= priority]
            if not ahead and not self._blocked(priority):
                if fits is None:
                    fits = self._fits(self._newcomer(newcomer_kw, priority, now), now)
                if fits:
                    starts.append(0.0)
                    continue
            start = self._estimated_starts(now, [*ahead, self._newcomer(newcomer_kw, priority, now)])[-1]
            starts.append(None if start is None else max(0.0, start - now))
        next_end = self._next_end()
        return LoadReport(
            name=self.name,
            capacity_kw=self.capacity_kw,
            ev_power_kw=max(0.0, self._ev_power_kw),
            background_kw=self.background.at(now),
            active_sessions=len(self._started),
            charger_max_power_kw=self.charger_max_power_kw,
            epoch=self.epoch,
            sequence=self._report_sequence,
            next_session_end_s=None if next_end is None else max(0.0, next_end - now),
            others_ev_power_kw=None if balancer is None else self._others_ev_power_kw(balancer),
            others_sessions=None if balancer is None else self._others_sessions(balancer),
            started_for_you=None if balancer is None else self._started_for.get(balancer, 0),
            allocation=self.allocation,
            headroom_kw=self._headroom_kw,
            admission_headroom_kw=max(0.0, self._admission_headroom(now)),
            committed_kw=max(0.0, self._committed_kw),
            paused_sessions=self._paused,
            queued_sessions=len(queue),
            queue_limit=self.queue_limit,
            queue_by_priority=tuple(sum(1 for s in queue if s.priority == p) for p in PRIORITIES),
            shareable_kw=shareable,
            sharing_sessions=sharing,
            demand_kw=max(0.0, self._max_sum_kw + self._queued_max_kw),
            estimated_start_s=tuple(starts),
        )
