"""How the balancer picks a substation for a session. Pure domain: no Flask, no I/O.

Every strategy only picks among healthy substations where the request would start now, counting sessions
still in flight; the substation's own atomic admission has the final word. Each is called with the grid
view's lock held, so it sees one consistent state.

A choice made on load can be made wrong by sessions other balancer replicas place behind this one's back:
such a strategy also says under which condition its choice stands (`Condition`), and the substation checks
it where the sessions are.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Set
from dataclasses import dataclass
from typing import Protocol

from grid_common.protocol import ChargeRequest
from load_balancer.grid_view import FULL_POWER_KW, GridView, KnownSubstation

NOTHING_EXCLUDED: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Condition:
    """The most other balancers' sessions at the chosen substation may draw (kW), or number, for the choice
    to stand (If-Others-EV-Power-At-Most, If-Others-Sessions-At-Most)."""

    others_ev_power_at_most: float | None = None
    others_sessions_at_most: int | None = None


class Strategy(Protocol):
    name: str

    def choose(
        self, grid: GridView, request: ChargeRequest, exclude: Set[str] = NOTHING_EXCLUDED
    ) -> KnownSubstation | None: ...

    def admission_condition(
        self, grid: GridView, chosen: KnownSubstation, request: ChargeRequest, exclude: Set[str] = NOTHING_EXCLUDED
    ) -> Condition | None:
        """When the choice stands whatever other balancers placed at `chosen`: None."""
        ...

    def pick(
        self, grid: GridView, request: ChargeRequest, exclude: Set[str], conditional: bool
    ) -> tuple[KnownSubstation, Condition | None] | None:
        """The choice, and (if `conditional`) its admission condition: what choose and admission_condition
        give, in one pass where the strategy can."""
        ...


def can_take(substation: KnownSubstation, request: ChargeRequest, exclude: Set[str]) -> bool:
    return substation.name not in exclude and substation.can_start(request)


class LoadBlind:
    """Strategies whose choice does not depend on load: other balancers' sessions cannot make it wrong."""

    def choose(
        self, grid: GridView, request: ChargeRequest, exclude: Set[str] = NOTHING_EXCLUDED
    ) -> KnownSubstation | None:
        raise NotImplementedError

    def admission_condition(self, grid, chosen, request, exclude=NOTHING_EXCLUDED) -> None:
        return None

    def pick(self, grid, request, exclude, conditional) -> tuple[KnownSubstation, None] | None:
        chosen = self.choose(grid, request, exclude)
        return None if chosen is None else (chosen, None)


class Ranked:
    """Strategies that take the first candidate of a ranking: the runner-up their condition rests on is the
    next candidate, so a decision walks the ranking once for both."""

    def choose(
        self, grid: GridView, request: ChargeRequest, exclude: Set[str] = NOTHING_EXCLUDED
    ) -> KnownSubstation | None:
        return next(self._candidates(grid, request, exclude), None)

    def admission_condition(self, grid, chosen, request, exclude=NOTHING_EXCLUDED) -> Condition | None:
        runner_up = next((s for s in self._candidates(grid, request, exclude) if s is not chosen), None)
        return self._condition(grid, chosen, runner_up, request)

    def pick(self, grid, request, exclude, conditional) -> tuple[KnownSubstation, Condition | None] | None:
        candidates = self._candidates(grid, request, exclude)
        chosen = next(candidates, None)
        if chosen is None:
            return None
        return chosen, self._condition(grid, chosen, next(candidates, None), request) if conditional else None

    @staticmethod
    def _candidates(grid: GridView, request: ChargeRequest, exclude: Set[str]) -> Iterator[KnownSubstation]:
        raise NotImplementedError

    @staticmethod
    def _condition(
        grid: GridView, chosen: KnownSubstation, runner_up: KnownSubstation | None, request: ChargeRequest
    ) -> Condition | None:
        raise NotImplementedError


