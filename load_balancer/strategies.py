"""How the balancer picks a substation for a session. Pure domain: no Flask, no I/O.

Every strategy only picks among healthy substations that have room for the session's power,
counting sessions still in flight; the substation's own atomic admission has the final word.
Each is called with the view's lock held, so it sees one consistent state.
"""

from __future__ import annotations

import random
from collections.abc import Set
from typing import Protocol

from load_balancer.grid_view import GridView, KnownSubstation

NOTHING_EXCLUDED: frozenset[str] = frozenset()


def can_take(substation: KnownSubstation, max_power_kw: float, exclude: Set[str]) -> bool:
    return (
        substation.healthy
        and substation.name not in exclude
        and substation.has_room_for(substation.power_for(max_power_kw))
    )


class Strategy(Protocol):
    name: str

    def choose(
        self, grid: GridView, max_power_kw: float, exclude: Set[str] = NOTHING_EXCLUDED
    ) -> KnownSubstation | None: ...

    def admission_condition(
        self, grid: GridView, chosen: KnownSubstation, max_power_kw: float, exclude: Set[str] = NOTHING_EXCLUDED
    ) -> float | None:
        """The most EV power other balancers' sessions at `chosen` may draw for the choice to stand
        (If-Others-EV-Power-At-Most); None when the choice stands whatever they placed there."""
        ...


class LoadBlind:
    """Strategies whose choice does not depend on load: other balancers' sessions cannot make it wrong."""

    def admission_condition(self, grid, chosen, max_power_kw, exclude=NOTHING_EXCLUDED) -> None:
        return None


class LeastUtilization:
    """The healthy substation with the lowest utilization that has room for the session.

    The grid view keeps substations ranked, so this is the first entry with room: O(1) while the grid has
    room, and never a scan of every substation per request. Ties go to the larger substation, which
    sends an idle grid's first sessions where they weigh least, then to fewer sessions, then by name.
    """

    name = "least_utilization"

    def choose(self, grid: GridView, max_power_kw: float, exclude: Set[str] = NOTHING_EXCLUDED):
        return next(self._candidates(grid, max_power_kw, exclude), None)

    def admission_condition(self, grid, chosen, max_power_kw, exclude=NOTHING_EXCLUDED) -> float | None:
        """What this balancer believes other balancers' sessions at `chosen` draw, plus what they could add
        before `chosen` would rank after the runner-up, plus one session: the choice stands until then.

        The one session of tolerance is what replicas promise (within 2 sessions of each other) bought
        cheaply: insisting on exact order made a second choice of most choices under continuous load
        (`python -m bench.replicas` measures how many). With no runner-up the choice always stands."""
        if chosen.others_ev_power_kw is None:
            return None  # the substation did not say: ask without a condition
        runner_up = next((v for v in self._candidates(grid, max_power_kw, exclude) if v is not chosen), None)
        if runner_up is None:
            return None
        slack_kw = runner_up.committed_kw / runner_up.capacity_kw * chosen.capacity_kw - chosen.committed_kw
        return chosen.others_ev_power_kw + max(0.0, slack_kw) + chosen.power_for(max_power_kw)

    @staticmethod
    def _candidates(grid: GridView, max_power_kw: float, exclude: Set[str]):
        for substation in grid.ranked():
            if substation.name not in exclude and substation.has_room_for(substation.power_for(max_power_kw)):
                yield substation


class RoundRobin(LoadBlind):
    """Each substation in turn, skipping those down or without room."""

    name = "round_robin"

    def __init__(self) -> None:
        self._turn = 0

    def choose(self, grid: GridView, max_power_kw: float, exclude: Set[str] = NOTHING_EXCLUDED):
        candidates = grid.in_order()
        count = len(candidates)
        for offset in range(count):
            substation = candidates[(self._turn + offset) % count]
            if can_take(substation, max_power_kw, exclude):
                self._turn = (self._turn + offset + 1) % count
                return substation
        return None


class Random(LoadBlind):
    """Uniformly at random among those that can take the session: the baseline the others are measured against."""

    name = "random"
    # Rejection sampling: a uniform pick among all, kept only if it can take the session, is uniform among
    # those that can. After this many misses the grid is mostly full or down, and we filter instead.
    QUICK_TRIES = 8

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()

    def choose(self, grid: GridView, max_power_kw: float, exclude: Set[str] = NOTHING_EXCLUDED):
        candidates = grid.in_order()
        if not candidates:
            return None
        for _ in range(self.QUICK_TRIES):
            substation = self._rng.choice(candidates)
            if can_take(substation, max_power_kw, exclude):
                return substation
        able = [v for v in candidates if can_take(v, max_power_kw, exclude)]
        return self._rng.choice(able) if able else None


STRATEGIES = {cls.name: cls for cls in (LeastUtilization, RoundRobin, Random)}


def make_strategy(name: str) -> Strategy:
    return STRATEGIES[name]()
