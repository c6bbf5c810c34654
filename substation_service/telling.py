"""What a substation says of itself and of its sessions, at one moment: the snapshot its metrics read, its load
report, a session's report. A part of Substation (substation.py), kept apart as one concern; the pure
functions they call are reports.py's."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, cast

from grid_common.protocol import LoadReport, SessionReport, SessionState
from substation_service.reports import Snapshot, estimated_starts, fairness, load_report, session_report

if TYPE_CHECKING:
    from substation_service.book import SessionBook
    from substation_service.counters import Counters
    from substation_service.policy import Grid, Policy
    from substation_service.sessions import Session
    from substation_service.substation import Substation


class Telling:
    if TYPE_CHECKING:  # what Substation has, that these methods use
        name: str
        time_scale: float
        book: SessionBook
        grid: Grid
        policy: Policy
        counters: Counters
        _lock: threading.Lock
        _levels: dict[int, float]
        _energy_baseline_kwh: float
        _report_sequence: int

        def _advance(self, now: float) -> float: ...

    def snapshot(self, now: float) -> Snapshot:
        """What the substation's metrics read, all at one moment."""
        with self._lock:
            now = self._advance(now)
            book = self.book
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
                now, queue[:position], self.book.started, self.policy, self.available_kw(now), self.time_scale
            )[-1]
        return session_report(
            self.name, session, now, self.time_scale, position=position, estimated_start=estimated_start
        )

    def _report(self, now: float, balancer: str | None = None) -> LoadReport:
        self._report_sequence += 1
        return load_report(cast("Substation", self), now, balancer)
