"""Background (non-EV) demand at a substation: a daily profile in simulated time, scaled to its peak."""

from __future__ import annotations

from dataclasses import dataclass, field

from grid_common.simulated_time import DailyProfile, SimulatedClock

REMEMBERED_PEAKS = 8


@dataclass(frozen=True)
class BackgroundDemand:
    peak_kw: float
    profile: DailyProfile
    clock: SimulatedClock
    # Peaks asked for lately, by interval: one admission asks for the same few intervals several times.
    _peaks: dict = field(default_factory=dict, init=False, compare=False, repr=False)

    def at(self, wall_seconds: float) -> float:
        if self.peak_kw == 0:
            return 0.0
        return self.peak_kw * self.profile.at(self.clock.hour_of_day(wall_seconds))

    def peak_between(self, start_wall: float, end_wall: float) -> float:
        if self.peak_kw == 0:
            return 0.0
        peak = self._peaks.get((start_wall, end_wall))
        if peak is None:
            if len(self._peaks) >= REMEMBERED_PEAKS:
                self._peaks.clear()  # the clock moved on: the intervals asked for next begin later
            start_hour = self.clock.hour_of_day(start_wall)
            span_hours = (end_wall - start_wall) * self.clock.time_scale / 3600.0
            peak = self._peaks[start_wall, end_wall] = self.peak_kw * self.profile.peak_between(
                start_hour, start_hour + span_hours
            )
        return peak
