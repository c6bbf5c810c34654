"""What the OCPP service and a substation say to each other about chargers: which charger a session is plugged
into (sent with its admission), what the chargers' meters read (`POST /meters`), and the sessions on chargers
that changed (`GET /chargers/feed`), from which the OCPP service sends limits down."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta, Struct

from grid_common.protocol.load_report import KW
from grid_common.protocol.names import CHARGER_ID_PATTERN, TRANSACTION_ID_PATTERN, SessionId, SubstationName
from grid_common.protocol.session_report import SessionState

ChargerId = Annotated[str, Meta(pattern=CHARGER_ID_PATTERN.pattern)]
TransactionId = Annotated[str, Meta(pattern=TRANSACTION_ID_PATTERN.pattern)]


def is_charger_id(value: object) -> bool:
    return isinstance(value, str) and bool(CHARGER_ID_PATTERN.fullmatch(value))


class MeterReading(Struct, forbid_unknown_fields=True):
    session_id: SessionId
    power_kw: Annotated[float, Meta(ge=0, le=10_000)]
    energy_kwh: Annotated[float, Meta(ge=0, le=10_000, description="Delivered since the session started.")] | None = (
        None
    )
    # A number that is whole rather than an int: JSON Schema's integer takes 2.0, which msgspec's int would refuse.
    phases: (
        Annotated[
            float,
            Meta(ge=1, le=3, multiple_of=1, description="The phases the car draws on, by the meter's currents."),
        ]
        | None
    ) = None


# A batch stays under the 16 KiB every request body is held to (grid_common/edge.py): at most about 200 bytes a reading.
MAX_READINGS = 64


class MeterReadings(Struct, forbid_unknown_fields=True):
    readings: Annotated[list[MeterReading], Meta(max_length=MAX_READINGS)]


class MeterAnswer(Struct):
    unknown: Annotated[list[str], Meta(description="Sessions this substation does not hold (ended, or never).")]


# A charger keeps few periods in a schedule (OCPP's ChargingScheduleMaxPeriods; 24 is common).
MAX_PLANNED_LIMITS = 23


class PlannedLimit(Struct, array_like=True):
    """A limit ahead in a session's plan: from `start` (wall seconds), `limit_kw`."""

    start: float
    limit_kw: Annotated[float, Meta(ge=0)]


class ChargerSession(Struct):
    """What the OCPP service needs of a session on a charger to tell the charger its limit: no more (a feed
    after a reallocation names every session on a charger, several times a second)."""

    session_id: SessionId
    charger_id: ChargerId
    transaction_id: TransactionId | None
    state: SessionState
    allocated_kw: Annotated[float, Meta(ge=0, description="What it may draw now: 0 while queued or paused.")]
    phases: Annotated[int, Meta(ge=1, le=3, description="The phases it draws on now (a charger may switch).")] = 3
    plan: Annotated[
        list[PlannedLimit],
        Meta(
            max_length=MAX_PLANNED_LIMITS,
            description="Its planned limits after the one in force now, in order (ALLOCATION planned, a car with a "
            "departure): what its charger's schedule says ahead.",
        ),
    ] = msgspec.field(default_factory=list)


class ChargerFeed(Struct):
    """Sessions on chargers that changed since `since`; `cursor` is what to ask from next time. A different
    `epoch` (the substation restarted) means: ask again from 0."""

    substation: SubstationName
    epoch: str
    cursor: Annotated[int, Meta(ge=0)]
    capacity_kw: KW
    background_peak_kw: Annotated[float, Meta(ge=0, description="The background's peak over the day.")]
    sessions: list[ChargerSession]
    background_phase_shares: Annotated[
        list[Annotated[float, Meta(ge=0, le=1)]],
        Meta(min_length=3, max_length=3, description="The background's share of L1, L2 and L3."),
    ] = msgspec.field(default_factory=lambda: [1 / 3, 1 / 3, 1 / 3])


_METER_DECODER = msgspec.json.Decoder(MeterReadings)
_FEED_DECODER = msgspec.json.Decoder(ChargerFeed)


def decode_meter_readings(body: bytes) -> MeterReadings:
    """msgspec.ValidationError / DecodeError when the body is not one."""
    return _METER_DECODER.decode(body)


def decode_charger_feed(body: bytes) -> ChargerFeed:
    return _FEED_DECODER.decode(body)
