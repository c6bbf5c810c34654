"""How a substation shares its headroom among its sessions, and so what admission counts for each: one
policy per `Allocation`, chosen per substation.

- FairSharing (`fair`, the default): a session is admitted when its minimum fits with everyone's under the
  headroom over the admission's look-ahead. The headroom over the next step is shared: every charging
  session its minimum, then priority by priority, max-min fair (allocation.py). Sessions whose minimums no
  longer fit wait (paused), the lowest priority and latest first; queued ones start, in order, while theirs
  fit.
- FixedPower (`fixed`): each session draws its maximum for its whole life, admitted only if that fits under
  capacity with the background's peak over its whole life; paused only when a grid operator's limit takes
  away what admission counted on. For comparison.

Pure: a policy reads sessions and sums, and says what to do; the substation does it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from grid_common.protocol import DEFAULT_MAX_POWER_KW, DEFAULT_MIN_POWER_KW, PRIORITIES, Allocation
from substation_service.allocation import Demand, allocate_with_levels, fitting_prefix
from substation_service.background import BackgroundDemand
from substation_service.grid_limits import GridLimits
from substation_service.sessions import Session

# Float sums of kW drift; a session that fits to within a milliwatt fits.
TOLERANCE_KW = 1e-6


@dataclass(frozen=True)
class Shares:
    """What one step of sharing gives: kW per session id, the queued sessions that start now (in order), and
    per priority the level of max-min fairness (math.inf: all at their maximum; fair only)."""

    kw: dict[str, float]
    starts: list[Session]
    levels: dict[int, float]


@dataclass(frozen=True)
class Grid:
    """What a policy needs to know of its substation: its settings, and its limits over time (rated capacity, and
    the grid operator's schedule, which changes under the substation's lock)."""

    limits: GridLimits  # its rated capacity, and the grid operator's limits over time
    charger_max_power_kw: float
    background: BackgroundDemand
    lookahead_s: float  # what is admitted must fit this long (fair)
    step_s: float
    time_scale: float

    def admission_headroom_kw(self, moment: float) -> float:
        end = moment + self.lookahead_s
        return self.limits.capacity_between(moment, end) - self.background.peak_between(moment, end)


class Policy(Protocol):
    kind: Allocation

    def needed_kw(self, session: Session) -> float:
        """What admission counts for a session."""
        ...

    def fits(self, committed_kw: float, session: Session, now: float) -> bool:
        """Whether `session` fits beside what admission counts for the started sessions (`committed_kw`)."""
        ...

    def shares(self, started: list[Session], queue: list[Session], headroom_kw: float, committed_kw: float,
               moment: float) -> Shares:  # fmt: skip
        """The next step's power for the started sessions (in order) and for the queued ones that start."""
        ...

    def sharing_state(
        self, spare_kw: float, excess_kw: list[float], charging: list[int]
    ) -> tuple[tuple[float, ...], tuple[int, ...]]:
        """Per priority p: what a newcomer of priority p could draw from, and how many it would share it with,
        given the headroom nobody takes (`spare_kw`) and, per priority, what charging sessions draw above
        their minimum and how many charge."""
        ...

    def newcomer_kw(self) -> float:
        """What admission counts for a newcomer that asks for the defaults."""
        ...


class FairSharing:
    kind = Allocation.FAIR

    def __init__(self, grid: Grid) -> None:
        self.grid = grid

    def needed_kw(self, session: Session) -> float:
        return session.min_kw

    def fits(self, committed_kw: float, session: Session, now: float) -> bool:
        return committed_kw + session.min_kw <= self.grid.admission_headroom_kw(now) + TOLERANCE_KW

    def shares(
        self, started: list[Session], queue: list[Session], headroom_kw: float, committed_kw: float, moment: float
    ) -> Shares:
        fitting, waiting = fitting_prefix(headroom_kw, [session.demand for session in started])
        starts: list[Session] = []
        if not waiting:  # nobody paused: the queue's heads start, in order, while their minimums fit
            admission_headroom = min(headroom_kw, self.grid.admission_headroom_kw(moment))
            used = sum(demand.min_kw for demand in fitting)
            for head in queue:
                if used + head.min_kw > admission_headroom + TOLERANCE_KW:
                    break
                starts.append(head)
                used += head.min_kw
                fitting.append(head.demand)
        kw, levels = allocate_with_levels(headroom_kw, fitting)
        if waiting:
            levels = {**levels, **{demand.priority: levels.get(demand.priority, 0.0) for demand in waiting}}
        return Shares(kw, starts, levels)

    def sharing_state(
        self, spare_kw: float, excess_kw: list[float], charging: list[int]
    ) -> tuple[tuple[float, ...], tuple[int, ...]]:
        shareable, sharing, excess, count = [], [], 0.0, 0
        for priority in PRIORITIES:
            excess += excess_kw[priority]
            count += charging[priority]
            shareable.append(spare_kw + max(0.0, excess))
            sharing.append(count)
        return tuple(shareable), tuple(sharing)

    def newcomer_kw(self) -> float:
        return DEFAULT_MIN_POWER_KW


class FixedPower:
    kind = Allocation.FIXED

    def __init__(self, grid: Grid) -> None:
        self.grid = grid

    def needed_kw(self, session: Session) -> float:
        return session.max_kw

    def fits(self, committed_kw: float, session: Session, now: float) -> bool:
        grid = self.grid
        life_s = session.energy_kwh / session.max_kw * 3600.0 / grid.time_scale
        end = now + max(life_s, grid.step_s)
        capacity = grid.limits.capacity_between(now, end)
        return committed_kw + session.max_kw <= capacity - grid.background.peak_between(now, end) + TOLERANCE_KW

    def shares(
        self, started: list[Session], queue: list[Session], headroom_kw: float, committed_kw: float, moment: float
    ) -> Shares:
        # Each draws its maximum while the maxima fit; admission saw to it that they do, unless the headroom
        # fell below (a grid operator's limit): then the last to come pause, as under fair sharing.
        demands = [Demand(s.session_id, s.max_kw, s.max_kw, s.priority) for s in started]
        fitting, waiting = fitting_prefix(headroom_kw, demands)
        starts: list[Session] = []
        if not waiting:
            for head in queue:  # the queue's heads start, in order, while theirs fit
                if not self.fits(committed_kw, head, moment):
                    break
                starts.append(head)
                committed_kw += head.max_kw
        kw = {demand.key: demand.max_kw for demand in fitting}
        return Shares(kw | {session.session_id: session.max_kw for session in starts}, starts, {})

    def sharing_state(
        self, spare_kw: float, excess_kw: list[float], charging: list[int]
    ) -> tuple[tuple[float, ...], tuple[int, ...]]:
        return (spare_kw,) * len(PRIORITIES), (0,) * len(PRIORITIES)  # nobody shares: what nobody takes

    def newcomer_kw(self) -> float:
        return min(DEFAULT_MAX_POWER_KW, self.grid.charger_max_power_kw)


def policy_for(allocation: Allocation, grid: Grid) -> Policy:
    policies: dict[Allocation, Callable[[Grid], Policy]] = {Allocation.FAIR: FairSharing, Allocation.FIXED: FixedPower}
    return policies[Allocation(allocation)](grid)
