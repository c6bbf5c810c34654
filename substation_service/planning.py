"""Departures: the energy each driver asked for, by the time they leave, planned under the room the substation
will have. Pure: no clock but the moments given, the room a function of an interval.

The plan runs in slots (a quarter of a simulated hour) from now to the last departure (at most a simulated
day). In each slot, every car that still needs energy draws its minimum, as it would anyway; the room left
above the minimums goes to the cars earliest to leave first (earliest deadline first, ASAP): each gets what it
still needs spread over the slot, up to its maximum. That serves the car in the most hurry before the
evening's background takes the room, and leaves later cars the room of later, quieter slots.

A car's plan is its power slot by slot; it is *promised* when the plan delivers all its energy by its
departure. The first slot's powers are what the substation gives the cars with a departure now at least (their
floors): the rest of the headroom is shared max-min fairly as ever (policy.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

SLOT_SIMULATED_S = 900.0  # a quarter of a simulated hour
HORIZON_SIMULATED_S = 86_400.0  # a simulated day
# Energy below a watt-hour is none left: floats of kWh drift.
DONE_KWH = 1e-6
MOST_ROUNDS = 4  # rounds plan_most takes at most, each taking out half the cars still missing


@dataclass(frozen=True)
class Need:
    """What one car still needs: `remaining_kwh` by `departure` (wall seconds), drawing between `min_kw` and
    `max_kw` while it charges."""

    key: str
    remaining_kwh: float
    min_kw: float
    max_kw: float
    departure: float


@dataclass(frozen=True)
class Plan:
    """Each car's power slot by slot (`start`, every `slot_s`), whether it gets all its energy by its
    departure, and how much it gets by then."""

    start: float
    slot_s: float
    power_kw: dict[str, list[float]]
    promised: dict[str, bool]
    expected_kwh: dict[str, float]
    # Cars taken out of the hurry (plan_most): their rows are an estimate of what the others leave them, not a
    # floor they are given.
    out: frozenset[str] = frozenset()

    def now_kw(self, key: str) -> float:
        """What the car draws in the first slot (0 when it has no plan)."""
        powers = self.power_kw.get(key)
        return powers[0] if powers else 0.0

    def floor_kw(self, key: str) -> float:
        """What the car is given at least now: the first slot's, or 0 (its minimum) for one taken out."""
        return 0.0 if key in self.out else self.now_kw(key)

    def periods(self, key: str) -> list[tuple[float, float]]:
        """The car's plan as periods: (start, kW), a new one where its power changes by 0.1 kW or more."""
        periods: list[tuple[float, float]] = []
        for slot, kw in enumerate(self.power_kw.get(key, [])):
            if not periods or round(periods[-1][1], 1) != round(kw, 1):
                periods.append((self.start + slot * self.slot_s, kw))
        return periods


