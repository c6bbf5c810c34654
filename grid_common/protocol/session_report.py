"""A session as its substation reports it, to every service and client: what a substation knows of it
(`SessionReport`, in its own units: wall seconds, kW) and its shape on the wire (`SessionJson`: ISO times, an
OCPP charging schedule), whose declaration makes its JSON Schema."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeGuard

import msgspec
from msgspec import Meta, Struct

from grid_common.protocol.charge_request import NOMINAL_VOLTAGE_V, PRIORITIES, current_of
from grid_common.protocol.load_report import KW, LoadReport
from grid_common.protocol.names import SessionId, SubstationName, VehicleId, is_session_id, iso_utc, substation_of
from grid_common.protocol.phases import GRID_PHASES, GridPhase

Moment = Annotated[str, Meta(extra_json_schema={"format": "date-time"})]


class SessionState(StrEnum):
    QUEUED = "queued"  # waiting in its substation's queue
    CHARGING = "charging"
    PAUSED = "paused"  # started, at 0 kW until the background leaves room again
    COMPLETED = "completed"  # all its energy delivered
    STOPPED = "stopped"  # ended early (a queued one: cancelled)

    @property
    def started(self) -> bool:
        return self in (SessionState.CHARGING, SessionState.PAUSED)

    @property
    def ended(self) -> bool:
        return self in (SessionState.COMPLETED, SessionState.STOPPED)


SESSION_STATES = tuple(SessionState)


@dataclass(frozen=True)
class SchedulePeriod:
    """From `start` (wall seconds) on, the session's limit was `limit_kw`, until the next period."""

    start: float
    limit_kw: float


class ChargingSchedulePeriod(Struct, rename="camel"):
    start_period: Annotated[int, Meta(ge=0)]
    limit: KW


class ChargingSchedule(Struct, rename="camel"):
    """Its limits so far, as an OCPP ChargingSchedule (the latest periods)."""

    start_schedule: Moment
    charging_rate_unit: Literal["W"]
    charging_schedule_period: list[ChargingSchedulePeriod]
    min_charging_rate: KW


EstimatedEnd = Annotated[Moment | None, Meta(description="At the current allocation; null while it draws nothing.")]


class SessionJson(Struct):
    """A session on the wire."""

    session_id: SessionId
    substation: SubstationName
    vehicle_id: VehicleId
    state: SessionState
    allocated_kw: Annotated[float, Meta(ge=0, description="What it may draw now: 0 while queued or paused.")]
    power_kw: Annotated[float, Meta(ge=0, description="The same as allocated_kw (the name of version 0.2).")]
    min_power_kw: KW
    max_power_kw: Annotated[float, Meta(ge=0, description="The car's maximum, capped by the substation's charger.")]
    priority: Annotated[int, Meta(ge=PRIORITIES[0], le=PRIORITIES[-1])]
    energy_kwh: KW
    energy_delivered_kwh: KW
    energy_remaining_kwh: KW
    requested_at: Moment
    started_at: Annotated[Moment | None, Meta(description="When it first charged; null while queued.")]
    position: Annotated[Annotated[int, Meta(ge=1)] | None, Meta(description="Place in the queue, 1 first.")]
    estimated_start: Annotated[Moment | None, Meta(description="While queued: when it should start.")]
    estimated_end: EstimatedEnd
    ended_at: Moment | None
    charging_schedule: ChargingSchedule | None
    charger_id: Annotated[str | None, Meta(description="The charger it is plugged into (OCPP); null if none.")]
    transaction_id: Annotated[str | None, Meta(description="Its transaction at that charger.")]
    measured_kw: Annotated[float | None, Meta(description="What the charger's meter read last; null if none.")]
    phases: Annotated[Literal[1, 3], Meta(description="The phases the car charges on.")]
    grid_phase: Annotated[
        GridPhase | None, Meta(description="The grid phase a 1-phase car draws on; null for a 3-phase car.")
    ]
    current_a: Annotated[
        dict[GridPhase, float],
        Meta(description="What allocated_kw is on each grid phase, in A at the nominal voltage."),
    ]
    circuit: Annotated[str | None, Meta(description="The circuit its charger hangs on; null if none.")]
    min_current_a: Annotated[float, Meta(ge=0, description="min_power_kw a phase of the car, in A.")]
    max_current_a: Annotated[float, Meta(ge=0, description="max_power_kw a phase of the car, in A.")]
    departure_time: Annotated[Moment | None, Meta(description="When its driver leaves; null if not given.")]
    promised: Annotated[
        bool | None,
        Meta(
            description="Whether its substation's plan delivers all its energy by its departure (ALLOCATION "
            "planned, while it charges); null otherwise."
        ),
    ]
    energy_expected_kwh: Annotated[
        Annotated[float, Meta(ge=0)] | None,
        Meta(description="The energy it will have by its departure as planned; null when promised is."),
    ]
    charging_plan: Annotated[
        ChargingSchedule | None,
        Meta(description="Its planned limits from now to its departure, as an OCPP ChargingSchedule."),
    ]


