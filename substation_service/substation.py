"""A substation's EV sessions and its admission rule. Pure domain: no Flask, no I/O."""

from __future__ import annotations

import heapq
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Protocol

from grid_common.protocol import CHARGING, COMPLETED, STOPPED, LoadReport, SessionReport, new_session_id
from substation_service.profile import BackgroundDemand

# Float sums of kW drift; a session that fits to within a milliwatt fits.
TOLERANCE_KW = 1e-6


@dataclass(frozen=True)
class Session:
    session_id: str
    vehicle_id: str
    power_kw: float
    energy_kwh: float
    started_at: float
    ends_at: float
    state: str = CHARGING
    ended_at: float | None = None
    # The balancer process that placed it, to tell other balancers' sessions from its own. Not journaled:
    # after a restart every session counts as another's, for every balancer alike.
    placed_by: str | None = None

    def energy_delivered_kwh(self, now: float) -> float:
        """Energy flows at constant power from start to end, so delivery is a share of the request."""
        end = self.ended_at if self.ended_at is not None else min(now, self.ends_at)
        duration = self.ends_at - self.started_at
        if duration <= 0:
            return self.energy_kwh
        return self.energy_kwh * min(1.0, max(0.0, end - self.started_at) / duration)

    def report(self, substation: str, now: float) -> SessionReport:
        return SessionReport(
            session_id=self.session_id,
            substation=substation,
            vehicle_id=self.vehicle_id,
            state=self.state,
            power_kw=self.power_kw,
            energy_kwh=self.energy_kwh,
            energy_delivered_kwh=self.energy_delivered_kwh(now),
            started_at=self.started_at,
            estimated_end=self.ends_at,
            ended_at=self.ended_at,
        )


@dataclass(frozen=True)
class Admitted:
    session: Session
    report: LoadReport
    replayed: bool = False


@dataclass(frozen=True)
class Refused:
    """No room for the session; `retry_after_s` is when the next session here ends, if any does."""

    reason: str
    report: LoadReport
    needed_kw: float
    retry_after_s: float | None


@dataclass(frozen=True)
class Outdated:
    """The caller's choice of this substation stood only while other balancers' sessions here drew at
    most `allowed_kw`, and they draw more: they placed sessions since the caller last heard. The caller
    takes `report` and chooses again. Checking this where the sessions are is what keeps replicated
    balancers as balanced as one, however seldom they poll.
    """

    allowed_kw: float
    report: LoadReport


class Journal(Protocol):
    """Where sessions outlive the process (see journal.py); called with the substation's lock held."""

    def record(self, session: Session) -> None: ...

    def forget(self, session_ids: Iterable[str]) -> None: ...

    def sessions(self) -> Iterator[Session]: ...


class NoJournal:
    """Sessions live in memory only: a restart forgets them."""

    def record(self, session: Session) -> None:
        pass

    def forget(self, session_ids: Iterable[str]) -> None:
        pass

    def sessions(self) -> Iterator[Session]:
        return iter(())


class SessionConflict(Exception):
    """A session id was reused for a different request."""


