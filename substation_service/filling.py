"""Sharing under several limits at once: a substation's three phases, the circuits inside it, a power limit set by
the grid operator. Pure functions: no state, no clock, no I/O.

Each limit covers some sessions, each counted with a weight: a current limit on one phase counts a 3-phase car
at a third of its power (kW per phase: A x V / 1000), a 1-phase car wired to that phase at all of it and one
wired elsewhere not at all; a power limit counts every car at its power. Shares are in kW, as allocation.py's:
every charging session its minimum, then priority by priority, highest first, max-min fair by progressive
filling. All sessions of a priority rise together from their minimums (each at `clamp(level, min, max)`); when
a limit fills, the sessions it covers stop where they are, and the others rise on. With one limit covering
every session at weight 1 this is exactly allocation.allocate.

Which sessions charge at all is `fitting_prefix`: in order, the first whose minimum does not fit under every
limit, and every session after it, wait.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np

# Float sums of kW drift; a limit filled to within a microwatt is full.
EPSILON_KW = 1e-9


class Load(NamedTuple):
    """What one session may draw (kW), and the limits it counts against: (limit's index, weight). A named
    tuple: a thousand are made at every step, at a fifth of a frozen dataclass's cost."""

    key: str
    min_kw: float
    max_kw: float
    priority: int
    counts: tuple[tuple[int, float], ...]


def fitting_prefix(capacities: Sequence[float], ordered: Iterable[Load]) -> tuple[list[Load], list[Load]]:
    """(sessions whose minimums fit under every limit, in order, the rest): a session never overtakes one
    before it, so the order decides who waits."""
    room = [capacity + EPSILON_KW for capacity in capacities]
    fitting: list[Load] = []
    waiting: list[Load] = []
    for load in ordered:
        if not waiting:
            kw = load.min_kw
            for c, w in load.counts:
                if w * kw > room[c]:
                    break
            else:
                fitting.append(load)
                for c, w in load.counts:
                    room[c] -= w * kw
                continue
        waiting.append(load)
    return fitting, waiting


def raise_minimums(capacities: Sequence[float], loads: Sequence[Load], floors: dict[str, float]) -> list[Load]:
    """`loads` (whose minimums fit together) with the minimums of those in `floors` raised towards their floor,
    each as far as every limit it counts against still holds, in the order of `floors` (the first in most need)."""
    room = list(capacities)
    for load in loads:
        for c, w in load.counts:
            room[c] -= w * load.min_kw
    raised: dict[str, float] = {}
    by_key = {load.key: load for load in loads}
    for key, floor in floors.items():
        if key not in by_key:
            continue
        load = by_key[key]
        target = max(load.min_kw, min(floor, load.max_kw))
        extra = target - load.min_kw
        for c, w in load.counts:
            if w > 0:
                extra = min(extra, max(0.0, room[c]) / w)
        for c, w in load.counts:
            room[c] -= w * extra
        # min + (target - min) can come out an ulp above target: a floor is never passed
        raised[key] = min(target, load.min_kw + extra)
    return [load._replace(min_kw=raised[load.key]) if load.key in raised else load for load in loads]


def fill(capacities: Sequence[float], loads: Sequence[Load]) -> tuple[dict[str, float], dict[int, float]]:
    """kW for each of `loads`, whose minimums must fit together (see fitting_prefix), and per priority the
    highest level a session of it was held at (math.inf: none was held below its maximum)."""
    return Filling().fill(capacities, loads)


class Kinds:
    """Loads grouped into kinds: those alike (the same bounds, priority and limits) get the same share, so they
    rise as one, weighed by their number; a thousand cars of a few kinds on a few circuits are shared as a few
    dozen. Each kind's weight on each limit is a row of a matrix, so that a step of the filling is a few
    products over all kinds at once."""

    def __init__(self, limit_count: int, loads: Sequence[Load]) -> None:
        grouped: dict[tuple[float, float, int, int], list[Load]] = {}
        for load in loads:
            # The limits by identity: a caller's loads share one counts tuple per kind of car (CircuitTree keeps
            # them); equal tuples that are not the same object only make two kinds that get the same share.
            grouped.setdefault((load.min_kw, load.max_kw, load.priority, id(load.counts)), []).append(load)
        members = list(grouped.values())
        self.keys = [[load.key for load in group] for group in members]
        self.weights = np.zeros((len(members), limit_count))
        for row, group in enumerate(members):
            for limit, weight in group[0].counts:
                self.weights[row, limit] += weight * len(group)
        self.min_kw = np.array([group[0].min_kw for group in members], dtype=float)
        self.max_kw = np.array([group[0].max_kw for group in members], dtype=float)
        priorities = np.array([group[0].priority for group in members], dtype=int)
        rising = self.max_kw > self.min_kw
        # Per priority, highest first: the kinds that rise above their minimum.
        self.by_priority = [
            Rising(int(priority), np.flatnonzero((priorities == priority) & rising), self)
            for priority in sorted(set(priorities.tolist()), reverse=True)
        ]
        self.minimums = self.min_kw @ self.weights  # what the minimums put on each limit


class Rising:
    """The kinds of one priority that rise above their minimum: their rows of Kinds, and their bounds in order."""

    def __init__(self, priority: int, rows: np.ndarray, kinds: Kinds) -> None:
        self.priority, self.rows = priority, rows
        self.weights, self.low, self.high = kinds.weights[rows], kinds.min_kw[rows], kinds.max_kw[rows]
        self.bounds = np.unique(np.concatenate((self.low, self.high)))


class Filling:
    """fill, for a caller that shares the same loads step after step (a substation: its sessions change seldom,
    its headroom at every step): the kinds are grouped again only when the loads are not the same objects in
    the same order as last time."""

    def __init__(self) -> None:
        self._loads: list[Load] = []
        self._ids: tuple[int, ...] = ()
        self._kinds: Kinds | None = None

    def kinds(self, limit_count: int, loads: Sequence[Load]) -> Kinds:
        ids = tuple(map(id, loads))  # the loads are held below: an id is not reused while they live
        kinds = self._kinds
        if kinds is None or ids != self._ids or kinds.weights.shape[1] != limit_count:
            kinds = self._kinds = Kinds(limit_count, loads)
            self._loads, self._ids = list(loads), ids
        return kinds

    def fill(self, capacities: Sequence[float], loads: Sequence[Load]) -> tuple[dict[str, float], dict[int, float]]:
        """As the function fill."""
        kinds = self.kinds(len(capacities), loads)
        spare = np.asarray(capacities, dtype=float) - kinds.minimums
        kw = kinds.min_kw.copy()
        levels = {rising.priority: _fill_priority(spare, rising, kw) for rising in kinds.by_priority}
        shares: dict[str, float] = {}
        for keys, share in zip(kinds.keys, kw.tolist(), strict=True):
            shares.update(dict.fromkeys(keys, share))
        return shares, levels


def _fill_priority(spare: np.ndarray, rising: Rising, kw: np.ndarray) -> float:
    """Raise the kinds `rising` together until each is at its maximum or under a full limit; `spare` (each
    limit's room) and `kw` (each kind's share) follow. The highest level a kind was held at: math.inf when none
    was held below its maximum.

    A sweep of the level upwards. Between two bounds (a kind's minimum, where it starts rising, or its
    maximum, where it stops), each limit's use grows linearly, so the level at which the first limit fills is
    a division per limit. A full limit stops every kind under it where it is. Each round either stops a limit's
    kinds (at most one round per limit) or reaches the next bound (a few values: cars' bounds are alike)."""
    if rising.rows.size == 0:
        return math.inf
    weights, low, high, bounds = rising.weights, rising.low, rising.high, rising.bounds
    stopped = np.zeros(rising.rows.size, dtype=bool)
    share = low.copy()
    level, held_at = float(low.min()), -math.inf
    while not stopped.all():
        ahead = bounds[bounds > level]
        next_bound = float(ahead[0]) if ahead.size else math.inf
        moving = ~stopped
        current = np.where(moving, np.minimum(np.maximum(level, low), high), share)
        slope = (moving & (low <= level) & (high > level)).astype(float) @ weights
        filling = slope > 0
        if not filling.any():
            if next_bound == math.inf:
                break
            level = next_bound
            continue
        room = spare - (current - low) @ weights
        fills_in = np.full(slope.shape, math.inf)
        fills_in[filling] = np.maximum(room[filling], 0.0) / slope[filling]
        first = float(fills_in.min())
        if level + first > next_bound:
            level = next_bound
            continue
        level += first
        full = fills_in <= first * (1 + 1e-12) + EPSILON_KW * 1e-3  # the first to fill, and any at the same level
        stopping = moving & (weights[:, full] > 0).any(axis=1)
        at = np.minimum(np.maximum(level, low), high)
        share[stopping] = at[stopping]
        stopped |= stopping
        if (at[stopping] < high[stopping]).any():
            held_at = level
    share[~stopped] = high[~stopped]  # not stopped: all the way up
    spare -= (share - low) @ weights
    kw[rising.rows] = share
    return held_at if held_at > -math.inf else math.inf
