"""A substation's sessions, and what an admission may come to: the data substation.py works on."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

from grid_common.protocol import (
    ChargeRequest,
    GridPhase,
    LoadReport,
    SchedulePeriod,
    SessionReport,
    SessionState,
)
from substation_service.allocation import Demand
from substation_service.meter import Meter
from substation_service.phases import BALANCED, phase_weights

# Periods a session's schedule keeps: the latest, which is what a charger needs.
SCHEDULE_LIMIT = 48


@dataclass(eq=False)
class Session:
    """One car's session. Energy is counted up to `delivered_at`; from then on it flows at `flow_kw` (its
    limit, or what its meter read: meter.py)."""

    session_id: str
    vehicle_id: str
    energy_kwh: float
    min_kw: float
    max_kw: float  # the car's maximum, capped by the charger
    priority: int
    requested_at: float
    sequence: int  # order of arrival: who was first
    state: SessionState = SessionState.QUEUED
    allocated_kw: float = 0.0
    delivered_kwh: float = 0.0
    delivered_at: float = 0.0
    started_at: float | None = None
    ended_at: float | None = None
    # The balancer process that placed it, to tell other balancers' sessions from its own. Not journaled:
    # after a restart every session counts as another's, for every balancer alike.
    placed_by: str | None = None
    schedule: deque[SchedulePeriod] = field(default_factory=deque)
    version: int = 0  # bumped whenever allocated_kw changes: older completion times are stale
    # The charger it is plugged into, and the charger's transaction (OCPP), when it came from one.
    charger_id: str | None = None
    transaction_id: str | None = None
    # What its charger draws on its own when it hears nothing (its default profile): counted while its meter
    # is silent, since then nobody knows whether its limits still reach it.
    failsafe_kw: float = 0.0
    phases: int = 3  # the car's: 1 or 3
    grid_phase: GridPhase | None = None  # where a 1-phase car draws (its charger's wiring, or the substation's pick)
    circuit: str | None = None  # the circuit its charger hangs on (circuits.py); None: on the substation alone
    # When it last went from charging to paused (damping.py: a paused car waits a least time). Not journaled: after
    # a restart it may resume at once, which costs no safety.
    paused_at: float | None = None
    # Its charger can switch it between three phases and one (phase_switching.py); the grid phase one phase is
    # on (its charger's L1); when it last switched, and whether it is switched down now.
    switchable: bool = False
    wired_phase: GridPhase | None = None
    switched_at: float | None = None
    # When its driver leaves (wall seconds), wanting its energy by then (planning.py); None: no departure given.
    departure_at: float | None = None

    def __post_init__(self) -> None:
        self.state = SessionState(self.state)
        self.grid_phase = None if self.grid_phase is None else GridPhase(self.grid_phase)
        # Its share of its power on each grid phase (L1, L2, L3): a third each, or all on one.
        self.weights = phase_weights(self.phases, self.grid_phase)
        # What it may draw, as the allocator takes it: made anew only when its meter caps it (meter.py).
        self.demand = Demand(self.session_id, self.min_kw, self.max_kw, self.priority)
        # Its demand as the allocator under phases and circuits takes it (policy.fair_load), with what it was
        # made from: made anew only when one of those changes, not for every session at every step.
        self.kept_load: tuple[object, ...] | None = None
        self.meter = Meter()
        # What energy flows at: its limit, or what its meter read last (a car may take less than it is given).
        self.flow_kw = self.allocated_kw

    @property
    def draw_weights(self) -> tuple[float, float, float]:
        """Where what its charger draws on its own lands (its default profile, while its meter is silent; a draw
        beyond its limit): a charger that switched a 3-phase car to one phase draws on three phases under its
        default (a third on each, in amperes), so that is where it is counted; otherwise where the car draws."""
        return BALANCED if self.switchable and self.phases == 1 else self.weights

    def switch_to(self, phases: int, grid_phase: GridPhase | None, moment: float) -> None:
        """Its charger switches it to `phases` (phase_switching.py), on `grid_phase` for one: its bounds keep their
        current a phase, so in kW they scale with the phases."""
        factor = phases / self.phases
        self.min_kw, self.max_kw = self.min_kw * factor, self.max_kw * factor
        self.phases = phases
        self.grid_phase = grid_phase if phases == 1 else None
        self.weights = phase_weights(phases, self.grid_phase)
        self.demand = Demand(self.session_id, self.min_kw, self.max_kw, self.priority)
        self.switched_at = moment

    def place_on(self, phase: GridPhase) -> None:
        """A 1-phase car drawing on `phase` (a 3-phase car draws on all three, wherever it is placed)."""
        if self.phases == 1:
            self.grid_phase = phase
            self.weights = phase_weights(self.phases, phase)

    @property
    def cap_kw(self) -> float:
        """The most the allocator gives it: its maximum, or less while its meter shows it takes less."""
        return self.demand.max_kw

    def cap(self, kw: float | None) -> None:
        """Give it at most `kw` (None: its maximum again), never below its minimum."""
        limit = self.max_kw if kw is None else min(self.max_kw, max(self.min_kw, kw))
        if limit != self.demand.max_kw:
            self.demand = Demand(self.session_id, self.min_kw, limit, self.priority)

    def copy(self, **changes: object) -> Session:
        """This session with `changes` (fields), sharing the rest, its schedule too unless a new one is among
        them. dataclasses.replace would build it anew through __init__, at several times the cost, and a copy
        is made at every admission."""
        twin = object.__new__(Session)
        twin.__dict__.update(self.__dict__, **changes)
        return twin

    @property
    def order(self) -> tuple[int, int]:
        """Who goes first: the highest priority, then the earliest arrival."""
        return (-self.priority, self.sequence)

    @property
    def started(self) -> bool:
        return self.state.started

    def delivered(self, now: float, time_scale: float) -> float:
        if not self.state.started or self.flow_kw == 0:
            return self.delivered_kwh
        flowing = self.flow_kw * max(0.0, now - self.delivered_at) * time_scale / 3600.0
        return min(self.energy_kwh, self.delivered_kwh + flowing)

    def settle(self, moment: float, time_scale: float) -> None:
        """Count the energy delivered up to `moment` at the power in effect."""
        self.delivered_kwh = self.delivered(moment, time_scale)
        self.delivered_at = moment

    def ends_at(self, time_scale: float) -> float | None:
        """When the last kWh arrives at the power it draws now; None while it draws nothing."""
        if self.state != SessionState.CHARGING or self.flow_kw <= 0:
            return None
        remaining = max(0.0, self.energy_kwh - self.delivered_kwh)
        return self.delivered_at + remaining / self.flow_kw * 3600.0 / time_scale

    def set_limit(self, kw: float, moment: float) -> None:
        """A new power for the session, kept in its schedule when it differs by 0.1 kW or more (OCPP's
        resolution); several changes at one moment are one period."""
        # Until its first limit reaches it, a charger draws its default profile (failsafe_kw, OCPP's
        # TxDefaultProfile): a first limit below that is a lowering its car is given time to follow too.
        before = self.allocated_kw if self.schedule else max(self.allocated_kw, self.failsafe_kw)
        if kw < before:
            self.meter.lowered_at = moment
        self.allocated_kw = kw
        measured = self.meter.power_kw
        self.flow_kw = kw if measured is None else min(measured, kw)
        self.version += 1
        schedule = self.schedule
        if schedule and schedule[-1].start == moment:
            schedule.pop()
        if not schedule or round(schedule[-1].limit_kw, 1) != round(kw, 1):
            schedule.append(SchedulePeriod(moment, kw))
            if len(schedule) > SCHEDULE_LIMIT:
                schedule.popleft()

    def same_request(self, request: ChargeRequest, max_kw: float, charger_id: str | None = None) -> bool:
        mine = (
            self.vehicle_id,
            self.energy_kwh,
            self.min_kw,
            self.max_kw,
            self.priority,
            self.charger_id,
            self.phases,
            self.departure_at,
        )
        return mine == (
            request.vehicle_id,
            request.energy_kwh,
            request.min_power_kw,
            max_kw,
            request.priority,
            charger_id,
            request.phases,
            request.departure_at,
        )


class RefusalReason(StrEnum):
    CAPACITY = "capacity"  # its minimum (fair) or power (fixed) does not fit now, and it may not wait
    QUEUE = "queue"  # it may wait, but the queue is full
    CHARGER = "charger"  # it needs more than this substation's chargers give
    JOURNAL = "journal"  # the journal cannot keep it


@dataclass(frozen=True)
class Admitted:
    session: SessionReport
    report: LoadReport
    replayed: bool = False


@dataclass(frozen=True)
class Queued:
    """Not started: it waits in this substation's queue, and starts once it fits."""

    session: SessionReport
    report: LoadReport
    replayed: bool = False


@dataclass(frozen=True)
class Refused:
    """Not admitted, for `reason`; `retry_after_s` is when the next session here ends, if any does."""

    reason: RefusalReason
    report: LoadReport
    needed_kw: float
    retry_after_s: float | None


@dataclass(frozen=True)
class Outdated:
    """The caller's choice of this substation stood only while other balancers' sessions here stayed within
    its condition, and they do not: they placed sessions since the caller last heard. The caller takes
    `report` and chooses again. Checking this where the sessions are is what keeps replicated balancers as
    balanced as one, however seldom they poll."""

    condition: str
    report: LoadReport


@dataclass(frozen=True)
class Abandoned:
    """The caller gave up on the admission (its deadline passed) before it could be made: nothing changed."""

    report: LoadReport


class SessionEnded(Exception):
    """A change asked of a session that has ended: `report` is the session as it ended."""

    def __init__(self, report: SessionReport) -> None:
        super().__init__(report.session_id)
        self.report = report


class SessionConflict(Exception):
    """A session id was reused for a different request."""