class LeastUtilization(Ranked):
    """The healthy substation with the lowest utilization where the session starts now.

    The grid view keeps substations ranked, so this is the first entry with room: O(1) while the grid has
    room, and never a scan of every substation per request. Ties go to the larger substation, which
    sends an idle grid's first sessions where they weigh least, then to fewer sessions, then by name.
    """

    name = "least_utilization"

    @staticmethod
    def _condition(grid, chosen, runner_up, request) -> Condition | None:
        """What this balancer believes other balancers' sessions at `chosen` draw, plus what they could add
        before `chosen` would rank after the runner-up, plus one session: the choice stands until then.

        The one session of tolerance is what replicas promise (within 2 sessions of each other) bought
        cheaply: insisting on exact order made a second choice of most choices under continuous load
        (`python -m bench.replicas` measures how many). With no runner-up the choice always stands."""
        return utilization_condition(chosen, runner_up, request)

    @staticmethod
    def _candidates(grid: GridView, request: ChargeRequest, exclude: Set[str]) -> Iterator[KnownSubstation]:
        return (substation for substation in grid.ranked() if can_take(substation, request, exclude))


def utilization_condition(
    chosen: KnownSubstation, runner_up: KnownSubstation | None, request: ChargeRequest
) -> Condition | None:
    if chosen.others_ev_power_kw is None or runner_up is None:
        return None  # the substation did not say, or there is no other choice: ask without a condition
    slack_kw = runner_up.committed_kw / runner_up.capacity_kw * chosen.capacity_kw - chosen.committed_kw
    allowed_kw = chosen.others_ev_power_kw + max(0.0, slack_kw) + chosen.power_for(request.max_power_kw)
    return Condition(others_ev_power_at_most=allowed_kw)


class MostPower(Ranked):
    """The substation where the session would draw the most power now, given its priority: with sharing,
    utilization is near 100 % wherever sessions are, and what a newcomer gets is what differs. Where every
    candidate would give it full power, ties go to the least utilized, as least_utilization does.

    The grid view keeps substations ranked per priority by that power (capped at full power), then by
    utilization: the first entry where the request starts is the choice, O(1) while the grid has room."""

    name = "most_power"

    @staticmethod
    def _condition(grid, chosen, runner_up, request) -> Condition | None:
        """Full power at both the chosen and the runner-up: the choice rests on utilization, and stands as
        least_utilization's does. Otherwise it rests on what a newcomer gets: it stands while other
        balancers place at most as many sessions at `chosen` as leave it above the runner-up, plus one."""
        if runner_up is None or chosen.others_sessions is None:
            return None
        chosen_kw = grid.ranked_power_kw(chosen, request.priority)
        runner_up_kw = grid.ranked_power_kw(runner_up, request.priority)
        if runner_up_kw >= FULL_POWER_KW:
            return utilization_condition(chosen, runner_up, request)
        if runner_up_kw <= 0:
            return None  # the runner-up offers nothing: the choice stands whatever others place here
        extra = chosen.sessions_until(request.priority, runner_up_kw) if chosen_kw > runner_up_kw else 0
        return Condition(others_sessions_at_most=chosen.others_sessions + extra + 1)

    @staticmethod
    def _candidates(grid: GridView, request: ChargeRequest, exclude: Set[str]) -> Iterator[KnownSubstation]:
        ranked = grid.ranked_by_power(request.priority)
        return (substation for substation in ranked if can_take(substation, request, exclude))


class RoundRobin(LoadBlind):
    """Each substation in turn, skipping those down or without room."""

    name = "round_robin"

    def __init__(self) -> None:
        self._turn = 0

    def choose(
        self, grid: GridView, request: ChargeRequest, exclude: Set[str] = NOTHING_EXCLUDED
    ) -> KnownSubstation | None:
        candidates = grid.in_order()
        count = len(candidates)
        for offset in range(count):
            substation = candidates[(self._turn + offset) % count]
            if can_take(substation, request, exclude):
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

    def choose(
        self, grid: GridView, request: ChargeRequest, exclude: Set[str] = NOTHING_EXCLUDED
    ) -> KnownSubstation | None:
        candidates = grid.in_order()
        if not candidates:
            return None
        for _ in range(self.QUICK_TRIES):
            substation = self._rng.choice(candidates)
            if can_take(substation, request, exclude):
                return substation
        able = [s for s in candidates if can_take(s, request, exclude)]
        return self._rng.choice(able) if able else None


STRATEGIES = {cls.name: cls for cls in (MostPower, LeastUtilization, RoundRobin, Random)}


def make_strategy(name: str) -> Strategy:
    return STRATEGIES[name]()
