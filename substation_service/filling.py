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

import heapq
import math
from collections.abc import Iterable, Sequence
from typing import NamedTuple

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


def fill(capacities: Sequence[float], loads: Sequence[Load]) -> tuple[dict[str, float], dict[int, float]]:
    """kW for each of `loads`, whose minimums must fit together (see fitting_prefix), and per priority the
    highest level a session of it was held at (math.inf: none was held below its maximum).

    Sessions alike (the same bounds, priority and limits) get the same share, so they rise as one, weighed by
    their number: a thousand cars of a few kinds on a few circuits are shared as a few dozen."""
    kinds: dict[tuple, list[str]] = {}
    for load in loads:
        kinds.setdefault(load[1:], []).append(load.key)  # (min_kw, max_kw, priority, counts)
    spare = list(capacities)
    alike: list[Load] = []
    for (min_kw, max_kw, priority, counts), keys in kinds.items():
        number = len(keys)
        alike.append(Load(keys[0], min_kw, max_kw, priority, tuple((c, w * number) for c, w in counts)))
        for c, w in counts:
            spare[c] -= w * number * min_kw
    shares = {load.key: load.min_kw for load in alike}
    levels: dict[int, float] = {}
    for priority in sorted({load.priority for load in alike}, reverse=True):
        rising = [load for load in alike if load.priority == priority and load.max_kw > load.min_kw]
        levels[priority] = _fill_priority(spare, rising, shares)
    return {key: shares[keys[0]] for keys in kinds.values() for key in keys}, levels


def _fill_priority(spare: list[float], rising: list[Load], shares: dict[str, float]) -> float:
    """Raise `rising` together until each is at its maximum or under a full limit; `spare` and `shares` follow.
    The highest level a session was held at: math.inf when none was held below its maximum.

    A sweep of the level upwards: each limit's use grows linearly between the moments a session starts
    rising (its minimum) or stops (its maximum), so the next event is the nearest of those and of the level
    at which some limit fills, which a heap keeps. A full limit stops every session under it where it is.
    Limits are dense indices: their state is kept in lists, and updated inline (this runs at every step)."""
    limits = len(spare)
    members: list[list[int]] = [[] for _ in range(limits)]
    for index, load in enumerate(rising):
        for c, w in load.counts:
            if w > 0:
                members[c].append(index)
    grown = [0.0] * limits  # what the rising sessions added to each limit, as of `since`
    since = [0.0] * limits
    slope = [0.0] * limits
    version = [0] * limits
    fills: list[tuple[float, int, int]] = []  # (level at which it fills, limit, its version then)
    events = sorted([(load.min_kw, 1, i) for i, load in enumerate(rising)] +
                    [(load.max_kw, -1, i) for i, load in enumerate(rising)])  # fmt: skip
    stopped: list[float | None] = [None] * len(rising)  # where each stopped
    sloping = [False] * len(rising)  # past its minimum's event, not yet at its maximum's
    level, held_at, next_event, event_count = 0.0, -math.inf, 0, len(events)
    push, pop = heapq.heappush, heapq.heappop

    while True:
        while fills and fills[0][2] != version[fills[0][1]]:
            pop(fills)
        fill_at = fills[0][0] if fills else math.inf
        event_at = events[next_event][0] if next_event < event_count else math.inf
        if fill_at == event_at == math.inf:
            break
        if fill_at <= event_at:  # a limit is full: every session under it stops where it is
            level = max(level, fill_at)
            _, full, _ = pop(fills)
            version[full] += 1  # never again
            touched = set()
            for index in members[full]:
                if stopped[index] is not None:
                    continue
                load = rising[index]
                kw = min(load.max_kw, max(load.min_kw, level))
                stopped[index] = kw
                if kw < load.max_kw:
                    held_at = level
                for c, w in load.counts:
                    if w > 0:
                        grown[c] += slope[c] * (level - since[c])
                        since[c] = level
                        if sloping[index]:
                            slope[c] -= w
                        touched.add(c)
            touched.discard(full)
            for c in touched:
                version[c] += 1
                if slope[c] > 0:
                    push(fills, (since[c] + max(0.0, spare[c] - grown[c]) / slope[c], c, version[c]))
            continue
        # Every event at this level at once (cars' bounds take few values): each limit they touch is looked
        # at again once, not once per car.
        level = event_at
        changed = set()
        while next_event < event_count and events[next_event][0] == level:
            _, direction, index = events[next_event]
            next_event += 1
            if stopped[index] is not None:
                continue
            sloping[index] = direction > 0
            for c, w in rising[index].counts:
                if w > 0:
                    grown[c] += slope[c] * (level - since[c])
                    since[c] = level
                    slope[c] += direction * w
                    changed.add(c)
        for c in changed:
            version[c] += 1
            if slope[c] > 0:
                push(fills, (level + max(0.0, spare[c] - grown[c]) / slope[c], c, version[c]))
    for load, stopped_at in zip(rising, stopped, strict=True):
        _raise(load, load.max_kw if stopped_at is None else stopped_at, spare, shares)  # not stopped: all the way up
    return held_at if held_at > -math.inf else math.inf


def _raise(load: Load, kw: float, spare: list[float], shares: dict[str, float]) -> None:
    grown = kw - shares[load.key]
    if grown:
        shares[load.key] = kw
        for c, w in load.counts:
            spare[c] -= w * grown