@dataclass(frozen=True)
class SessionReport:
    session_id: str
    substation: str
    vehicle_id: str
    state: SessionState
    allocated_kw: float
    min_power_kw: float
    max_power_kw: float
    priority: int
    energy_kwh: float
    energy_delivered_kwh: float
    requested_at: float
    started_at: float | None
    estimated_end: float | None
    ended_at: float | None
    position: int | None = None
    estimated_start: float | None = None
    schedule: tuple[SchedulePeriod, ...] = ()
    charger_id: str | None = None
    transaction_id: str | None = None
    measured_kw: float | None = None
    phases: int = 3
    grid_phase: GridPhase | None = None
    circuit: str | None = None
    voltage_v: float = NOMINAL_VOLTAGE_V
    departure_at: float | None = None
    promised: bool | None = None
    energy_expected_kwh: float | None = None
    plan: tuple[SchedulePeriod, ...] = ()  # from now on, as planned (planning.py)

    def wire(self) -> SessionJson:
        allocated = round(self.allocated_kw, 6)
        per_phase = current_of(self.allocated_kw, self.phases, self.voltage_v)
        current = {
            phase: round(per_phase if self.phases == 3 or phase == self.grid_phase else 0.0, 3) for phase in GRID_PHASES
        }
        return SessionJson(
            session_id=self.session_id,
            substation=self.substation,
            vehicle_id=self.vehicle_id,
            state=self.state,
            allocated_kw=allocated,
            power_kw=allocated,
            min_power_kw=self.min_power_kw,
            max_power_kw=self.max_power_kw,
            priority=self.priority,
            energy_kwh=self.energy_kwh,
            energy_delivered_kwh=round(self.energy_delivered_kwh, 6),
            energy_remaining_kwh=round(max(0.0, self.energy_kwh - self.energy_delivered_kwh), 6),
            requested_at=iso_utc(self.requested_at),  # type: ignore[arg-type]
            started_at=iso_utc(self.started_at),
            position=self.position,
            estimated_start=iso_utc(self.estimated_start),
            estimated_end=iso_utc(self.estimated_end),
            ended_at=iso_utc(self.ended_at),
            charging_schedule=self.ocpp_schedule(),
            charger_id=self.charger_id,
            transaction_id=self.transaction_id,
            measured_kw=None if self.measured_kw is None else round(self.measured_kw, 3),
            phases=1 if self.phases == 1 else 3,
            grid_phase=self.grid_phase,
            current_a=current,
            circuit=self.circuit,
            min_current_a=round(current_of(self.min_power_kw, self.phases, self.voltage_v), 3),
            max_current_a=round(current_of(self.max_power_kw, self.phases, self.voltage_v), 3),
            departure_time=iso_utc(self.departure_at),
            promised=self.promised,
            energy_expected_kwh=None if self.energy_expected_kwh is None else round(self.energy_expected_kwh, 6),
            charging_plan=ocpp_schedule(self.plan, self.min_power_kw),
        )

    def to_json(self) -> dict:
        return msgspec.to_builtins(self.wire())

    def charging_schedule(self) -> dict | None:
        """The limits so far, as the wire has them (an OCPP ChargingSchedule)."""
        schedule = self.ocpp_schedule()
        return None if schedule is None else msgspec.to_builtins(schedule)

    def ocpp_schedule(self) -> ChargingSchedule | None:
        """The limits so far, shaped as an OCPP ChargingSchedule (W, periods in seconds from its start)."""
        return ocpp_schedule(self.schedule, self.min_power_kw)


def ocpp_schedule(periods: tuple[SchedulePeriod, ...], min_power_kw: float) -> ChargingSchedule | None:
    """`periods` shaped as an OCPP ChargingSchedule (W, periods in seconds from the first); None if none."""
    if not periods:
        return None
    start = periods[0].start
    return ChargingSchedule(
        start_schedule=iso_utc(start),  # type: ignore[arg-type]
        charging_rate_unit="W",
        charging_schedule_period=whole_second_periods(start, periods),
        min_charging_rate=round(min_power_kw * 1000, 1),
    )


def whole_second_periods(start: float, schedule: Iterable[SchedulePeriod]) -> list[ChargingSchedulePeriod]:
    """OCPP's periods: whole seconds from `start`, the first at 0, strictly increasing (a charger rejects a
    schedule whose startPeriod repeats). Limits set within one second are one period: the last of them."""
    periods: list[ChargingSchedulePeriod] = []
    for period in schedule:
        offset = max(0, round(period.start - start))
        limit = round(period.limit_kw * 1000, 1)
        if periods and offset <= periods[-1].start_period:
            periods[-1].limit = limit
        else:
            periods.append(ChargingSchedulePeriod(offset, limit))
    return periods


def is_session_report(body: object) -> TypeGuard[dict[str, Any]]:
    """Enough of a session to pass on: a proxy checks what it relies on, and relays the rest as it is."""
    return (
        isinstance(body, dict)
        and is_session_id(body.get("session_id"))
        and body.get("substation") == substation_of(body["session_id"])
    )


class AdmissionAnswer(Struct):
    """A substation's answer to an admission: the session, and its load now."""

    session: SessionJson
    load: LoadReport


_ENCODER = msgspec.json.Encoder()


def admission_answer(session: SessionReport, load: LoadReport) -> bytes:
    """The answer, encoded: it goes out as it is."""
    return _ENCODER.encode(AdmissionAnswer(session.wire(), load))
