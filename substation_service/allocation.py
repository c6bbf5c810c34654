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


def water_level(budget_kw: float, kinds: Sequence[tuple[float, float, int]]) -> float:
    """The level L with sum(number * clamp(L, min, max)) == budget_kw over `kinds` (min, max, number of sessions
    alike), for a budget between the sums of the minimums and of the maxima; math.inf when the budget covers
    every maximum."""
    if budget_kw >= math.fsum(high * number for _, high, number in kinds) - EPSILON_KW:
        return math.inf
    total = math.fsum(low * number for low, _, number in kinds)
    if budget_kw <= total + EPSILON_KW:
        return 0.0  # every session at its minimum
    # Below the lowest minimum the total is the sum of minimums; each session adds slope 1 from its minimum
    # to its maximum. Walk the breakpoints upwards, both sorted lists at once, until the total reaches the
    # budget.
    flexible = [(low, high, number) for low, high, number in kinds if high > low]
    starts = sorted((low, number) for low, _, number in flexible)
    stops = sorted((high, number) for _, high, number in flexible)
    slope, previous, i, j = 0, starts[0][0], 0, 0
    while j < len(stops):
        starting = i < len(starts) and starts[i][0] <= stops[j][0]
        point, number = starts[i] if starting else stops[j]
        rise = slope * (point - previous)
        if slope > 0 and total + rise >= budget_kw:
            return previous + (budget_kw - total) / slope
        total += rise
        previous = point
        if starting:
            slope, i = slope + number, i + 1
        else:
            slope, j = slope - number, j + 1
    return previous  # not reached for a budget below the sum of maxima


def allocate(headroom_kw: float, demands: Sequence[Demand]) -> dict[str, float]:
    """kW for each of `demands`, whose minimums must fit under `headroom_kw` together (see fitting_prefix).

    Minimums first, then priority by priority, highest first, max-min fair within each. The total is
    min(headroom, sum of maxima): no headroom is left idle while a session could take more. The same
    demands in any order give the same allocation, to the last bit (every sum is exact: math.fsum).
    """
    return allocate_with_levels(headroom_kw, demands)[0]


def allocate_with_levels(headroom_kw: float, demands: Sequence[Demand]) -> tuple[dict[str, float], dict[int, float]]:
    """The allocation, and the water level each priority was raised to (math.inf: all at their maximum).

    Sessions alike (the same bounds and priority) get the same share: they are counted as one kind, weighed by
    their number, so that ten thousand cars of a few kinds cost a few sums, not ten thousand."""
    alike: dict[tuple[float, float, int], list[str]] = {}
    for demand in demands:
        alike.setdefault((demand.min_kw, demand.max_kw, demand.priority), []).append(demand.key)
    by_priority: dict[int, list[tuple[float, float, int]]] = {}
    for (low, high, priority), keys in alike.items():
        by_priority.setdefault(priority, []).append((low, high, len(keys)))
    allocation: dict[str, float] = {}
    levels: dict[int, float] = {}
    left_kw = max(0.0, headroom_kw - math.fsum(low * len(keys) for (low, _, _), keys in alike.items()))
    for priority in sorted(by_priority, reverse=True):
        kinds = by_priority[priority]
        minimums = math.fsum(low * number for low, _, number in kinds)
        level = levels[priority] = water_level(left_kw + minimums, kinds)
        taken = []
        for low, high, number in kinds:
            share = min(high, max(low, level))
            allocation.update(dict.fromkeys(alike[low, high, priority], share))
            taken.append(share * number)
        left_kw = max(0.0, left_kw - (math.fsum(taken) - minimums))
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
