"""What a substation says of itself and of its sessions: estimates of when queued sessions start, and the
session reports. Pure functions over the sessions and sums they are given."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from grid_common.protocol import NOMINAL_VOLTAGE_V, PRIORITIES, LoadReport, SchedulePeriod, SessionReport, SessionState
from substation_service.allocation import jain_index
from substation_service.forecast import QueueForecast, at_maximum_s, frees
from substation_service.planning import Plan
from substation_service.policy import Committed, Policy
from substation_service.sessions import Session

if TYPE_CHECKING:
    from substation_service.substation import Substation


def estimated_starts(
    now: float,
    queued: Sequence[Session],
    started: Sequence[Session],
    policy: Policy,
    room_kw: Callable[[float], float],
    committed_kw: float,
    time_scale: float,
) -> list[float | None]:
    """When each of `queued` (in queue order) would start (forecast.py): as the started sessions end and free
    what admission counts for them, as the background's known profile leaves more room or less (`room_kw`: what
    admission could count in all at a moment), and as each queued one, once started, ends in turn (at its
    maximum: an estimate). None: not foreseeable within a simulated day."""
    forecast = QueueForecast(now, room_kw, frees(started, policy.needed_kw, time_scale), committed_kw, time_scale)
    starts: list[float | None] = []
    for session in queued:
        start = forecast.start(policy.needed_kw(session), at_maximum_s(session, time_scale))
        if start is None:
            return starts + [None] * (len(queued) - len(starts))
        starts.append(start)
    return starts


def newcomer(kw: float, priority: int, now: float, sequence: int) -> Session:
    """A session a report asks about: arriving now at `priority`, drawing `kw` at least and at most."""
    return Session("", "", 1.0, kw, kw, priority, now, sequence)


def newcomer_start_s(
    now: float,
    queue: Sequence[Session],
    started: Sequence[Session],
    policy: Policy,
    *,
    paused: int,
    committed_kw: float,
    committed_phase_kw: Sequence[float],
    room_kw: Callable[[float], float],
    time_scale: float,
    sequence: int,
) -> tuple[float | None, ...]:
    """Per priority: in how many seconds a newcomer asking for the defaults would start, if queued now (0: at
    once). Paused sessions, and queued ones of the same or a higher priority, go first."""
    kw = policy.newcomer_kw()
    starts: list[float | None] = []
    fits = None  # whether a newcomer fits now: the same whatever its priority, so asked once at most
    for priority in PRIORITIES:
        ahead = [s for s in queue if s.priority >= priority]
        if not ahead and not paused:
            if fits is None:
                fits = policy.fits(
                    Committed(committed_kw, committed_phase_kw), newcomer(kw, priority, now, sequence), now
                )
            if fits:
                starts.append(0.0)
                continue
        arriving = newcomer(kw, priority, now, sequence)
        start = estimated_starts(now, [*ahead, arriving], started, policy, room_kw, committed_kw, time_scale)[-1]
        starts.append(None if start is None else max(0.0, start - now))
    return tuple(starts)


def session_report(
    substation: str,
    session: Session,
    now: float,
    time_scale: float,
    *,
    position: int | None = None,
    estimated_start: float | None = None,
    voltage_v: float = NOMINAL_VOLTAGE_V,
    plan: Plan | None = None,
) -> SessionReport:
    ended = session.state.ended
    delivered = session.delivered(now, time_scale)
    key = session.session_id
    # The plan speaks of a car with a departure while it charges; of none other.
    planned = plan if plan is not None and session.state == SessionState.CHARGING and key in plan.promised else None
    return SessionReport(
        session_id=session.session_id,
        substation=substation,
        vehicle_id=session.vehicle_id,
        state=session.state,
        allocated_kw=session.allocated_kw,
        min_power_kw=session.min_kw,
        max_power_kw=session.max_kw,
        priority=session.priority,
        energy_kwh=session.energy_kwh,
        energy_delivered_kwh=delivered,
        requested_at=session.requested_at,
        started_at=session.started_at,
        estimated_end=session.ended_at if ended else session.ends_at(time_scale),
        ended_at=session.ended_at,
        position=position if session.state == SessionState.QUEUED else None,
        estimated_start=estimated_start,
        schedule=tuple(session.schedule),
        charger_id=session.charger_id,
        transaction_id=session.transaction_id,
        measured_kw=session.meter.power_kw if session.meter.read_at > -math.inf else None,
        phases=session.phases,
        grid_phase=session.grid_phase,
        circuit=session.circuit,
        voltage_v=voltage_v,
        departure_at=session.departure_at,
        promised=None if planned is None else planned.promised[key],
        # What it has, and what the plan gives it until its departure.
        energy_expected_kwh=None if planned is None else delivered + planned.expected_kwh[key],
        plan=() if planned is None else tuple(SchedulePeriod(start, kw) for start, kw in planned.periods(key)),
    )


def load_report(substation: Substation, now: float, balancer: str | None) -> LoadReport:
    """The substation's load now, as a balancer reads it; for `balancer`, also what other balancers'
    sessions draw there and how many there are. Reads the substation, with its lock held; changes nothing."""
    book = substation.book
    totals, queue, started, ledger = book.totals, book.queue, book.started, book.ledger
    shareable, sharing = substation.policy.sharing_state(
        max(0.0, substation._headroom.total_kw - totals.ev_power_kw), totals.excess_kw, totals.charging
    )
    next_end = book.next_end()
    sessions = len(book.sessions)
    available_kw = substation.available_kw(now)
    limit = substation.limits.in_force(now)
    return LoadReport.of(
        draining=substation.draining(),
        name=substation.name,
        capacity_kw=substation.capacity_kw,
        ev_power_kw=max(0.0, totals.ev_power_kw),
        background_kw=substation.background.at(now),
        active_sessions=len(started),
        charger_max_power_kw=substation.charger_max_power_kw,
        epoch=substation.epoch,
        sequence=substation._report_sequence,
        grid_limit_kw=None if limit is None else limit.limit_kw,
        next_session_end_s=None if next_end is None else max(0.0, next_end - now),
        others_ev_power_kw=None if balancer is None else ledger.others_ev_power_kw(balancer, totals.ev_power_kw),
        others_sessions=None if balancer is None else ledger.others_sessions(balancer, sessions),
        started_for_you=None if balancer is None else ledger.started_for(balancer),
        allocation=substation.allocation,
        headroom_kw=substation._headroom.total_kw,
        admission_headroom_kw=max(0.0, available_kw + totals.committed_kw),
        committed_kw=max(0.0, totals.committed_kw),
        paused_sessions=totals.paused,
        queued_sessions=len(queue),
        queue_limit=substation.queue_limit,
        queue_by_priority=tuple(sum(1 for s in queue if s.priority == p) for p in PRIORITIES),
        shareable_kw=shareable,
        sharing_sessions=sharing,
        demand_kw=max(0.0, totals.max_sum_kw + totals.queued_max_kw),
        estimated_start_s=newcomer_start_s(
            now,
            queue,
            started,
            substation.policy,
            paused=totals.paused,
            committed_kw=totals.committed_kw,
            committed_phase_kw=totals.committed_phase_kw,
            room_kw=substation.grid.admission_headroom_kw,
            time_scale=substation.time_scale,
            sequence=substation._arrivals,
        ),
    )


@dataclass(frozen=True)
class Snapshot:
    """What a substation's metrics read, at one moment."""

    sessions_by_state: dict[SessionState, int]
    oldest_wait_s: float  # how long the session longest in the queue has waited; 0 with an empty queue
    energy_delivered_kwh: float
    fairness: dict[int, float]  # per priority, Jain's index (see `fairness`)
    # Per grid phase (L1, L2, L3), in A: what EVs draw there as counted (measured where meters speak), the
    # background's share, and the phase's limit (a third of the rating).
    phase_ev_a: tuple[float, ...] = (0.0, 0.0, 0.0)
    phase_background_a: tuple[float, ...] = (0.0, 0.0, 0.0)
    phase_limit_a: float = 0.0
    circuits: tuple[dict, ...] = ()  # each circuit, its limit and its load (Substation.circuit_report)


def fairness(started: Sequence[Session], levels: dict[int, float]) -> dict[int, float]:
    """Jain's index per priority of each started session's power over its max-min fair share (its own
    maximum when that is below the level): 1 when all get their fair share; a paused one counts 0."""
    ratios: dict[int, list[float]] = {p: [] for p in PRIORITIES}
    for session in started:
        level = levels.get(session.priority, math.inf)
        fair_kw = min(session.max_kw, max(level, session.min_kw))
        ratios[session.priority].append(session.allocated_kw / fair_kw if fair_kw > 0 else 1.0)
    return {priority: jain_index(values) for priority, values in ratios.items()}
