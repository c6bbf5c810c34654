"""A simulated charger's charging-profile store: what the CSMS installed, and the limit it makes now.

Pure (no I/O, no clock of its own: every question takes `now`, wall seconds since the epoch) and
protocol-neutral: OCPP 1.6 `csChargingProfiles` and 2.0.1 `chargingProfile` payloads are parsed, as the
`ocpp` library hands them to a handler (snake_case keys, 1.6 numbers as Decimal, 2.0.1 as float), into one
`ChargingProfile`, so that the stacking rules are written once:

- a new profile replaces the installed one with the same id, or with the same purpose, stack level and
  connector (1.6 §3.13.2; for 2.0.1 the same is the friendlier reading for a test fleet);
- within a purpose, the profile of the highest stack level in force now wins (its validFrom/validTo, and its
  schedule's start and duration, cover now); at equal levels one for the connector beats one for the station;
- across purposes (station maximum, external constraints, TxDefault, Tx of the running transaction) the lowest
  limit wins; with none in force, the charger's own maximum;
- a limit in amperes is per phase: watts = A x min(numberPhases (3 if absent), phases the car uses) x volts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

DEFAULT_VOLTAGE = 230.0
DEFAULT_NUMBER_PHASES = 3  # OCPP: a schedule period without numberPhases means 3
DAY_S = 86_400.0
WEEK_S = 7 * DAY_S


class Purpose(Enum):
    """Profile purposes, one vocabulary for both versions (the 1.6 and 2.0.1 names map onto these)."""

    STATION_MAX = "ChargingStationMaxProfile"
    EXTERNAL_CONSTRAINTS = "ChargingStationExternalConstraints"
    TX_DEFAULT = "TxDefaultProfile"
    TX = "TxProfile"


PURPOSE_NAMES = {
    "ChargePointMaxProfile": Purpose.STATION_MAX,  # OCPP 1.6
    "ChargingStationMaxProfile": Purpose.STATION_MAX,  # OCPP 2.0.1
    "ChargingStationExternalConstraints": Purpose.EXTERNAL_CONSTRAINTS,
    "TxDefaultProfile": Purpose.TX_DEFAULT,
    "TxProfile": Purpose.TX,
}


class RateUnit(Enum):
    AMPERES = "A"
    WATTS = "W"


class ProfileKind(Enum):
    ABSOLUTE = "Absolute"
    RECURRING = "Recurring"
    RELATIVE = "Relative"


class ProfileError(ValueError):
    """A profile the charger must answer Rejected to; the message says why."""


@dataclass(frozen=True, slots=True)
class SchedulePeriod:
    start_period_s: float  # seconds from the schedule's start
    limit: float  # in the schedule's unit; per phase for amperes
    number_phases: int | None = None


@dataclass(frozen=True, slots=True)
class ChargingProfile:
    """One charging profile with its (first) schedule, whichever OCPP version it came in."""

    id: int
    stack_level: int
    purpose: Purpose
    kind: ProfileKind
    unit: RateUnit
    periods: tuple[SchedulePeriod, ...]
    connector_id: int = 0  # 1.6 connectorId / 2.0.1 evseId; 0 = the whole station
    transaction_id: str | None = None  # 1.6 integers kept as their decimal text
    valid_from: float | None = None  # epoch seconds
    valid_to: float | None = None
    start_schedule: float | None = None
    duration_s: float | None = None
    recurrency_period_s: float | None = None  # a day or a week, for Recurring profiles

    @property
    def limits(self) -> list[float]:
        return [period.limit for period in self.periods]


@dataclass(slots=True)
class _Installed:
    profile: ChargingProfile
    installed_at: float  # where an Absolute schedule without startSchedule begins


# --- parsing -----------------------------------------------------------------------------------------------
def parse_time(value: object) -> float | None:
    """An OCPP dateTime (ISO 8601, "Z" or an offset; naive means UTC) as epoch seconds; None stays None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ProfileError(f"not a dateTime: {value!r}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as error:
        raise ProfileError(f"not a dateTime: {value!r}") from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ProfileError(f"{what} is not a number: {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ProfileError(f"{what} is not finite: {value!r}")
    return number


def _optional_number(value: object, what: str) -> float | None:
    return None if value is None else _number(value, what)


def _periods(raw: object) -> tuple[SchedulePeriod, ...]:
    if not isinstance(raw, list) or not raw:
        raise ProfileError("chargingSchedulePeriod must be a non-empty list")
    periods = []
    for item in raw:
        if not isinstance(item, Mapping):
            raise ProfileError(f"a schedule period is not an object: {item!r}")
        phases = item.get("number_phases")
        periods.append(
            SchedulePeriod(
                start_period_s=_number(item.get("start_period"), "startPeriod"),
                limit=_number(item.get("limit"), "limit"),
                number_phases=None if phases is None else int(_number(phases, "numberPhases")),
            )
        )
    check_periods(periods)
    return tuple(periods)


def check_periods(periods: Iterable[SchedulePeriod]) -> None:
    """OCPP: the first startPeriod is 0, they increase strictly, limits are not negative, 1 to 3 phases."""
    previous: float | None = None
    for period in periods:
        if previous is None and period.start_period_s != 0:
            raise ProfileError(f"the first startPeriod must be 0, not {period.start_period_s:g}")
        if previous is not None and period.start_period_s <= previous:
            raise ProfileError(f"startPeriod {period.start_period_s:g} does not increase after {previous:g}")
        if period.limit < 0:
            raise ProfileError(f"negative limit {period.limit:g}")
        if period.number_phases is not None and period.number_phases not in (1, 2, 3):
            raise ProfileError(f"numberPhases {period.number_phases} is not 1, 2 or 3")
        previous = period.start_period_s


def _enum(enum: type[Any], value: object, what: str) -> Any:
    try:
        return enum(value)
    except ValueError as error:
        raise ProfileError(f"unknown {what}: {value!r}") from error


def _profile(raw: Mapping[str, Any], schedule: Mapping[str, Any], connector_id: int) -> ChargingProfile:
    """The parts both versions share, from snake_case keys."""
    purpose_name = raw.get("charging_profile_purpose")
    if purpose_name not in PURPOSE_NAMES:
        raise ProfileError(f"unknown chargingProfilePurpose: {purpose_name!r}")
    recurrency = raw.get("recurrency_kind")
    kind = _enum(ProfileKind, raw.get("charging_profile_kind"), "chargingProfileKind")
    if kind is ProfileKind.RECURRING and recurrency not in ("Daily", "Weekly"):
        raise ProfileError(f"a Recurring profile needs recurrencyKind Daily or Weekly, not {recurrency!r}")
    transaction_id = raw.get("transaction_id")
    return ChargingProfile(
        id=int(_number(raw.get("charging_profile_id", raw.get("id")), "chargingProfileId")),
        stack_level=int(_number(raw.get("stack_level"), "stackLevel")),
        purpose=PURPOSE_NAMES[purpose_name],
        kind=kind,
        unit=_enum(RateUnit, schedule.get("charging_rate_unit"), "chargingRateUnit"),
        periods=_periods(schedule.get("charging_schedule_period")),
        connector_id=connector_id,
        transaction_id=None if transaction_id is None else str(transaction_id),
        valid_from=parse_time(raw.get("valid_from")),
        valid_to=parse_time(raw.get("valid_to")),
        start_schedule=parse_time(schedule.get("start_schedule")),
        duration_s=_optional_number(schedule.get("duration"), "duration"),
        recurrency_period_s=None if kind is not ProfileKind.RECURRING else DAY_S if recurrency == "Daily" else WEEK_S,
    )


def parse_v16(cs_charging_profiles: Mapping[str, Any], connector_id: int) -> ChargingProfile:
    """A 1.6 SetChargingProfile's `cs_charging_profiles` (keys as the library gives them: charging_profile_id,
    charging_schedule {charging_rate_unit, charging_schedule_period [{start_period, limit, number_phases}]})."""
    schedule = cs_charging_profiles.get("charging_schedule")
    if not isinstance(schedule, Mapping):
        raise ProfileError("chargingSchedule is missing")
    return _profile(cs_charging_profiles, schedule, connector_id)


def parse_v201(charging_profile: Mapping[str, Any], evse_id: int) -> ChargingProfile:
    """A 2.0.1 SetChargingProfile's `charging_profile` (id, charging_schedule: a list, of which the first is
    used: the others are alternatives offered to an ISO 15118 car, which this simulation does not negotiate)."""
    schedules = charging_profile.get("charging_schedule")
    if not isinstance(schedules, list) or not schedules or not isinstance(schedules[0], Mapping):
        raise ProfileError("chargingSchedule must be a non-empty list")
    return _profile(charging_profile, schedules[0], evse_id)


# --- the store ---------------------------------------------------------------------------------------------
@dataclass
class ProfileStore:
    """The profiles installed on one single-connector charger, and the limit they make.

    The connector is `connector_id` (1); profiles for connector 0 apply to it too. The charger's own maximum
    (`max_current_a` on `phases` phases) caps every limit.
    """

    max_current_a: float = 32.0
    phases: int = 3
    connector_id: int = 1
    transaction_id: str | None = None
    transaction_started_at: float | None = None
    _installed: list[_Installed] = field(default_factory=list)

    @property
    def profiles(self) -> list[ChargingProfile]:
        return [entry.profile for entry in self._installed]

    # transactions
    def begin_transaction(self, transaction_id: str, now: float) -> None:
        self.transaction_id = transaction_id
        self.transaction_started_at = now

    def end_transaction(self) -> None:
        """TxProfiles live as long as their transaction (OCPP): they go with it."""
        self._installed = [entry for entry in self._installed if entry.profile.purpose is not Purpose.TX]
        self.transaction_id = None
        self.transaction_started_at = None

    # installing and clearing
    def check(self, profile: ChargingProfile) -> ChargingProfile:
        """The profile as it will be installed (a TxProfile bound to the running transaction), or ProfileError."""
        if profile.connector_id not in (0, self.connector_id):
            raise ProfileError(f"no connector/EVSE {profile.connector_id}")
        if profile.purpose is Purpose.STATION_MAX and profile.connector_id != 0:
            raise ProfileError("a station maximum profile belongs on connector/EVSE 0")
        if profile.purpose is Purpose.TX:
            if profile.connector_id == 0:
                raise ProfileError("a TxProfile belongs on the connector/EVSE of its transaction")
            if self.transaction_id is None:
                raise ProfileError("no transaction is running")
            if profile.transaction_id is None:
                return replace(profile, transaction_id=self.transaction_id)
            if profile.transaction_id != self.transaction_id:
                raise ProfileError(f"unknown transaction {profile.transaction_id}")
        return profile

    def install(self, profile: ChargingProfile, now: float) -> ChargingProfile:
        """Check and install; raises ProfileError (answer Rejected) and leaves the store as it was."""
        profile = self.check(profile)
        self._installed = [
            entry
            for entry in self._installed
            if entry.profile.id != profile.id
            and not (
                entry.profile.purpose is profile.purpose
                and entry.profile.stack_level == profile.stack_level
                and entry.profile.connector_id == profile.connector_id
            )
            # Expired ones would never apply again: dropping them keeps a long run's store small.
            and not (entry.profile.valid_to is not None and entry.profile.valid_to <= now)
        ]
        self._installed.append(_Installed(profile, now))
        return profile

    def clear(
        self,
        *,
        profile_id: int | None = None,
        connector_id: int | None = None,
        purpose: Purpose | None = None,
        stack_level: int | None = None,
    ) -> bool:
        """ClearChargingProfile: by id if given, else by every criterion given (none: all). True if any went."""

        def matches(profile: ChargingProfile) -> bool:
            if profile_id is not None:
                return profile.id == profile_id
            return (
                (connector_id is None or profile.connector_id == connector_id)
                and (purpose is None or profile.purpose is purpose)
                and (stack_level is None or profile.stack_level == stack_level)
            )

        kept = [entry for entry in self._installed if not matches(entry.profile)]
        cleared = len(kept) != len(self._installed)
        self._installed = kept
        return cleared

    # the limit
    def max_w(self, phases_in_use: int, voltage: float = DEFAULT_VOLTAGE) -> float:
        """The charger's own maximum for a car on `phases_in_use` phases."""
        return self.max_current_a * min(self.phases, phases_in_use) * voltage

    def limit_w(self, now: float, phases_in_use: int = 3, voltage: float = DEFAULT_VOLTAGE) -> float:
        """The composite limit in watts at `now` for a car on `phases_in_use` phases (in_force's)."""
        return self.in_force(now, phases_in_use, voltage)[0]

    def phases_allowed(self, now: float, phases_in_use: int = 3) -> int:
        """The phases a car on `phases_in_use` may draw on at `now` (in_force's)."""
        return self.in_force(now, phases_in_use)[1]

    def in_force(self, now: float, phases_in_use: int = 3, voltage: float = DEFAULT_VOLTAGE) -> tuple[float, int]:
        """The composite limit in watts at `now`, and the phases the car may draw on under it. The winner of each
        purpose is the highest stack level in force; a transaction's TxProfile overrules the TxDefaultProfile
        (OCPP 1.6 3.13.2, 2.0.1 K01), and the station maximum caps whichever applies. The phases: the car's, at
        most the charger's, and fewer where the TxProfile (else the TxDefaultProfile) in force says so with
        numberPhases. One pass over the profiles: a simulated charger asks at every profile it takes."""
        phases = min(self.phases, phases_in_use)
        winners: dict[Purpose, tuple[tuple[int, bool], ChargingProfile, SchedulePeriod]] = {}
        for entry in self._installed:
            profile = entry.profile
            if profile.purpose is Purpose.TX and profile.transaction_id != self.transaction_id:
                continue
            period = self._period_in_force(entry, now)
            if period is None:
                continue
            rank = (profile.stack_level, profile.connector_id != 0)
            if profile.purpose not in winners or rank > winners[profile.purpose][0]:
                winners[profile.purpose] = (rank, profile, period)
        if Purpose.TX in winners:
            winners.pop(Purpose.TX_DEFAULT, None)
        charging = winners.get(Purpose.TX) or winners.get(Purpose.TX_DEFAULT)
        if charging is not None and charging[2].number_phases is not None:
            phases = min(phases, charging[2].number_phases)
        limit = self.max_w(phases, voltage)
        for _, profile, period in winners.values():
            limit = min(limit, _watts(profile.unit, period, phases, voltage))
        return limit, phases

    def _period_in_force(self, entry: _Installed, now: float) -> SchedulePeriod | None:
        profile = entry.profile
        if profile.valid_from is not None and now < profile.valid_from:
            return None
        if profile.valid_to is not None and now >= profile.valid_to:
            return None
        start = self._schedule_start(entry, now)
        if start is None or now < start:
            return None
        elapsed = now - start
        if profile.duration_s is not None and elapsed >= profile.duration_s:
            return None
        in_force = None
        for period in profile.periods:  # few periods, in order of startPeriod
            if period.start_period_s > elapsed:
                break
            in_force = period
        return in_force

    def _schedule_start(self, entry: _Installed, now: float) -> float | None:
        profile = entry.profile
        if profile.kind is ProfileKind.RELATIVE:
            # Relative to the transaction's start; with no transaction it would start now, every time.
            return now if self.transaction_started_at is None else self.transaction_started_at
        start = entry.installed_at if profile.start_schedule is None else profile.start_schedule
        if profile.kind is ProfileKind.RECURRING and profile.recurrency_period_s is not None and now >= start:
            start += math.floor((now - start) / profile.recurrency_period_s) * profile.recurrency_period_s
        return start


def _watts(unit: RateUnit, period: SchedulePeriod, phases_in_use: int, voltage: float) -> float:
    if unit is RateUnit.WATTS:
        return period.limit
    phases = DEFAULT_NUMBER_PHASES if period.number_phases is None else period.number_phases
    return period.limit * min(phases, phases_in_use) * voltage
