"""How a substation shares its headroom among its sessions, and so what admission counts for each: one
policy per `Allocation`, chosen per substation.

- FairSharing (`fair`, the default): a session is admitted when its minimum fits with everyone's under the
  headroom over the admission's look-ahead, in total and on each phase. The headroom over the next step is
  shared: every charging session its minimum, then priority by priority, max-min fair (allocation.py; with
  1-phase cars, under the total and the three phases at once: filling.py). Sessions whose minimums no
  longer fit wait (paused), the lowest priority and latest first; queued ones start, in order, while theirs
  fit.
- FixedPower (`fixed`): each session draws its maximum for its whole life, admitted only if that fits under
  capacity with the background's peak over its whole life; paused only when a grid operator's limit takes
  away what admission counted on. For comparison.

Pure: a policy reads sessions and sums, and says what to do; the substation does it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from grid_common.protocol import DEFAULT_MAX_POWER_KW, DEFAULT_MIN_POWER_KW, PRIORITIES, Allocation
from substation_service import filling
from substation_service.allocation import Demand, allocate_with_levels, fitting_prefix
from substation_service.background import BackgroundDemand
from substation_service.circuits import BASE_LIMITS, CircuitTree
from substation_service.forecast import Backfill, QueueForecast, at_maximum_s, backfill_behind, frees
from substation_service.grid_limits import GridLimits
from substation_service.phases import PHASE_COUNT, PhaseSupply, Triple
from substation_service.planning import Need, Plan, plan_most
from substation_service.sessions import Session

BALANCED_SUPPLY = PhaseSupply()
NO_CIRCUITS = CircuitTree()
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
    supply: PhaseSupply = BALANCED_SUPPLY
    circuits: CircuitTree = NO_CIRCUITS
    # The grid operator's limits on circuits, by circuit (a power limit each, over time), set at runtime.
    circuit_limits: Mapping[str, GridLimits] = field(default_factory=dict)

    def circuit_capacities(self, start: float, end: float) -> list[float]:
        """Each circuit limit's capacity over [start, end]: its own, or lower while the grid operator limits the
        circuit; a circuit limited in amperes holds a limit in kW as a third on each phase (the safe side)."""
        capacities = self.circuits.capacities()
        if not self.circuit_limits:
            return capacities
        for index, limit in enumerate(self.circuits.limits):
            operated = self.circuit_limits.get(limit.circuit)
            if operated is not None and operated.periods:
                kw = operated.capacity_between(start, end)
                capacities[index] = min(capacities[index], kw if limit.phase is None else kw / PHASE_COUNT)
        return capacities

    def admission_headroom_kw(self, moment: float) -> float:
        end = moment + self.lookahead_s
        return self.limits.capacity_between(moment, end) - self.background.peak_between(moment, end)

    def admission_phase_headroom_kw(self, moment: float, end: float | None = None) -> Triple:
        """What each phase leaves for the sessions over the look-ahead (or until `end`)."""
        end = moment + self.lookahead_s if end is None else end
        return self.supply.headrooms(self.limits.rated_kw, self.background.peak_between(moment, end))

    def fits_between(self, committed: Committed, session: Session, kw: float, start: float, end: float) -> bool:
        """Whether `kw` more of `session`'s fits beside what admission counts (`committed`) under every limit it
        counts against, at every moment of [start, end]: the total, each phase it draws on, its circuits."""
        room = self.limits.capacity_between(start, end) - self.background.peak_between(start, end)
        return (
            committed.total_kw + kw <= room + TOLERANCE_KW
            and phase_fits(committed.phase_kw, session, kw, self.admission_phase_headroom_kw(start, end))
            and (
                session.circuit is None
                or circuit_fits(committed.circuit_kw, session, kw, self.circuits, self.circuit_capacities(start, end))
            )
        )


@dataclass(frozen=True)
class Committed:
    """What admission counts for the started sessions (minimums, or maxima when fixed), with what silent
    chargers may draw on their own: in total, on each phase, on each circuit limit (circuits.py's order)."""

    total_kw: float
    phase_kw: Sequence[float]
    circuit_kw: Sequence[float] = ()


@dataclass(frozen=True)
class Headroom:
    """What the sessions may draw together over a step: in total, and on each phase."""

    total_kw: float
    phase_kw: Triple
    circuits_kw: tuple[float, ...] = ()  # each circuit limit's room (circuits.py), in the tree's order

    @property
    def three_phase_kw(self) -> float:
        """What cars that all draw on three phases may draw together: the total, or three times the fullest
        phase's room, whichever is less."""
        return min(self.total_kw, PHASE_COUNT * min(self.phase_kw))

    def capacities(self) -> list[float]:
        """The limits filling.py shares under: the total first, then L1, L2, L3, then the circuits'."""
        return [self.total_kw, *self.phase_kw, *self.circuits_kw]


def phase_fits(used: Sequence[float], session: Session, kw: float, room: Sequence[float]) -> bool:
    """Whether `kw` more of `session`'s fits on each phase it draws on, beside `used`."""
    return all(
        used[phase] + weight * kw <= room[phase] + TOLERANCE_KW
        for phase, weight in enumerate(session.weights)
        if weight
    )


def load_of(session: Session, min_kw: float, max_kw: float, circuits: CircuitTree) -> filling.Load:
    """The session as filling.py shares it: against the total (limit 0), each phase it draws on, and the limits
    of its circuit and those above it."""
    counts = circuits.all_counts(session.circuit, session.weights)
    return filling.Load(session.session_id, min_kw, max_kw, session.priority, counts)


def fair_load(session: Session, circuits: CircuitTree) -> filling.Load:
    """load_of for fair sharing: from its minimum to its cap. Kept on the session, and made anew when its
    bounds or priority (its demand), its phases or its circuit change."""
    demand, weights, circuit = session.demand, session.weights, session.circuit
    kept = session.kept_load
    if kept is not None and kept[0] is demand and kept[1] is weights and kept[2] == circuit:
        return kept[3]  # type: ignore[return-value]
    load = load_of(session, demand.min_kw, demand.max_kw, circuits)
    session.kept_load = (demand, weights, circuit, load)
    return load


def circuit_fits(
    used: Sequence[float], session: Session, kw: float, circuits: CircuitTree, capacities: Sequence[float]
) -> bool:
    """Whether `kw` more of `session`'s fits under its circuits' limits (`capacities`), beside `used` (both in the
    tree's order)."""
    return all(
        used[index - BASE_LIMITS] + weight * kw <= capacities[index - BASE_LIMITS] + TOLERANCE_KW
        for index, weight in circuits.counts(session.circuit, session.weights)
    )


def backfill_for(
    policy: Policy, head: Session, started: list[Session], starts: list[Session], committed_kw: float, moment: float
) -> Backfill:
    """Who may start behind `head`, the first of the queue that waits (forecast.py): its start foreseen over the
    started sessions' ends (`committed_kw`: what admission counts for them) and those starting now, and over
    the room the grid will leave."""
    grid, needed_kw = policy.grid, policy.needed_kw
    starting = [(moment + at_maximum_s(s, grid.time_scale), needed_kw(s)) for s in starts]
    forecast = QueueForecast(
        moment,
        grid.admission_headroom_kw,
        frees(started, needed_kw, grid.time_scale) + starting,
        committed_kw + sum(kw for _, kw in starting),
        grid.time_scale,
    )
    return backfill_behind(head, forecast, needed_kw, grid.time_scale)


def queue_starts(
    policy: Policy,
    queue: list[Session],
    fits: Callable[[Session], bool],
    take: Callable[[Session], None],
    started: list[Session],
    committed_kw: float,
    moment: float,
) -> list[Session]:
    """The queued sessions that start now, in order: the heads while each fits (`fits`, asked after `take` has
    counted those before it), then, behind the first that waits, those that may backfill (forecast.py)."""
    starts: list[Session] = []
    backfill: Backfill | None = None
    for head in queue:
        head_fits = fits(head)
        if backfill is None and not head_fits:  # the first that waits: those behind it may only backfill
            backfill = backfill_for(policy, head, started, starts, committed_kw, moment)
        elif head_fits and (backfill is None or backfill.allows(head, moment)):
            starts.append(head)
            take(head)
    return starts


T = TypeVar("T")


def hold(fitting: list[T], waiting: list[T], held: int | None) -> tuple[list[T], list[T]]:
    """(fitting, waiting) with the started sessions from place `held` on waiting too: the first of them is a paused
    car that must stay paused a while yet (damping.py), and no car overtakes one before it."""
    if held is None or held >= len(fitting):
        return fitting, waiting
    return fitting[:held], fitting[held:] + waiting


def all_three_phase(*groups: Iterable[Session]) -> bool:
    """Every car on three phases and on no circuit: then one limit binds them all (Headroom.three_phase_kw)."""
    return all(session.phases == PHASE_COUNT and session.circuit is None for group in groups for session in group)


class Policy(Protocol):
    kind: Allocation
    grid: Grid
    plan: Plan | None  # the departures planned at the last step (planning.py); None: none planned

    def needed_kw(self, session: Session) -> float:
        """What admission counts for a session."""
        ...

    def fits(self, committed: Committed, session: Session, now: float) -> bool:
        """Whether `session` fits beside what admission counts for the started sessions (`committed`)."""
        ...

    def shares(self, started: list[Session], queue: list[Session], headroom: Headroom, committed: Committed,
               moment: float, even: bool | None = None, held: int | None = None,
               everyone_fits: bool = False) -> Shares:  # fmt: skip
        """The next step's power for the started sessions (in order) and for the queued ones that start. `even`:
        whether every one of them is on three phases and on no circuit, if the caller knows (else it is walked);
        `held`: the place of the first started session that must stay paused (it and those after it wait);
        `everyone_fits`: what admission counts for them all (needed_kw), summed, fits under every limit of
        `headroom` with a margin, so none waits for room and the walk that finds who does can be spared."""
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

    def plan_ahead(self, started: list[Session], headroom_kw: float, moment: float) -> None:
        """Make `plan` for a step with nothing to share (every started car draws its maximum): a driver is still
        told whether the energy comes by the departure, as the background rises later."""
        ...


class FairSharing:
    kind = Allocation.FAIR
    plans = False  # whether cars with a departure get floors (PlannedSharing)

    def __init__(self, grid: Grid) -> None:
        self.grid = grid
        self.filling = filling.Filling()  # keeps its sessions' kinds from one step to the next
        self.plan: Plan | None = None

    def needed_kw(self, session: Session) -> float:
        return session.min_kw

    def fits(self, committed: Committed, session: Session, now: float) -> bool:
        return self.grid.fits_between(committed, session, session.min_kw, now, now + self.grid.lookahead_s)

    def shares(
        self,
        started: list[Session],
        queue: list[Session],
        headroom: Headroom,
        committed: Committed,
        moment: float,
        even: bool | None = None,
        held: int | None = None,
        everyone_fits: bool = False,
    ) -> Shares:
        if even if even is not None else all_three_phase(started, queue):
            return self._three_phase_shares(
                started, queue, headroom.three_phase_kw, committed.total_kw, moment, held, everyone_fits
            )
        return self._phase_shares(started, queue, headroom, committed.total_kw, moment, held, everyone_fits)

    def _three_phase_shares(
        self,
        started: list[Session],
        queue: list[Session],
        headroom_kw: float,
        committed_kw: float,
        moment: float,
        held: int | None,
        everyone_fits: bool,
    ) -> Shares:
        """Every car on three phases: the phases bind the total alone (Headroom.three_phase_kw), and one limit is
        shared by water-filling, exactly as filling.py would, in a fraction of its time."""
        demands = [session.demand for session in started]
        fitting, waiting = hold(*((demands, []) if everyone_fits else fitting_prefix(headroom_kw, demands)), held)
        starts: list[Session] = []
        if queue and not waiting:  # nobody paused: the queue's heads start while their minimums fit
            admission = Headroom(self.grid.admission_headroom_kw(moment), self.grid.admission_phase_headroom_kw(moment))
            admission_headroom = min(headroom_kw, admission.three_phase_kw)
            used = [sum(demand.min_kw for demand in fitting)]

            def take(head: Session) -> None:
                used[0] += head.min_kw
                fitting.append(head.demand)

            starts = queue_starts(
                self,
                queue,
                lambda head: used[0] + head.min_kw <= admission_headroom + TOLERANCE_KW,
                take,
                started,
                committed_kw,
                moment,
            )
        floors = self.plans and self.floors([*started, *starts], {d.key for d in fitting}, headroom_kw, moment)
        if floors:  # what cars with a departure must draw now at least to leave with their energy
            fitting = [Demand(d.key, floors[d.key], d.max_kw, d.priority) if d.key in floors else d for d in fitting]
        kw, levels = allocate_with_levels(headroom_kw, fitting)
        if waiting:
            levels = {**levels, **{demand.priority: levels.get(demand.priority, 0.0) for demand in waiting}}
        return Shares(kw, starts, levels)

    def floors(
        self, sessions: list[Session], charging: set[str], headroom_kw: float, moment: float
    ) -> dict[str, float]:
        """The least each charging session draws over the step: fair sharing has none above the minimums."""
        return {}

    def _phase_shares(
        self,
        started: list[Session],
        queue: list[Session],
        headroom: Headroom,
        committed_kw: float,
        moment: float,
        held: int | None,
        everyone_fits: bool,
    ) -> Shares:
        """Some car on one phase or on a circuit: shared under the total, each phase and each circuit limit at once
        (filling.py)."""
        capacities = headroom.capacities()
        circuits = self.grid.circuits
        loads = [fair_load(session, circuits) for session in started]
        if everyone_fits:
            fitting, waiting = hold(loads, [], held)
        else:
            fitting, waiting = hold(*filling.fitting_prefix(capacities, loads), held)
        starts: list[Session] = []
        if queue and not waiting:  # nobody paused: the queue's heads start, in order, while their minimums fit
            grid = self.grid
            room = [
                grid.admission_headroom_kw(moment),
                *grid.admission_phase_headroom_kw(moment),
                *headroom.circuits_kw,
            ]
            room = [min(limit, admitted) for limit, admitted in zip(capacities, room, strict=True)]
            used = [0.0] * len(room)
            for load in fitting:
                for limit, weight in load.counts:
                    used[limit] += weight * load.min_kw

            def fits(head: Session) -> bool:
                load = fair_load(head, circuits)
                return all(used[c] + w * load.min_kw <= room[c] + TOLERANCE_KW for c, w in load.counts)

            def take(head: Session) -> None:
                load = fair_load(head, circuits)
                for limit, weight in load.counts:
                    used[limit] += weight * load.min_kw
                fitting.append(load)

            starts = queue_starts(self, queue, fits, take, started, committed_kw, moment)
        floors = self.plans and self.floors([*started, *starts], {d.key for d in fitting}, headroom.total_kw, moment)
        if floors:  # raised as far as every phase and circuit holds (the plan counts the total only)
            fitting = filling.raise_minimums(capacities, fitting, floors)
        kw, levels = self.filling.fill(capacities, fitting)
        if waiting:
            levels = {**levels, **{load.priority: levels.get(load.priority, 0.0) for load in waiting}}
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

    def plan_ahead(self, started: list[Session], headroom_kw: float, moment: float) -> None:
        if self.plans:
            self.floors(started, {s.session_id for s in started}, headroom_kw, moment)

    def newcomer_kw(self) -> float:
        return DEFAULT_MIN_POWER_KW


class PlannedSharing(FairSharing):
    """Fair sharing, with departures planned (planning.py): over the step, each charging car with a departure
    draws at least what the plan gives it now, and the rest of the headroom is shared max-min fairly among
    all as ever. Cars without a departure keep fair sharing's minimums. The plan is kept for the reports: each
    car's plan, and whether it is promised its energy by its departure.

    The plan counts the total only: with a 1-phase car or a circuit among them (filling.py's path), each floor is
    applied as far as every phase and circuit it counts against still holds, the car leaving first first."""

    kind = Allocation.PLANNED
    plans = True

    def floors(
        self, sessions: list[Session], charging: set[str], headroom_kw: float, moment: float
    ) -> dict[str, float]:
        grid = self.grid
        departing = [s for s in sessions if s.departure_at is not None and s.session_id in charging]
        if not departing:
            self.plan = None
            return {}
        # Those without a departure draw their minimums at least, as long as the plan looks.
        others_kw = sum(s.min_kw for s in sessions if s.departure_at is None and s.session_id in charging)
        kept = self._kept_floors(departing, headroom_kw - others_kw, moment)
        if kept is not None:
            return kept
        needs = [
            Need(s.session_id, s.energy_kwh - s.delivered(moment, grid.time_scale), s.min_kw, s.cap_kw, s.departure_at)
            for s in departing
            if s.departure_at is not None  # (for the type checker: every one of them has one)
        ]

        def room_kw(start: float, end: float) -> float:
            return grid.limits.capacity_between(start, end) - grid.background.peak_between(start, end) - others_kw

        self.plan = plan_most(moment, needs, room_kw, grid.time_scale, first_room_kw=headroom_kw - others_kw)
        return self._floors_of(self.plan, departing)

    def _kept_floors(self, departing: list[Session], room_kw: float, moment: float) -> dict[str, float] | None:
        """The floors of the plan made earlier in the same slot, while it planned every car now charging with a
        departure and its floors still fit the `room_kw` of now: a car that completed, or a reading, does not
        plan a thousand cars again (several times a step). None: plan anew."""
        kept = self.plan
        if kept is None or moment >= kept.start + kept.slot_s or moment < kept.start:
            return None
        if any(s.session_id not in kept.power_kw for s in departing):
            return None
        floors = self._floors_of(kept, departing)
        return floors if sum(floors.values()) <= room_kw + TOLERANCE_KW else None

    @staticmethod
    def _floors_of(planned: Plan, departing: list[Session]) -> dict[str, float]:
        """What each car draws now at least, the car leaving first first: its plan's first slot, within its
        bounds."""
        by_departure = sorted(departing, key=lambda s: s.departure_at or 0.0)
        return {s.session_id: min(s.cap_kw, max(s.min_kw, planned.floor_kw(s.session_id))) for s in by_departure}


class FixedPower:
    kind = Allocation.FIXED

    def __init__(self, grid: Grid) -> None:
        self.grid = grid
        self.plan: Plan | None = None  # each car draws its maximum: nothing to plan

    def needed_kw(self, session: Session) -> float:
        return session.max_kw

    def fits(self, committed: Committed, session: Session, now: float) -> bool:
        grid = self.grid
        life_s = session.energy_kwh / session.max_kw * 3600.0 / grid.time_scale
        return grid.fits_between(committed, session, session.max_kw, now, now + max(life_s, grid.step_s))

    def shares(
        self,
        started: list[Session],
        queue: list[Session],
        headroom: Headroom,
        committed: Committed,
        moment: float,
        even: bool | None = None,
        held: int | None = None,
        everyone_fits: bool = False,
    ) -> Shares:
        # Each draws its maximum while the maxima fit; admission saw to it that they do, unless the headroom
        # fell below (a grid operator's limit): then the last to come pause, as under fair sharing.
        if even if even is not None else all_three_phase(started):
            demands = [Demand(s.session_id, s.max_kw, s.max_kw, s.priority) for s in started]
            fitting = [demand.key for demand in hold(*fitting_prefix(headroom.three_phase_kw, demands), held)[0]]
            waiting = len(fitting) < len(started)
        elif everyone_fits:
            fitting = [s.session_id for s in hold(started, [], held)[0]]
            waiting = len(fitting) < len(started)
        else:
            loads = [load_of(s, s.max_kw, s.max_kw, self.grid.circuits) for s in started]
            fitting_loads, waiting_loads = hold(*filling.fitting_prefix(headroom.capacities(), loads), held)
            fitting, waiting = [load.key for load in fitting_loads], bool(waiting_loads)
        starts: list[Session] = []
        if not waiting:  # the queue's heads start while their maxima fit over their lives
            total_kw, phase_kw, circuit_kw = [committed.total_kw], list(committed.phase_kw), list(committed.circuit_kw)

            def take(head: Session) -> None:
                total_kw[0] += head.max_kw
                for phase, weight in enumerate(head.weights):
                    phase_kw[phase] += weight * head.max_kw
                for index, weight in self.grid.circuits.counts(head.circuit, head.weights):
                    circuit_kw[index - BASE_LIMITS] += weight * head.max_kw

            starts = queue_starts(
                self,
                queue,
                lambda head: self.fits(Committed(total_kw[0], phase_kw, circuit_kw), head, moment),
                take,
                started,
                committed.total_kw,
                moment,
            )
        kept = set(fitting)
        kw = {s.session_id: s.max_kw for s in started if s.session_id in kept}
        return Shares(kw | {session.session_id: session.max_kw for session in starts}, starts, {})

    def sharing_state(
        self, spare_kw: float, excess_kw: list[float], charging: list[int]
    ) -> tuple[tuple[float, ...], tuple[int, ...]]:
        return (spare_kw,) * len(PRIORITIES), (0,) * len(PRIORITIES)  # nobody shares: what nobody takes

    def newcomer_kw(self) -> float:
        return min(DEFAULT_MAX_POWER_KW, self.grid.charger_max_power_kw)

    def plan_ahead(self, started: list[Session], headroom_kw: float, moment: float) -> None:
        """Each car draws its power: nothing to plan."""


def policy_for(allocation: Allocation, grid: Grid) -> Policy:
    policies: dict[Allocation, Callable[[Grid], Policy]] = {
        Allocation.FAIR: FairSharing,
        Allocation.PLANNED: PlannedSharing,
        Allocation.FIXED: FixedPower,
    }
    return policies[Allocation(allocation)](grid)
