"""What a simulated charger and its OCPP session say to each other, whichever the OCPP version.

The charger (charger.py) keeps the state and the rules; a session (v16.py, v201.py) is the `ocpp` library's
ChargePoint for one WebSocket connection: it turns the charger's intents into that version's messages, and
the CSMS's requests into calls on the charger's `ChargerHandlers`. Both sides use only the types here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Protocol

from load_tester.fleet.car import Car
from load_tester.fleet.profiles import ChargingProfile, Purpose


class OcppVersion(Enum):
    """The OCPP version a charger speaks; its value is the WebSocket subprotocol."""

    V16 = "ocpp1.6"
    V201 = "ocpp2.0.1"

    @classmethod
    def parse(cls, text: str) -> OcppVersion:
        """Accepts "1.6", "ocpp1.6", "2.0.1" or "ocpp2.0.1"."""
        for member in cls:
            if text in (member.value, member.value.removeprefix("ocpp")):
                return member
        raise ValueError(f"unknown OCPP version {text!r}: 1.6 or 2.0.1")

    @property
    def version(self) -> str:
        return self.value.removeprefix("ocpp")


class ConnectorState(Enum):
    """The connector as OCPP 1.6 StatusNotification names it (2.0.1 says Occupied for all but Available)."""

    AVAILABLE = "Available"
    PREPARING = "Preparing"
    CHARGING = "Charging"
    SUSPENDED_EV = "SuspendedEV"  # the car draws nothing though it may: full, or waiting
    SUSPENDED_EVSE = "SuspendedEVSE"  # the charger offers less than the car's minimum (a pause)
    FINISHING = "Finishing"


class StopReason(Enum):
    ENERGY_MET = "energy met"  # the car is full and leaves
    UNPLUGGED = "unplugged"
    REMOTE = "remote"  # RemoteStopTransaction / RequestStopTransaction
    LOCAL = "local"  # the simulation shuts down


class StartTrigger(Enum):
    AUTHORIZED = "authorized"  # a driver's id tag at the charger
    REMOTE = "remote"  # RemoteStartTransaction / RequestStartTransaction


class BootRefused(Exception):
    """The CSMS answered BootNotification with Rejected."""


class StartRefused(Exception):
    """The CSMS did not accept the id tag of a starting transaction."""


@dataclass(frozen=True, slots=True)
class MeterReading:
    """One sample of the meter: what MeterValues / TransactionEvent Updated carry."""

    at: float  # epoch seconds
    power_w: float
    currents_a: tuple[float, float, float]  # L1, L2, L3
    energy_wh: float  # the register since the charger booted, monotonic


@dataclass(eq=False)
class Transaction:
    """A charging session on the connector. Its id is the CSMS's (1.6) or the charger's uuid4 hex (2.0.1)."""

    id: str
    car: Car
    id_tag: str
    started_at: float
    meter_start_wh: float
    trigger: StartTrigger = StartTrigger.AUTHORIZED
    remote_start_id: int | None = None
    seq_no: int = 0  # 2.0.1: the TransactionEvent counter
    state: ConnectorState = ConnectorState.CHARGING
    ended_at: float | None = None
    stop_reason: StopReason | None = None
    meter_stop_wh: float | None = None
    extra: dict[str, object] = field(default_factory=dict)

    def next_seq_no(self) -> int:
        number = self.seq_no
        self.seq_no += 1
        return number


@dataclass(frozen=True, slots=True)
class BootAnswer:
    status: str  # Accepted, Pending or Rejected (the same words in both versions)
    interval_s: float  # heartbeat interval when accepted, retry interval otherwise


@dataclass(frozen=True, slots=True)
class ProfileSummary:
    """What a received profile said, read tolerantly, for the record (also of profiles that were rejected)."""

    id: int | None
    purpose: str | None
    stack_level: int | None
    unit: str | None
    limits: tuple[float, ...]
    valid_to: str | None
    transaction_id: str | None
    starts: tuple[float, ...] = ()  # each period's startPeriod, s
    start_schedule: str | None = None  # an Absolute schedule's start


class ChargerHandlers(Protocol):
    """What a session asks of its charger when the CSMS sends a request; answers are True for Accepted."""

    async def set_charging_profile(
        self, parse: Callable[[], ChargingProfile], summary: ProfileSummary
    ) -> tuple[bool, str | None]: ...

    def clear_charging_profile(
        self,
        profile_id: int | None,
        connector_id: int | None,
        purpose: Purpose | None,
        stack_level: int | None,
    ) -> bool: ...

    def remote_start(
        self,
        id_tag: str,
        connector_id: int | None,
        remote_start_id: int | None,
        profile: Callable[[], ChargingProfile] | None,
    ) -> tuple[bool, str | None]: ...

    def remote_stop(self, transaction_id: str) -> bool: ...


class Session(Protocol):
    """One OCPP connection's outgoing messages, as the charger asks for them."""

    async def serve(self) -> None:
        """Read and answer the CSMS's messages until the connection closes."""
        ...

    async def boot(self) -> BootAnswer: ...

    async def heartbeat(self) -> None: ...

    async def status(self, state: ConnectorState) -> None: ...

    async def start_transaction(self, transaction: Transaction, reading: MeterReading) -> str:
        """Send the start; returns the transaction id (the CSMS's in 1.6) or raises StartRefused."""
        ...

    async def meter_values(self, transaction: Transaction, reading: MeterReading) -> None: ...

    async def stop_transaction(self, transaction: Transaction, reading: MeterReading) -> None: ...

    async def notify_charging_needs(self, transaction: Transaction) -> str | None:
        """Tell the CSMS what the car needs (2.0.1 NotifyEVChargingNeeds, as ISO 15118 learns it: its energy and
        departure); the answer's status. None where the protocol cannot say it (1.6)."""
        ...


def ocpp_time(epoch_s: float) -> str:
    """An OCPP dateTime: UTC, milliseconds, "Z"."""
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def summarise_profile(raw: object, schedule: object, *, id_key: str) -> ProfileSummary:
    """A ProfileSummary of a profile as received (snake_case keys); whatever is missing or odd becomes None."""
    profile = raw if isinstance(raw, dict) else {}
    plan = schedule if isinstance(schedule, dict) else {}
    periods = plan.get("charging_schedule_period")
    limits: list[float] = []
    starts: list[float] = []
    if isinstance(periods, list):
        for period in periods:
            try:
                limit, start = float(period["limit"]), float(period.get("start_period", 0))
            except (TypeError, KeyError, ValueError, AttributeError):
                continue
            limits.append(limit)
            starts.append(start)

    def text(value: object) -> str | None:
        return None if value is None else str(value)

    def integer(value: object) -> int | None:
        try:
            return None if value is None else int(str(value))
        except ValueError:
            return None

    return ProfileSummary(
        id=integer(profile.get(id_key)),
        purpose=text(profile.get("charging_profile_purpose")),
        stack_level=integer(profile.get("stack_level")),
        unit=text(plan.get("charging_rate_unit")),
        limits=tuple(limits),
        valid_to=text(profile.get("valid_to")),
        transaction_id=text(profile.get("transaction_id")),
        starts=tuple(starts),
        start_schedule=text(plan.get("start_schedule")),
    )