def plan(
    now: float,
    needs: Sequence[Need],
    room_kw: Callable[[float, float], float],
    time_scale: float,
    *,
    first_room_kw: float | None = None,
) -> Plan:
    """The plan for `needs` (in the order ties go: earlier first), with `room_kw(start, end)` what the cars with a
    departure may draw together over [start, end] (capacity less the background's peak and what other cars
    take); `first_room_kw`: the room of the first slot when the caller knows it better (the step's headroom).

    A slot is a few numpy operations over every car at once: in order of departure, each car's extra is what it
    wants above its minimum, cut to what the cars before it left of the room (a running sum)."""
    slot_s = SLOT_SIMULATED_S / time_scale
    last = max((need.departure for need in needs), default=now)
    slots = max(1, min(math.ceil((last - now) / slot_s), math.ceil(HORIZON_SIMULATED_S / SLOT_SIMULATED_S)))
    hours_per_second = time_scale / 3600.0
    slot_h = slot_s * hours_per_second
    ordered = sorted(needs, key=lambda need: need.departure)  # stable: ties keep the callers' order
    low = np.array([need.min_kw for need in ordered], dtype=float)
    high = np.array([need.max_kw for need in ordered], dtype=float)
    departure = np.array([need.departure for need in ordered], dtype=float)
    asked = np.maximum(0.0, np.array([need.remaining_kwh for need in ordered], dtype=float))
    remaining = asked.copy()
    delivered = np.zeros(len(ordered))
    power = np.zeros((len(ordered), slots))
    for slot in range(slots):
        start = now + slot * slot_s
        room = first_room_kw if slot == 0 and first_room_kw is not None else room_kw(start, start + slot_s)
        charging = remaining > DONE_KWH
        spare = max(0.0, room - float(low[charging].sum()))
        # Until it leaves, or to the end of the slot: what it still needs, spread over that. Gone past its
        # departure (its driver is late): no more hurry than a car without one.
        usable_h = np.clip(np.minimum(start + slot_s, departure) - start, 0.0, None) * hours_per_second
        with np.errstate(over="ignore"):  # a sliver of a slot left: wanting more than any car takes
            wanted = np.divide(remaining, usable_h, out=low.copy(), where=usable_h > 0)
        desired = np.where(charging, np.clip(np.minimum(high, wanted) - low, 0.0, None), 0.0)
        extra = np.clip(spare - (np.cumsum(desired) - desired), 0.0, desired)
        kw = np.where(charging, low + extra, 0.0)
        power[:, slot] = kw
        delivered += np.minimum(remaining, kw * usable_h)
        remaining -= np.minimum(remaining, kw * slot_h)
    keys = [need.key for need in ordered]
    promised = {key: bool(got >= want - DONE_KWH) for key, got, want in zip(keys, delivered, asked, strict=True)}
    return Plan(
        now,
        slot_s,
        dict(zip(keys, power.tolist(), strict=True)),
        promised,
        dict(zip(keys, delivered.tolist(), strict=True)),
    )


def plan_most(
    now: float,
    needs: Sequence[Need],
    room_kw: Callable[[float, float], float],
    time_scale: float,
    *,
    first_room_kw: float | None = None,
) -> Plan:
    """`plan`, with cars it cannot promise taken out of the hurry: earliest deadline first spends room on a car
    that misses its departure anyway and makes the next ones miss theirs too (the domino effect of EDF in
    overload). First the cars that could not make it even alone at their maximum; then, while some car still
    misses, the half of those missing that need the most energy (as Moore and Hodgson drop the longest job), for
    at most MOST_ROUNDS rounds. Those taken out draw their minimums (and their fair shares over the step); they
    are told what the room the others leave would bring them by their departure, planned as the others are: an
    estimate, since over each step they share that room max-min fairly with the cars without a departure."""
    hours_per_second = time_scale / 3600.0

    def alone_in_time(need: Need) -> bool:
        return need.remaining_kwh <= need.max_kw * max(0.0, need.departure - now) * hours_per_second + DONE_KWH

    def planned_without(out: list[Need], kept: list[Need]) -> Plan:
        out_kw = sum(need.min_kw for need in out)  # they still draw their minimums
        first = None if first_room_kw is None else first_room_kw - out_kw
        return plan(now, kept, lambda start, end: room_kw(start, end) - out_kw, time_scale, first_room_kw=first)

    kept = [need for need in needs if alone_in_time(need)]
    out = [need for need in needs if not alone_in_time(need)]
    result = planned_without(out, kept)
    for _ in range(MOST_ROUNDS):
        missing = sorted((need for need in kept if not result.promised[need.key]), key=lambda need: -need.remaining_kwh)
        if not missing:
            break
        dropped = {need.key for need in missing[: max(1, len(missing) // 2)]}
        out += [need for need in kept if need.key in dropped]
        kept = [need for need in kept if need.key not in dropped]
        result = planned_without(out, kept)
    if not out:
        return result
    kept_kw = np.sum([result.power_kw[need.key] for need in kept], axis=0) if kept else np.zeros(1)

    def left_kw(start: float, end: float) -> float:
        slot = round((start - now) / result.slot_s)
        return room_kw(start, end) - (float(kept_kw[slot]) if slot < len(kept_kw) else 0.0)

    first = None if first_room_kw is None else first_room_kw - float(kept_kw[0])
    rest = plan(now, out, left_kw, time_scale, first_room_kw=first)
    return Plan(
        now,
        result.slot_s,
        {**result.power_kw, **rest.power_kw},
        {**result.promised, **{need.key: False for need in out}},  # a car out of the hurry is promised nothing
        {**result.expected_kwh, **rest.expected_kwh},
        frozenset(need.key for need in out),
    )
