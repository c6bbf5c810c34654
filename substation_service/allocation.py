"""Sharing a substation's headroom among its sessions. Pure functions: no state, no clock, no I/O.

Every charging session gets its minimum; what is left goes to the highest priority first, and within a
priority it is shared max-min fairly: each session gets `clamp(level, its minimum, its maximum)`, with the
one level that spends the priority's budget exactly (water-filling). Sessions capped below the level by
their own maximum leave the rest to the others; sessions whose minimum is above the level keep their
minimum. The level is found exactly, by walking the sorted breakpoints of the piecewise-linear total,
in O(n log n): no slices, no iterations.

Which sessions charge at all (their minimums must fit) is `fitting_prefix`: sessions in order of
priority, then of arrival; the first whose minimum does not fit and every session after it wait.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Priorities a request may ask for; higher is served first.
PRIORITIES = (0, 1, 2, 3)
# Float sums of kW drift; a budget spent to within a microwatt is spent.
EPSILON_KW = 1e-9


@dataclass(frozen=True)
class Demand:
    """What one session may draw: at least `min_kw` while it charges, at most `max_kw`."""

    key: str
    min_kw: float
    max_kw: float
    priority: int = 0


def water_level(budget_kw: float, demands: Sequence[Demand]) -> float:
    """The level L with sum(clamp(L, min, max)) == budget_kw, for a budget between the sums of the minimums
    and of the maximums; math.inf when the budget covers every maximum."""
    if budget_kw >= math.fsum(d.max_kw for d in demands) - EPSILON_KW:
        return math.inf
    total = math.fsum(d.min_kw for d in demands)
    if budget_kw <= total + EPSILON_KW:
        return 0.0  # every session at its minimum
    # Below the lowest minimum the total is the sum of minimums; each session adds slope 1 from its minimum
    # to its maximum. Walk the breakpoints upwards, both sorted lists at once, until the total reaches the
    # budget.
    flexible = [d for d in demands if d.max_kw > d.min_kw]
    starts = sorted(d.min_kw for d in flexible)
    stops = sorted(d.max_kw for d in flexible)
    slope, previous, i, j = 0, starts[0], 0, 0
    while j < len(stops):
        starting = i < len(starts) and starts[i] <= stops[j]
        point = starts[i] if starting else stops[j]
        rise = slope * (point - previous)
        if slope > 0 and total + rise >= budget_kw:
            return previous + (budget_kw - total) / slope
        total += rise
        previous = point
        if starting:
            slope, i = slope + 1, i + 1
        else:
            slope, j = slope - 1, j + 1
    return previous  # not reached for a budget below the sum of maxima


def allocate(headroom_kw: float, demands: Sequence[Demand]) -> dict[str, float]:
    """kW for each of `demands`, whose minimums must fit under `headroom_kw` together (see fitting_prefix).

    Minimums first, then priority by priority, highest first, max-min fair within each. The total is
    min(headroom, sum of maxima): no headroom is left idle while a session could take more. The same
    demands in any order give the same allocation, to the last bit (every sum is exact: math.fsum).
    """
    return allocate_with_levels(headroom_kw, demands)[0]


def allocate_with_levels(headroom_kw: float, demands: Sequence[Demand]) -> tuple[dict[str, float], dict[int, float]]:
    """The allocation, and the water level each priority was raised to (math.inf: all at their maximum)."""
    groups: dict[int, list[Demand]] = {}
    for demand in demands:
        groups.setdefault(demand.priority, []).append(demand)
    allocation: dict[str, float] = {}
    levels: dict[int, float] = {}
    left_kw = max(0.0, headroom_kw - math.fsum(d.min_kw for d in demands))
    for priority in sorted(groups, reverse=True):
        group = groups[priority]
        minimums = math.fsum(d.min_kw for d in group)
        level = levels[priority] = water_level(left_kw + minimums, group)
        shares = [min(d.max_kw, max(d.min_kw, level)) for d in group]
        allocation.update(zip((d.key for d in group), shares, strict=True))
        left_kw = max(0.0, left_kw - (math.fsum(shares) - minimums))
    return allocation, levels


def fitting_prefix(headroom_kw: float, ordered: Iterable[Demand]) -> tuple[list[Demand], list[Demand]]:
    """(sessions whose minimums fit, in order, the rest): the longest prefix of `ordered` whose minimums
    sum to at most `headroom_kw`. A session never overtakes one before it, so the order decides who waits."""
    fitting: list[Demand] = []
    waiting: list[Demand] = []
    used_kw = 0.0
    for demand in ordered:
        if not waiting and used_kw + demand.min_kw <= headroom_kw + EPSILON_KW:
            fitting.append(demand)
            used_kw += demand.min_kw
        else:
            waiting.append(demand)
    return fitting, waiting


def jain_index(values: Sequence[float]) -> float:
    """Jain's fairness index: 1 when all are equal, 1/n when one gets everything; 1 for no values."""
    if not values:
        return 1.0
    square_of_sum = sum(values) ** 2
    sum_of_squares = sum(v * v for v in values)
    return 1.0 if sum_of_squares == 0 else square_of_sum / (len(values) * sum_of_squares)
