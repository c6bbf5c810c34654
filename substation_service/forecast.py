"""When queued sessions could start, and who may start before them: a walk forward in time over what admission
will count (the started sessions' needs, freed as each ends) and the room the grid will leave (its capacity
less the background's known daily profile, which rises and falls). Pure: the room is a function of the moment
it is given.

A queued session starts at the first moment its need fits: at the end of a session, or as the background
falls (the room is looked at every `probe_s`, a quarter of a simulated hour by default). The walk stops at a
horizon (a simulated day): what would start later is not foreseeable.

Backfilling (EASY, as batch schedulers do it): a queue is served in order, but a session behind a head that
does not fit may start now if that cannot delay the head's foreseen start: it ends before then, or the room
left beside the head then holds it too. Strict order left headroom idle behind a car with a large minimum.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from substation_service.sessions import Session

# Float sums of kW drift; a need within a microwatt of the room fits.
TOLERANCE_KW = 1e-6
PROBE_SIMULATED_S = 900.0  # how often the room is looked at between two ends (simulated seconds)
HORIZON_SIMULATED_S = 86_400.0  # how far ahead (simulated seconds)


class QueueForecast:
    """Sessions started one after another, each at the first moment it fits. `room_kw(moment)`: what admission
    could count in all at that moment; `frees`: (when a started session ends, what it frees); `committed_kw`:
    what admission counts now."""

    def __init__(
        self,
        now: float,
        room_kw: Callable[[float], float],
        frees: Iterable[tuple[float, float]],
        committed_kw: float,
        time_scale: float,
    ) -> None:
        self.now = self.moment = now
        self.room_kw = room_kw
        self.frees = list(frees)
        heapq.heapify(self.frees)
        self.committed_kw = committed_kw
        self.probe_s = PROBE_SIMULATED_S / time_scale
        self.horizon = now + HORIZON_SIMULATED_S / time_scale
        self.probes, self.next_probe = 0, now
        self._room_at: tuple[float, float] | None = None  # (moment, room): asked again at the same moment

    def available_kw(self) -> float:
        """What admission could still count at the moment reached."""
        return self._room(self.moment) - self.committed_kw

    def start(self, need_kw: float, duration_s: float) -> float | None:
        """The first moment from the one reached at which `need_kw` fits; the session is counted from then for
        `duration_s`. None when that is beyond the horizon (nothing more is foreseeable then)."""
        while self.available_kw() < need_kw - TOLERANCE_KW:
            next_end = self.frees[0][0] if self.frees else math.inf
            while self.next_probe <= self.moment:  # counted in whole probes: a float step never stalls it
                self.probes += 1
                self.next_probe = self.now + self.probes * self.probe_s
            moment = min(next_end, self.next_probe)
            if moment > self.horizon:
                return None
            self.moment = max(self.moment, moment)
            while self.frees and self.frees[0][0] <= self.moment:
                self.committed_kw -= heapq.heappop(self.frees)[1]
        self.committed_kw += need_kw
        heapq.heappush(self.frees, (self.moment + duration_s, need_kw))
        return self.moment

    def _room(self, moment: float) -> float:
        if self._room_at is None or self._room_at[0] != moment:
            self._room_at = (moment, self.room_kw(moment))
        return self._room_at[1]


def frees(
    started: Sequence[Session], needed_kw: Callable[[Session], float], time_scale: float
) -> list[tuple[float, float]]:
    """(when each charging session ends at the power it draws, what admission counts for it)."""
    return [(end, needed_kw(s)) for s in started if (end := s.ends_at(time_scale)) is not None]


def at_maximum_s(session: Session, time_scale: float) -> float:
    """How long the session lasts at its maximum (wall seconds)."""
    return at_need_s(session, session.max_kw, time_scale)


def at_need_s(session: Session, need_kw: float, time_scale: float) -> float:
    """How long the session lasts at what admission counts for it (its minimum: the longest it can take)."""
    return session.energy_kwh / need_kw * 3600.0 / time_scale if need_kw > 0 else math.inf


@dataclass
class Backfill:
    """Who may start behind a queue's head that waits: the head's foreseen start, and the room left beside it
    then, which each session that is still charging at that moment takes its need of. `needed_kw`: what
    admission counts for a session (its minimum, or its maximum when fixed)."""

    head_start: float
    spare_kw: float
    needed_kw: Callable[[Session], float]
    time_scale: float

    def allows(self, session: Session, now: float) -> bool:
        """Whether `session` may start at `now`: it ends before the head starts, even at its need (the longest
        it can take), or the room left beside the head then holds it too, and is taken."""
        need_kw = self.needed_kw(session)
        if now + at_need_s(session, need_kw, self.time_scale) <= self.head_start:
            return True
        if need_kw <= self.spare_kw + TOLERANCE_KW:
            self.spare_kw -= need_kw
            return True
        return False


def backfill_behind(
    head: Session, forecast: QueueForecast, needed_kw: Callable[[Session], float], time_scale: float
) -> Backfill:
    """The Backfill behind `head`, as `forecast` (every session started so far) sees it. A head whose start is
    not foreseeable within the horizon is taken to start there: what ends before may start."""
    start = forecast.start(needed_kw(head), at_maximum_s(head, time_scale))
    if start is None:
        return Backfill(forecast.horizon, 0.0, needed_kw, time_scale)
    return Backfill(start, max(0.0, forecast.available_kw()), needed_kw, time_scale)
