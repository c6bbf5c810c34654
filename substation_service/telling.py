"""What a substation says of itself and of its sessions, at one moment: the snapshot its metrics read, its load
report, a session's report. A part of Substation (substation.py), kept apart as one concern; the pure
functions they call are reports.py's."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, cast

from grid_common.protocol import LoadReport, SessionReport, SessionState
from substation_service.reports import Snapshot, estimated_starts, fairness, load_report, session_report

if TYPE_CHECKING:
    from substation_service.background import BackgroundDemand
    from substation_service.book import SessionBook
    from substation_service.counters import Counters
    from substation_service.grid_limits import GridLimits
    from substation_service.phases import PhaseSupply
    from substation_service.policy import Grid, Policy
    from substation_service.sessions import Session
    from substation_service.substation import Substation


class Telling:
    if TYPE_CHECKING:  # what Substation has, that these methods use
        name: str
        time_scale: float
        book: SessionBook
        grid: Grid
        supply: PhaseSupply
        background: BackgroundDemand
        limits: GridLimits
        policy: Policy
        counters: Counters
        _levels: dict[int, float]
        _energy_baseline_kwh: float
        _report_sequence: int

        def _locked(self) -> contextlib.AbstractContextManager[None]: ...

        def _advance(self, now: float) -> float: ...
        def counted_phase_kw(self, moment: float) -> list[float]: ...
        def _circuit_report(self, now: float) -> list[dict]: ...

    def snapshot(self, now: float) -> Snapshot:
        """What the substation's metrics read, all at one moment."""
        with self._locked():
            now = self._advance(now)
            book, supply = self.book, self.supply
            paused, waiting = book.totals.paused, (now - s.requested_at for s in book.queue)
            current_kwh = sum(s.delivered(now, self.time_scale) for s in book.sessions.values())
            return Snapshot(
                sessions_by_state={
                    SessionState.QUEUED: len(book.queue),
                    SessionState.CHARGING: len(book.started) - paused,
                    SessionState.PAUSED: paused,
                },
                oldest_wait_s=max(waiting, default=0.0),
                # While this process ran (a Prometheus counter: it starts again at 0 with the process).
                energy_delivered_kwh=self.counters.energy_finished_kwh + current_kwh - self._energy_baseline_kwh,
                fairness=fairness(book.started, self._levels),
                phase_ev_a=tuple(supply.amperes(kw) for kw in self.counted_phase_kw(now)),
                phase_background_a=tuple(
                    supply.amperes(self.background.at(now) * share) for share in supply.background_split
                ),
                phase_limit_a=supply.amperes(self.limits.rated_kw / 3),
                circuits=tuple(self._circuit_report(now)),
            )

    def available_kw(self, now: float) -> float:
        """What admission could still count for new sessions now."""
        return self.grid.admission_headroom_kw(now) - self.book.totals.committed_kw

    def _session_report(self, session: Session, now: float, *, estimate: bool = True) -> SessionReport:
        position = estimated_start = None
        if estimate and session.state == SessionState.QUEUED:
            queue = self.book.queue
            position = queue.index(session) + 1
            estimated_start = estimated_starts(
                now,
                queue[:position],
                self.book.started,
                self.policy,
                self.grid.admission_headroom_kw,
                self.book.totals.committed_kw,
                self.time_scale,
            )[-1]
        return session_report(
            self.name,
            session,
            now,
            self.time_scale,
            position=position,
            estimated_start=estimated_start,
            voltage_v=self.supply.voltage_v,
            plan=self.policy.plan,
        )

    def _report(self, now: float, balancer: str | None = None) -> LoadReport:
        self._report_sequence += 1
        return load_report(cast("Substation", self), now, balancer)
