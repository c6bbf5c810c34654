"""Simulated time, and the daily profile of demand it runs through: what a substation and its clients (the
load tester's day, the benchmarks) must agree on, so it lives here rather than in the substation."""

from __future__ import annotations

import math
from dataclasses import dataclass

# Share of the daily peak, hour by hour: a residential feeder with a morning bump and an evening peak.
RESIDENTIAL_PROFILE = (
    0.45, 0.40, 0.37, 0.35, 0.35, 0.40, 0.55, 0.70, 0.75, 0.70, 0.65, 0.65,
    0.67, 0.65, 0.62, 0.62, 0.68, 0.80, 0.95, 1.00, 0.95, 0.85, 0.70, 0.55,
)  # fmt: skip


@dataclass(frozen=True)
class DailyProfile:
    """Demand as a share of the peak, linear between hourly points, repeating every 24 hours."""

    hourly: tuple[float, ...] = RESIDENTIAL_PROFILE

    def __post_init__(self) -> None:
        if len(self.hourly) != 24 or any(not 0 <= v <= 1 for v in self.hourly):
            raise ValueError("a daily profile has 24 hourly shares between 0 and 1")

    def at(self, hour: float) -> float:
        hour %= 24.0
        lower = int(hour)
        fraction = hour - lower
        return self.hourly[lower] * (1 - fraction) + self.hourly[(lower + 1) % 24] * fraction

    def peak_between(self, start_hour: float, end_hour: float) -> float:
        """The highest share over [start_hour, end_hour]: for piecewise-linear data, at an end or a knot."""
        if end_hour - start_hour >= 24:
            return max(self.hourly)
        peak = max(self.at(start_hour), self.at(end_hour))
        for knot in range(math.floor(start_hour) + 1, math.ceil(end_hour)):
            peak = max(peak, self.hourly[knot % 24])
        return peak


@dataclass(frozen=True)
class SimulatedClock:
    """Simulated time runs `time_scale` times faster than the wall clock.

    The simulated hour of day derives from wall time alone, so every substation agrees on it and a
    restart does not move it.
    """

    time_scale: float
    phase_hours: float = 0.0

    def hour_of_day(self, wall_seconds: float) -> float:
        return (self._hours_into_day(wall_seconds) + self.phase_hours) % 24.0

    def phase_for(self, hour: float, wall_seconds: float) -> float:
        """The phase_hours under which the hour of day is `hour` at `wall_seconds`."""
        return (hour - self._hours_into_day(wall_seconds)) % 24.0

    def _hours_into_day(self, wall_seconds: float) -> float:
        """Simulated hours since the last simulated midnight (at phase 0), from the wall time reduced to one
        simulated day first: scaled as a whole, today's epoch seconds are about 1e9 simulated hours, whose
        rounding (1e-7 h) made the background at one moment differ by more than the substation's tolerance
        depending on whether it was computed from that moment or from an earlier one plus the time between.
        `fmod` is exact, so two moments' hours differ by their scaled difference to within 1e-12 h."""
        day_wall_s = 86400.0 / self.time_scale
        return math.fmod(wall_seconds, day_wall_s) * self.time_scale / 3600.0

    def wall_seconds_for(self, simulated_hours: float) -> float:
        return simulated_hours * 3600.0 / self.time_scale
