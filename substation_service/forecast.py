"""When queued sessions could start: a walk forward in time over what admission will count (the started
sessions' needs, freed as each ends) and the room the grid will leave (its capacity less the background's
known daily profile, which rises and falls). Pure: the room is a function of the moment it is given.

A queued session starts at the first moment its need fits: at the end of a session, or as the background
falls (the room is looked at every `probe_s`, a quarter of a simulated hour by default). The walk stops at a
horizon (a simulated day): what would start later is not foreseeable.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable

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