@dataclass
class Counters:
    started: int = 0
    completed: int = 0
    stopped: int = 0
    refused: int = 0


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
        history_limit: int = 10_000,
        journal: Journal | None = None,
        now: float | None = None,
    ) -> None:
        self.name = name
        self.capacity_kw = capacity_kw
        self.charger_max_power_kw = charger_max_power_kw
        self.time_scale = time_scale
        self.background = background
        self.history_limit = history_limit
        self.counters = Counters()
        self.epoch = secrets.token_hex(8)
        self._sequence = 0
        self._lock = threading.Lock()
        self._active: dict[str, Session] = {}
        self._ev_power_kw = 0.0
        self._ev_power_by_balancer: dict[str, float] = {}
        self._ends: list[tuple[float, str]] = []  # min-heap of (ends_at, session_id); stale entries skipped
        self._finished: OrderedDict[str, Session] = OrderedDict()
        self._journal: Journal = journal or NoJournal()
        self._restore(now)

    # --- queries -------------------------------------------------------------------------------
    def report(self, now: float, balancer: str | None = None) -> LoadReport:
        """The load now; for `balancer`, also what other balancers' sessions draw."""
        with self._lock:
            self._complete_due(now)
            return self._report(now, balancer)

    def session(self, session_id: str, now: float) -> Session | None:
        with self._lock:
            self._complete_due(now)
            return self._active.get(session_id) or self._finished.get(session_id)

    def power_for(self, vehicle_max_power_kw: float) -> float:
        return min(vehicle_max_power_kw, self.charger_max_power_kw)

    # --- commands ------------------------------------------------------------------------------
    def admit(
        self,
        vehicle_id: str,
        energy_kwh: float,
        vehicle_max_power_kw: float,
        now: float,
        session_id: str | None = None,
        *,
        placed_by: str | None = None,
        others_ev_power_at_most: float | None = None,
    ) -> Admitted | Refused | Outdated:
        """Start the session only if it fits under capacity for its whole duration.

        Checking against the background's peak over the session's window (not just its value now)
        keeps the invariant: every admitted session fits at every moment of its life, since
        sessions admitted later check against all sessions still active.

        With `others_ev_power_at_most`, also only if the sessions balancers other than `placed_by` placed
        draw no more than the caller allows for its choice to stand. Its own sessions are left
        out (its concurrent requests may arrive in any order), and so is background demand, which moves
        with the clock rather than with other balancers' choices; sessions that ended only make it truer.
        """
        power_kw = self.power_for(vehicle_max_power_kw)
        duration_s = energy_kwh / power_kw * 3600.0 / self.time_scale
        with self._lock:
            self._complete_due(now)
            if session_id is not None:
                existing = self._active.get(session_id) or self._finished.get(session_id)
                if existing is not None:
                    if (existing.vehicle_id, existing.energy_kwh, existing.power_kw) != (
                        vehicle_id,
                        energy_kwh,
                        power_kw,
                    ):
                        raise SessionConflict(session_id)
                    return Admitted(existing, self._report(now, placed_by), replayed=True)
            ends_at = now + duration_s
            background_peak = self.background.peak_between(now, ends_at)
            if self._ev_power_kw + power_kw + background_peak > self.capacity_kw + TOLERANCE_KW:
                self.counters.refused += 1
                report = self._report(now, placed_by)
                return Refused("capacity", report, power_kw, report.next_session_end_s)
            if others_ev_power_at_most is not None and (
                self._others_ev_power_kw(placed_by) > others_ev_power_at_most + TOLERANCE_KW
            ):
                return Outdated(others_ev_power_at_most, self._report(now, placed_by))
            session = Session(
                session_id=session_id or new_session_id(self.name),
                vehicle_id=vehicle_id,
                power_kw=power_kw,
                energy_kwh=energy_kwh,
                started_at=now,
                ends_at=ends_at,
                placed_by=placed_by,
            )
            self._journal.record(session)  # first: a session is admitted only once it would survive a crash
            self._active[session.session_id] = session
            self._ev_power_kw += power_kw
            if placed_by is not None:
                self._ev_power_by_balancer[placed_by] = self._ev_power_by_balancer.get(placed_by, 0.0) + power_kw
            heapq.heappush(self._ends, (ends_at, session.session_id))
            self.counters.started += 1
            return Admitted(session, self._report(now, placed_by))

    def stop(self, session_id: str, now: float) -> Session | None:
        """End a session early and free its power; stopping a finished session just returns it."""
        with self._lock:
            self._complete_due(now)
            session = self._active.pop(session_id, None)
            if session is None:
                return self._finished.get(session_id)
            stopped = replace(session, state=STOPPED, ended_at=now)
            self._release(stopped)
            self.counters.stopped += 1
            return stopped

    # --- internals (lock held) -----------------------------------------------------------------
    def _restore(self, now: float | None) -> None:
        """Take back every session the journal kept: a restarted process knows what it knew."""
        for session in self._journal.sessions():
            if session.state == CHARGING:
                self._active[session.session_id] = session
                self._ev_power_kw += session.power_kw
                heapq.heappush(self._ends, (session.ends_at, session.session_id))
            else:
                self._finished[session.session_id] = session
        if now is not None:
            self._complete_due(now)  # sessions that ended while the process was down
        self._trim_history()

    def _complete_due(self, now: float) -> None:
        """Complete every session whose energy has been delivered: sessions end without a thread each."""
        while self._ends and self._ends[0][0] <= now:
            ends_at, session_id = heapq.heappop(self._ends)
            session = self._active.pop(session_id, None)
            if session is None:
                continue  # stopped earlier
            self._release(replace(session, state=COMPLETED, ended_at=ends_at))
            self.counters.completed += 1

    def _release(self, finished: Session) -> None:
        self._journal.record(finished)
        self._ev_power_kw = self._ev_power_kw - finished.power_kw if self._active else 0.0
        if finished.placed_by in self._ev_power_by_balancer:
            left = self._ev_power_by_balancer.pop(finished.placed_by) - finished.power_kw
            if left > TOLERANCE_KW and self._active:  # else gone: no entry kept per balancer that ever was
                self._ev_power_by_balancer[finished.placed_by] = left
        self._finished[finished.session_id] = finished
        self._trim_history()

    def _trim_history(self) -> None:
        dropped = []
        while len(self._finished) > self.history_limit:
            dropped.append(self._finished.popitem(last=False)[0])
        if dropped:
            self._journal.forget(dropped)

    def _next_end(self, now: float) -> float | None:
        while self._ends and self._ends[0][1] not in self._active:
            heapq.heappop(self._ends)
        return max(0.0, self._ends[0][0] - now) if self._ends else None

    def _others_ev_power_kw(self, balancer: str | None) -> float:
        return max(0.0, self._ev_power_kw - self._ev_power_by_balancer.get(balancer, 0.0))

    def _report(self, now: float, balancer: str | None = None) -> LoadReport:
        self._sequence += 1
        return LoadReport(
            name=self.name,
            capacity_kw=self.capacity_kw,
            ev_power_kw=self._ev_power_kw,
            background_kw=self.background.at(now),
            active_sessions=len(self._active),
            charger_max_power_kw=self.charger_max_power_kw,
            epoch=self.epoch,
            sequence=self._sequence,
            next_session_end_s=self._next_end(now),
            others_ev_power_kw=None if balancer is None else self._others_ev_power_kw(balancer),
        )
