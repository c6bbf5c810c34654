"""When charging sessions end at their current power: a min-heap of completion times. A change of power makes
a session's earlier entry stale (its version moved on); stale entries are skipped when they reach the top,
and the heap is rebuilt when they outnumber the live ones."""

from __future__ import annotations

import heapq

from grid_common.protocol import SessionState
from substation_service.sessions import Session


class Completions:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str]] = []  # (end, version, session id)

    def push(self, session: Session, time_scale: float) -> None:
        """The session's end at its power now (a charging session)."""
        end = session.ends_at(time_scale)
        if end is not None:
            heapq.heappush(self._heap, (end, session.version, session.session_id))

    def next(self, sessions: dict[str, Session]) -> float | None:
        """When the first of `sessions` ends, if one is charging."""
        heap = self._heap
        while heap:
            end, version, key = heap[0]
            session = sessions.get(key)
            if session is not None and session.version == version and session.state == SessionState.CHARGING:
                return end
            heapq.heappop(heap)
        return None

    def pop_due(self, sessions: dict[str, Session], moment: float) -> tuple[float, Session] | None:
        """The first session to end by `moment`, and when; None when none does."""
        end = self.next(sessions)
        if end is None or end > moment:
            return None
        _, _, key = heapq.heappop(self._heap)
        return end, sessions[key]

    def compact(self, sessions: dict[str, Session], time_scale: float) -> None:
        if len(self._heap) > 2 * len(sessions) + 64:
            self._heap = []
            for session in sessions.values():
                self.push(session, time_scale)
