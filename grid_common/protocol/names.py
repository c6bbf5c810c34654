"""Names and ids, and their rules: every pattern is matched whole (fullmatch), since Python's `$` would
also match before a final newline."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated

from msgspec import Meta

from grid_common.protocol.headers import IDEMPOTENCY_KEY_MAX_LENGTH

SUBSTATION_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,63}$")
VEHICLE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
BALANCER_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
SESSION_TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9]{8,64}$")
# OCPP 1.6's chargeBoxIdentity is at most 48 characters; the path segment it comes in is checked against this.
CHARGER_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,47}$")
# A circuit inside a substation (substation_service/circuits.py).
CIRCUIT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,47}$")
# 1.6 numbers its transactions (an integer), 2.0.1 names them (a string of at most 36 characters).
TRANSACTION_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,36}$")
# `<substation name>.<token>`: any balancer routes a session by its prefix, without shared state.
SESSION_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,63}\.[A-Za-z0-9]{8,64}$")
# The `reason` of a substation's 409 for a session id it holds for another request: unlike a full substation's
# 409, it says nothing of the substation, and no other substation may start the session instead.
SESSION_EXISTS = "session_exists"

SubstationName = Annotated[str, Meta(pattern=SUBSTATION_NAME_PATTERN.pattern)]
SessionId = Annotated[str, Meta(pattern=SESSION_ID_PATTERN.pattern)]
VehicleId = Annotated[str, Meta(pattern=VEHICLE_ID_PATTERN.pattern)]


def is_substation_name(value: object) -> bool:
    return isinstance(value, str) and bool(SUBSTATION_NAME_PATTERN.fullmatch(value))


def is_session_id(value: object) -> bool:
    return isinstance(value, str) and bool(SESSION_ID_PATTERN.fullmatch(value))


def is_balancer_id(value: object) -> bool:
    return isinstance(value, str) and bool(BALANCER_ID_PATTERN.fullmatch(value))


def is_idempotency_key(value: str) -> bool:
    return 0 < len(value) <= IDEMPOTENCY_KEY_MAX_LENGTH and value.isascii() and value.isprintable()


def is_session_token(value: object) -> bool:
    return isinstance(value, str) and bool(SESSION_TOKEN_PATTERN.fullmatch(value))


def substation_of(session_id: str) -> str:
    return session_id.split(".", 1)[0]


def new_session_id(substation: str, token: str | None = None) -> str:
    return f"{substation}.{token or secrets.token_hex(12)}"


@lru_cache(maxsize=1024)  # an answer gives one moment several times (requested, started, its schedule's start)
def iso_utc(wall_seconds: float | None) -> str | None:
    """Timestamps on the wire: ISO 8601 in UTC, to the millisecond."""
    if wall_seconds is None:
        return None
    return datetime.fromtimestamp(wall_seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
