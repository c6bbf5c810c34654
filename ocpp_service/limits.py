"""From the substation's kW to what a charger is told: amperes per phase in OCPP's 0.1 steps, IEC 61851's 6 A
floor, profiles that expire unless renewed, and a default that is safe on its own. Pure: no I/O."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from ocpp_service.registry import MIN_CURRENT_A, Charger

# OCPP limits go in steps of 0.1: a change smaller than that is not sent.
RESOLUTION_A = 0.1
# Profile ids: one default per charger, one TxProfile per transaction (a new one replaces the old: same id).
DEFAULT_PROFILE_ID = 1
TX_PROFILE_ID = 2


def limit_a(kw: float, charger: Charger, voltage_v: float, phases: int | None = None) -> float:
    """The current per phase for `kw` on `phases` (the charger's own unless said), rounded down to OCPP's step
    (never above what was given), within the charger's maximum; 0 below 6 A, which no car may be offered (a
    pause)."""
    return stepped(kw * 1000.0 / ((phases or charger.phases) * voltage_v), charger)


def stepped(amperes: float, charger: Charger) -> float:
    """`amperes` rounded down to OCPP's step (never above), within the charger's maximum; 0 below 6 A."""
    # The maximum is stepped too: a charger registered at 16.96 A is told 16.9, never 17.0.
    amperes = math.floor(min(charger.max_current_a, amperes) / RESOLUTION_A + 1e-9) * RESOLUTION_A
    return round(amperes, 1) if amperes >= MIN_CURRENT_A else 0.0


def safe_default_a(capacity_kw: float, background_peak_kw: float, on_phases: Sequence[int], charger: Charger,
                   voltage_v: float, background_shares: Sequence[float] = (1 / 3, 1 / 3, 1 / 3)) -> float:  # fmt: skip
    """What a charger may draw on its own, with no word from anyone, in amperes a phase, the same for every
    charger: if every one of the substation's chargers fell back to it at once, each phase would still hold them
    (`on_phases`: how many chargers draw on L1, L2, L3; a 3-phase charger on all three, a 1-phase one on the
    phase it is wired to) and its share of the background at its peak, within a third of the capacity."""
    amperes = math.inf
    for phase, chargers in enumerate(on_phases):
        if chargers:
            room_kw = max(0.0, capacity_kw / 3 - background_peak_kw * background_shares[phase])
            amperes = min(amperes, room_kw * 1000.0 / (voltage_v * chargers))
    return 0.0 if amperes == math.inf else stepped(amperes, charger)


def limits_ahead(
    planned: Sequence[tuple[float, float]], now_a: float, start: int, until: float
) -> tuple[tuple[int, float], ...]:
    """A plan's limits ahead (wall start, A) as a schedule's later periods: (seconds after `start`, A), those
    that begin before `until` (when the profile expires), strictly after each other, each a change.

    Never above `now_a`, the limit in force now: a charger follows its schedule on its own if its central
    system goes silent, and what the plan gives a car later is safe only beside what the others are given then,
    which their own schedules do not say. A later rise comes in the profile sent when it begins."""
    periods: list[tuple[int, float]] = []
    for begins, planned_a in planned:
        if begins >= until:
            break
        amperes = min(now_a, planned_a)
        previous_offset, previous_a = periods[-1] if periods else (0, now_a)
        # Whole seconds, never late for a fall nor early for a rise.
        offset = math.floor(begins - start) if amperes < previous_a else math.ceil(begins - start)
        if offset <= previous_offset:
            if not periods:
                offset = 1  # a fall within the schedule's first second: from its second
            else:  # two changes within a second: the lower holds there, the safe side
                periods[-1] = (previous_offset, min(previous_a, amperes))
                continue
        if abs(amperes - previous_a) >= RESOLUTION_A / 2:
            periods.append((offset, amperes))
    # a period merged into the one before may now say what the one before it says
    merged: list[tuple[int, float]] = []
    for offset, amperes in periods:
        if abs(amperes - (merged[-1][1] if merged else now_a)) >= RESOLUTION_A / 2:
            merged.append((offset, amperes))
    return tuple(merged)


def iso(wall_seconds: float) -> str:
    return datetime.fromtimestamp(wall_seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Profile:
    """A limit to send: for a transaction (TxProfile, valid until `valid_to`) or the charger's default."""

    amperes: float
    phases: int
    transaction_id: str | None = None  # None: the default (TxDefaultProfile), valid until replaced
    valid_to: float | None = None
    # Later periods of its plan (limits_ahead): (seconds after `starts_at`, A); then its schedule is Absolute.
    ahead: tuple[tuple[int, float], ...] = ()
    starts_at: int = 0  # wall seconds, whole

    def same_limits(self, other: Profile) -> bool:
        """Whether `other` says what this says, within a charger's resolution (and a second for when)."""
        if abs(self.amperes - other.amperes) >= RESOLUTION_A / 2 or self.phases != other.phases:
            return False
        if len(self.ahead) != len(other.ahead):
            return False
        return all(
            abs(self.starts_at + mine[0] - other.starts_at - theirs[0]) <= 1
            and abs(mine[1] - theirs[1]) < RESOLUTION_A / 2
            for mine, theirs in zip(self.ahead, other.ahead, strict=True)
        )

    def _schedule(self) -> dict:
        """The parts of a chargingSchedule both versions share."""
        periods = [{"startPeriod": 0, "limit": self.amperes, "numberPhases": self.phases}]
        periods += [{"startPeriod": offset, "limit": amperes, "numberPhases": self.phases} for offset, amperes in
                    self.ahead]  # fmt: skip
        schedule: dict = {"chargingRateUnit": "A", "chargingSchedulePeriod": periods}
        if self.ahead:
            schedule["startSchedule"] = iso(self.starts_at)
        return schedule

    def v16_payload(self) -> dict:
        """The whole SetChargingProfile request of 1.6, as it goes on the wire (camelCase): built as it is
        (thousands of these go out at a reallocation): tests/unit/test_ocpp_parts.py holds it to what the library
        makes of the snake_case profile."""
        tx = bool(self.transaction_id)  # a transaction's id says TxProfile
        profile: dict = {
            "chargingProfileId": TX_PROFILE_ID if tx else DEFAULT_PROFILE_ID,
            "stackLevel": 1 if tx else 0,
            "chargingProfilePurpose": "TxProfile" if tx else "TxDefaultProfile",
            "chargingProfileKind": "Absolute" if self.ahead else "Relative",
            "chargingSchedule": self._schedule(),
        }
        if self.transaction_id is not None:
            profile["transactionId"] = int(self.transaction_id)
        if self.valid_to is not None:
            profile["validTo"] = iso(self.valid_to)
        return {"connectorId": 1 if tx else 0, "csChargingProfiles": profile}

    def v201_payload(self) -> dict:
        """The whole SetChargingProfile request of 2.0.1, as it goes on the wire (camelCase): built as it is."""
        tx = bool(self.transaction_id)
        profile: dict = {
            "id": TX_PROFILE_ID if tx else DEFAULT_PROFILE_ID,
            "stackLevel": 1 if tx else 0,
            "chargingProfilePurpose": "TxProfile" if tx else "TxDefaultProfile",
            "chargingProfileKind": "Absolute" if self.ahead else "Relative",
            "chargingSchedule": [{"id": 1, **self._schedule()}],
        }
        if self.transaction_id is not None:
            profile["transactionId"] = self.transaction_id
        if self.valid_to is not None:
            profile["validTo"] = iso(self.valid_to)
        return {"evseId": 1 if tx else 0, "chargingProfile": profile}
