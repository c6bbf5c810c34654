"""How the balancer picks a substation for a session. Pure domain: no Flask, no I/O.

Every strategy only picks among healthy substations that have room for the session's power,
counting sessions still in flight; the substation's own atomic admission has the final word.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Protocol

from load_balancer.view import SubstationView


class Strategy(Protocol):
    name: str

    def choose(self, candidates: Sequence[SubstationView], max_power_kw: float) -> SubstationView | None: ...


class LeastUtilization:
    """The substation whose utilization would be lowest once the session is on it.

    Ranking by utilization *after* placement rather than before sends the first sessions on an
    idle grid to the largest substation, which is what keeps utilizations level when capacities differ.
    Ties go to the substation with fewer sessions, then by name, so decisions are reproducible.
    """

    name = "least_utilization"

    def choose(self, candidates: Sequence[SubstationView], max_power_kw: float) -> SubstationView | None:
        best, best_key = None, None
        for view in candidates:
            power = view.power_for(max_power_kw)
            if not view.has_room_for(power):
                continue
            key = (view.utilization_with(power), view.active_sessions + view.pending_sessions, view.name)
            if best_key is None or key < best_key:
                best, best_key = view, key
        return best


class RoundRobin:
    """Each substation in turn, skipping those without room."""

    name = "round_robin"

    def __init__(self) -> None:
        self._turn = 0

    def choose(self, candidates: Sequence[SubstationView], max_power_kw: float) -> SubstationView | None:
        count = len(candidates)
        for offset in range(count):
            view = candidates[(self._turn + offset) % count]
            if view.has_room_for(view.power_for(max_power_kw)):
                self._turn = (self._turn + offset + 1) % count
                return view
        return None


class Random:
    """Uniformly at random among those with room: the baseline the others are measured against."""

    name = "random"

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()

    def choose(self, candidates: Sequence[SubstationView], max_power_kw: float) -> SubstationView | None:
        roomy = [v for v in candidates if v.has_room_for(v.power_for(max_power_kw))]
        return self._rng.choice(roomy) if roomy else None


STRATEGIES = {cls.name: cls for cls in (LeastUtilization, RoundRobin, Random)}


def make_strategy(name: str) -> Strategy:
    return STRATEGIES[name]()
