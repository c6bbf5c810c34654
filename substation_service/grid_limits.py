"""The grid operator's limits on a substation's power (curtailment: section 14a EnWG, an OCPP external limit, an
EEBus LPC): periods of wall time, each with the most the substation may draw, EV power and background together.
Between periods, and after the last, the substation's rated capacity holds again. Pure: no clock, no I/O.

A schedule is set whole (a new one replaces the old) and checked as it is set: periods in order, none
overlapping, none ended, none starting more than a week ahead or lasting more than a week. What the
substation asks is the capacity over an interval: the lowest of its rating and every period that overlaps it,
so that a limit starting within the next step is kept from the step before it starts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

MAX_PERIODS = 96  # a day in quarter hours
MAX_AHEAD_S = 7 * 24 * 3600.0


@dataclass(frozen=True)
class LimitPeriod:
    start: float  # wall seconds (epoch)
    end: float
    limit_kw: float


class InvalidSchedule(ValueError):
    """A schedule that cannot be set; its message says why, for the operator."""


class GridLimits:
    def __init__(self, rated_kw: float) -> None:
        self.rated_kw = rated_kw
        self.periods: tuple[LimitPeriod, ...] = ()
        self.changes = 0  # schedules set (or cleared) since the process started

    def set(self, periods: Sequence[LimitPeriod], now: float) -> None:
        """Replace the schedule with `periods` (none: no limit); InvalidSchedule, and nothing changed, if they
        cannot be kept as they are."""
        self.check(periods, now)
        self.periods = tuple(periods)
        self.changes += 1

    def restore(self, periods: Sequence[LimitPeriod]) -> None:
        """The schedule a journal kept (checked when it was set; what has ended goes with forget_ended)."""
        self.periods = tuple(periods)

    @staticmethod
    def check(periods: Sequence[LimitPeriod], now: float) -> None:
        """InvalidSchedule if `periods` cannot be kept as they are."""
        problems = []
        if len(periods) > MAX_PERIODS:
            problems.append(f"at most {MAX_PERIODS} periods, got {len(periods)}")
        for number, period in enumerate(periods, start=1):
            if not all(math.isfinite(v) for v in (period.start, period.end, period.limit_kw)):
                problems.append(f"period {number}: start, end and limit_kw must be finite")
            elif period.limit_kw < 0:
                problems.append(f"period {number}: limit_kw must be 0 or more")
            elif period.end <= period.start:
                problems.append(f"period {number}: it must end after it starts")
            elif period.end <= now:
                problems.append(f"period {number}: it has already ended")
            elif period.start > now + MAX_AHEAD_S:
                problems.append(f"period {number}: it starts more than a week ahead")
            elif period.end - max(period.start, now) > MAX_AHEAD_S:
                problems.append(f"period {number}: it lasts more than a week")
            elif number > 1 and period.start < periods[number - 2].end:
                problems.append(f"period {number}: it starts before period {number - 1} ends (in order, apart)")
        if problems:
            raise InvalidSchedule("; ".join(problems))

    def forget_ended(self, now: float) -> None:
        """Periods that have ended say nothing any more."""
        if self.periods and self.periods[0].end <= now:
            self.periods = tuple(period for period in self.periods if period.end > now)

    def capacity_between(self, start: float, end: float) -> float:
        """The most the substation may draw at every moment of [start, end]."""
        capacity = self.rated_kw
        for period in self.periods:
            if period.start > end:
                break
            if period.end > start:
                capacity = min(capacity, period.limit_kw)
        return capacity

    def in_force(self, moment: float) -> LimitPeriod | None:
        """The period that holds the substation below its rating at `moment`; None when none does (a limit above
        the rating changes nothing, and is not said to be in force)."""
        for period in self.periods:
            if period.start <= moment < period.end:
                return period if period.limit_kw < self.rated_kw else None
        return None

    def lowest_ahead(self, moment: float) -> float:
        """The lowest capacity from `moment` on: what a default meant to hold whatever comes must fit under."""
        return self.capacity_between(moment, math.inf)
