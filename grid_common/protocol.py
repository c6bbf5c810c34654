"""The wire protocol: every shape that crosses between services, its parse and its serialization, the
rules for names and ids, and the headers. Each shape's JSON Schema sits beside it; the OpenAPI documents
are built from these (grid_common/openapi.py), and tests/unit/test_protocol.py checks that what each
serializer writes is what its schema says.

Who speaks what:
- an EV, the gateway and the balancer: a ChargeRequest;
- the balancer to a substation: an admission (a ChargeRequest and the session id the balancer chose);
- a substation to the balancer: a LoadReport (polled, and in every admission answer);
- every service to its caller: a SessionReport.
"""

from __future__ import annotations

import math
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache

# --- headers --------------------------------------------------------------------------------------------
# Which balancer process asks a substation: its load reports then say what *other* balancers' sessions
# draw there, and its admissions may be conditional on that (OTHERS_EV_POWER_CONDITION): at most the kW
# under which its choice of the substation stands. A substation where others' sessions draw more answers
# 412 with its load, and the balancer chooses again.
BALANCER_ID = "Balancer-Id"
OTHERS_EV_POWER_CONDITION = "If-Others-EV-Power-At-Most"
# The same for a choice made on what a newcomer would get there: at most this many sessions of others.
OTHERS_SESSIONS_CONDITION = "If-Others-Sessions-At-Most"
IDEMPOTENCY_KEY = "Idempotency-Key"
# Unix time after which a call that may change state must not be acted on (grid_common/deadline.py).
REQUEST_DEADLINE = "Request-Deadline"
# The token a session is named with (`<substation>.<token>`), chosen by the gateway from an Idempotency-Key,
# so that a retry can find the session an earlier attempt made.
SESSION_TOKEN = "Session-Token"
SESSION_TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9]{8,64}$")
IDEMPOTENT_REPLAYED = "Idempotent-Replayed"

# --- names and ids --------------------------------------------------------------------------------------
# Every pattern is matched whole (fullmatch): Python's `$` would also match before a final newline.
SUBSTATION_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,63}$")
VEHICLE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
BALANCER_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# `<substation name>.<token>`: any balancer routes a session by its prefix, without shared state.
SESSION_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,63}\.[A-Za-z0-9]{8,64}$")
# The `reason` of a substation's 409 for a session id it holds for another request: unlike a full substation's
# 409, it says nothing of the substation, and no other substation may start the session instead.
SESSION_EXISTS = "session_exists"
IDEMPOTENCY_KEY_MAX_LENGTH = 255


def is_substation_name(value: object) -> bool:
    return isinstance(value, str) and bool(SUBSTATION_NAME_PATTERN.fullmatch(value))


def is_session_id(value: object) -> bool:
    return isinstance(value, str) and bool(SESSION_ID_PATTERN.fullmatch(value))


def is_balancer_id(value: object) -> bool:
    return isinstance(value, str) and bool(BALANCER_ID_PATTERN.fullmatch(value))


def is_idempotency_key(value: str) -> bool:
    return 0 < len(value) <= IDEMPOTENCY_KEY_MAX_LENGTH and value.isascii() and value.isprintable()


def substation_of(session_id: str) -> str:
    return session_id.split(".", 1)[0]


def new_session_id(substation: str, token: str | None = None) -> str:
    return f"{substation}.{token or secrets.token_hex(12)}"


def is_session_token(value: object) -> bool:
    return isinstance(value, str) and bool(SESSION_TOKEN_PATTERN.fullmatch(value))


@lru_cache(maxsize=1024)  # an answer gives one moment several times (requested, started, its schedule's start)
def iso_utc(wall_seconds: float | None) -> str | None:
    """Timestamps on the wire: ISO 8601 in UTC, to the millisecond."""
    if wall_seconds is None:
        return None
    return datetime.fromtimestamp(wall_seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- the charging request -------------------------------------------------------------------------------
DEFAULT_ENERGY_KWH = 11.0
DEFAULT_MAX_POWER_KW = 11.0
# Upper bounds are physical: no road vehicle battery above 250 kWh, no charger above 1 MW.
MAX_ENERGY_KWH = 250.0
MAX_POWER_KW = 1000.0
# No charger delivers less than about 1.4 kW (6 A at 230 V): below 1 kW a "session" would last for ages.
MIN_POWER_KW = 1.0
# The least a car charges at unless it says otherwise: 6 A on one 230 V phase (IEC 61851's minimum).
DEFAULT_MIN_POWER_KW = 1.4
# Higher is served first; 0 unless the request says otherwise.
PRIORITIES = (0, 1, 2, 3)


class InvalidRequest(ValueError):
    """The body is JSON but says something impossible; `errors` names each field."""

    def __init__(self, errors: list[dict]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))


@dataclass(frozen=True)
class ChargeRequest:
    vehicle_id: str
    energy_kwh: float
    max_power_kw: float
    # The least the car charges at: it is given at least this, or waits (paused, queued) at 0 kW.
    min_power_kw: float = DEFAULT_MIN_POWER_KW
    priority: int = 0
    # Queue at the substation where it starts soonest (202) rather than be refused (503) when all are full.
    wait: bool = False

    def to_json(self) -> dict:
        return {
            "vehicle_id": self.vehicle_id,
            "energy_kwh": self.energy_kwh,
            "max_power_kw": self.max_power_kw,
            "min_power_kw": self.min_power_kw,
            "priority": self.priority,
            "wait": self.wait,
        }


CHARGE_REQUEST_SCHEMA: dict = {
    "type": "object",
    "description": "Every field is optional; a body-less POST asks for the defaults.",
    "additionalProperties": False,
    "properties": {
        "vehicle_id": {
            "type": ["string", "null"],
            "pattern": VEHICLE_ID_PATTERN.pattern,
            "description": "Generated when absent.",
        },
        "energy_kwh": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": MAX_ENERGY_KWH,
            "default": DEFAULT_ENERGY_KWH,
        },
        "max_power_kw": {
            "type": "number",
            "minimum": MIN_POWER_KW,
            "maximum": MAX_POWER_KW,
            "default": DEFAULT_MAX_POWER_KW,
        },
        "min_power_kw": {
            "type": "number",
            "minimum": MIN_POWER_KW,
            "maximum": MAX_POWER_KW,
            "description": f"At most max_power_kw; by default the lesser of max_power_kw and {DEFAULT_MIN_POWER_KW:g}.",
        },
        "priority": {"type": "integer", "minimum": PRIORITIES[0], "maximum": PRIORITIES[-1], "default": 0},
        "wait": {
            "type": "boolean",
            "default": False,
            "description": "When no substation can start it now: queue (202) instead of a refusal (503).",
        },
    },
}


CHARGE_REQUEST_FIELDS = frozenset(CHARGE_REQUEST_SCHEMA["properties"])


def _number(body: dict, field: str, default: float, maximum: float, errors: list[dict]) -> float:
    if field not in body:
        return default
    value = body[field]
    # bool is an int in Python; `true` is never a quantity of energy.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        errors.append({"field": field, "message": "must be a number"})
        return default
    try:
        value = float(value)
    except OverflowError:  # an integer of hundreds of digits: JSON allows it, no quantity here is one
        errors.append({"field": field, "message": f"must be at most {maximum:g}"})
        return default
    if not math.isfinite(value):
        errors.append({"field": field, "message": "must be finite"})
        return default
    if value <= 0:
        errors.append({"field": field, "message": "must be greater than 0"})
        return default
    if value > maximum:
        errors.append({"field": field, "message": f"must be at most {maximum:g}"})
        return default
    return float(value)


def parse_charge_request(body: object, *, extra_fields: frozenset[str] = frozenset()) -> ChargeRequest:
    """A decoded JSON body (None for a body-less POST) as a request with defaults filled in.

    `extra_fields` are fields a caller reads itself (the admission's session_id): not unknown here.
    """
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise InvalidRequest([{"field": "(body)", "message": "must be a JSON object"}])
    errors: list[dict] = []
    for field in sorted(body.keys() - CHARGE_REQUEST_FIELDS - extra_fields):
        errors.append({"field": field, "message": "is not a known field"})
    vehicle_id = body.get("vehicle_id")
    if vehicle_id is None:
        vehicle_id = f"EV-{secrets.token_hex(4)}"
    elif not isinstance(vehicle_id, str) or not VEHICLE_ID_PATTERN.fullmatch(vehicle_id):
        errors.append(
            {"field": "vehicle_id", "message": "must be 1-64 characters: letters, digits and . _ : - (not first)"}
        )
    energy_kwh = _number(body, "energy_kwh", DEFAULT_ENERGY_KWH, MAX_ENERGY_KWH, errors)
    max_power_kw = _number(body, "max_power_kw", DEFAULT_MAX_POWER_KW, MAX_POWER_KW, errors)
    if "max_power_kw" in body and not _has_error(errors, "max_power_kw") and max_power_kw < MIN_POWER_KW:
        errors.append({"field": "max_power_kw", "message": f"must be at least {MIN_POWER_KW:g}"})
    min_power_kw = _number(body, "min_power_kw", min(max_power_kw, DEFAULT_MIN_POWER_KW), MAX_POWER_KW, errors)
    if "min_power_kw" in body and not _has_error(errors, "min_power_kw"):
        if min_power_kw < MIN_POWER_KW:
            errors.append({"field": "min_power_kw", "message": f"must be at least {MIN_POWER_KW:g}"})
        elif min_power_kw > max_power_kw and not _has_error(errors, "max_power_kw"):
            errors.append({"field": "min_power_kw", "message": f"must be at most max_power_kw ({max_power_kw:g})"})
    priority = body.get("priority", 0)
    if isinstance(priority, float) and priority.is_integer():
        priority = int(priority)  # JSON has numbers, not integers: 3.0 is 3
    if isinstance(priority, bool) or not isinstance(priority, int) or priority not in PRIORITIES:
        errors.append({"field": "priority", "message": f"must be an integer from {PRIORITIES[0]} to {PRIORITIES[-1]}"})
        priority = 0
    wait = body.get("wait", False)
    if not isinstance(wait, bool):
        errors.append({"field": "wait", "message": "must be true or false"})
        wait = False
    if errors:
        raise InvalidRequest(errors)
    return ChargeRequest(vehicle_id, energy_kwh, max_power_kw, min_power_kw, priority, wait)


def _has_error(errors: list[dict], field: str) -> bool:
    return any(e["field"] == field for e in errors)


# --- the admission: balancer -> substation --------------------------------------------------------------
ADMISSION_SCHEMA: dict = {
    **CHARGE_REQUEST_SCHEMA,
    "description": "A ChargeRequest, and the session id the balancer chose (the same id again: the same session).",
    "properties": {
        **CHARGE_REQUEST_SCHEMA["properties"],
        "session_id": {"type": "string", "pattern": SESSION_ID_PATTERN.pattern},
    },
}


def admission_body(request: ChargeRequest, session_id: str) -> dict:
    return {**request.to_json(), "session_id": session_id}


def parse_admission(body: object) -> tuple[ChargeRequest, str | None]:
    """The request and the session id the balancer chose for it, if it chose one."""
    session_id = body.get("session_id") if isinstance(body, dict) else None
    request_errors: list[dict] = []
    try:
        request = parse_charge_request(body, extra_fields=frozenset({"session_id"}))
    except InvalidRequest as error:
        request_errors = error.errors
    if isinstance(body, dict) and "session_id" in body and not is_session_id(session_id):
        request_errors.append({"field": "session_id", "message": "must look like <substation>.<token>"})
    if request_errors:
        raise InvalidRequest(request_errors)
    return request, session_id


class Allocation(StrEnum):
    """How a substation shares its headroom: `fair` admits a session on its minimum and shares the rest
    (smart charging); `fixed` gives each its maximum for its whole life, for comparison."""

    FAIR = "fair"
    FIXED = "fixed"


ALLOCATIONS = tuple(Allocation)


# --- the load report: substation -> balancer ------------------------------------------------------------
class MalformedReport(ValueError):
    """An answer that is not a load report."""


@dataclass(frozen=True)
class LoadReport:
    """What a balancer needs to rank a substation; `epoch` and `sequence` order the reports of one process."""

    name: str
    capacity_kw: float
    ev_power_kw: float
    background_kw: float
    active_sessions: int
    charger_max_power_kw: float
    epoch: str
    sequence: int
    # Seconds until the next session here ends, if one is charging: when to retry a refusal.
    next_session_end_s: float | None = None
    # Only for the balancer that asked (Balancer-Id): the EV power of sessions other balancers placed, and
    # how many sessions (started or queued) they placed here.
    others_ev_power_kw: float | None = None
    others_sessions: int | None = None
    # Also only for it: how many of its sessions have started here at admission in this epoch. Its sessions
    # in flight that the report already counts are this less the admissions it has heard back about, so it
    # does not count them twice (once in the report, once in flight).
    started_for_you: int | None = None
    # How it shares: "fair" admits on a session's minimum and shares the rest; "fixed" gives each session its
    # maximum for its whole life and admits on that.
    allocation: Allocation = Allocation.FIXED
    # Capacity less the background's peak over the next allocation step: what EV sessions may draw now.
    headroom_kw: float = 0.0
    # The same over the admission's look-ahead: what the minimums (fair) or powers (fixed) of sessions that
    # start now must fit under.
    admission_headroom_kw: float = 0.0
    # What admission counts for the sessions started here: their minimums (fair) or their powers (fixed).
    committed_kw: float = 0.0
    paused_sessions: int = 0
    queued_sessions: int = 0
    queue_limit: int = 0
    # Queued sessions per priority (0 to 3): a newcomer of priority p waits behind those of priority >= p.
    queue_by_priority: tuple[int, ...] = (0, 0, 0, 0)
    # Per priority p: the power a newcomer of priority p could draw from (headroom no session takes, and what
    # sessions of priority <= p draw above their minimum), and how many sessions it would share it with.
    shareable_kw: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)
    sharing_sessions: tuple[int, ...] = (0, 0, 0, 0)
    # The most every car here (charging, paused or queued) could draw together.
    demand_kw: float = 0.0
    # Per priority: seconds until a newcomer of that priority would start here, if queued now (0: at once;
    # None: not foreseeable, e.g. nothing is charging to end).
    estimated_start_s: tuple[float | None, ...] = (0.0, 0.0, 0.0, 0.0)

    @property
    def load_kw(self) -> float:
        return self.ev_power_kw + self.background_kw

    @property
    def utilization(self) -> float:
        return self.load_kw / self.capacity_kw

    @property
    def available_kw(self) -> float:
        return max(0.0, self.capacity_kw - self.load_kw)

    def to_json(self) -> dict:
        body = {
            "name": self.name,
            "capacity_kw": round(self.capacity_kw, 6),
            "load_kw": round(self.load_kw, 6),
            "ev_power_kw": round(self.ev_power_kw, 6),
            "background_kw": round(self.background_kw, 6),
            "utilization": round(self.utilization, 6),
            "available_kw": round(self.available_kw, 6),
            "active_sessions": self.active_sessions,
            "charger_max_power_kw": self.charger_max_power_kw,
            "next_session_end_s": None if self.next_session_end_s is None else round(self.next_session_end_s, 3),
            "epoch": self.epoch,
            "sequence": self.sequence,
        }
        body |= {
            "allocation": self.allocation,
            "headroom_kw": round(self.headroom_kw, 6),
            "admission_headroom_kw": round(self.admission_headroom_kw, 6),
            "committed_kw": round(self.committed_kw, 6),
            "paused_sessions": self.paused_sessions,
            "queued_sessions": self.queued_sessions,
            "queue_limit": self.queue_limit,
            "queue_by_priority": list(self.queue_by_priority),
            "shareable_kw": [round(kw, 6) for kw in self.shareable_kw],
            "sharing_sessions": list(self.sharing_sessions),
            "demand_kw": round(self.demand_kw, 6),
            "estimated_start_s": [None if s is None else round(s, 3) for s in self.estimated_start_s],
        }
        if self.others_ev_power_kw is not None:
            body["others_ev_power_kw"] = round(self.others_ev_power_kw, 6)
        if self.others_sessions is not None:
            body["others_sessions"] = self.others_sessions
        if self.started_for_you is not None:
            body["started_for_you"] = self.started_for_you
        return body

    @classmethod
    def from_json(cls, body: object) -> LoadReport:
        """A report as sent, checked: anything else raises MalformedReport."""
        if not isinstance(body, dict):
            raise MalformedReport("a load report is a JSON object")
        try:
            name = body["name"]
            next_end = body.get("next_session_end_s")
            others = body.get("others_ev_power_kw")
            others_sessions = body.get("others_sessions")
            started_for_you = body.get("started_for_you")
            report = cls(
                name=name,
                capacity_kw=_finite(body["capacity_kw"]),
                ev_power_kw=_finite(body["ev_power_kw"]),
                background_kw=_finite(body["background_kw"]),
                active_sessions=_count(body["active_sessions"]),
                charger_max_power_kw=_finite(body["charger_max_power_kw"]),
                epoch=body["epoch"],
                sequence=_count(body["sequence"]),
                next_session_end_s=None if next_end is None else _finite(next_end),
                others_ev_power_kw=None if others is None else _finite(others),
                others_sessions=None if others_sessions is None else _count(others_sessions),
                started_for_you=None if started_for_you is None else _count(started_for_you),
                allocation=Allocation(body["allocation"]),
                headroom_kw=_finite(body["headroom_kw"]),
                admission_headroom_kw=_finite(body["admission_headroom_kw"]),
                committed_kw=_finite(body["committed_kw"]),
                paused_sessions=_count(body["paused_sessions"]),
                queued_sessions=_count(body["queued_sessions"]),
                queue_limit=_count(body["queue_limit"]),
                queue_by_priority=_per_priority(body["queue_by_priority"], _count),
                shareable_kw=_per_priority(body["shareable_kw"], _finite),
                sharing_sessions=_per_priority(body["sharing_sessions"], _count),
                demand_kw=_finite(body["demand_kw"]),
                estimated_start_s=_per_priority(body["estimated_start_s"], lambda v: None if v is None else _finite(v)),
            )
        except KeyError as error:
            raise MalformedReport(f"a load report has a field {error}") from None
        except (TypeError, ValueError, OverflowError) as error:
            raise MalformedReport(f"a load report has a field that is not valid: {error}") from None
        if not is_substation_name(report.name) or not isinstance(report.epoch, str):
            raise MalformedReport("a load report names its substation and its epoch")
        if report.capacity_kw <= 0 or min(report.ev_power_kw, report.background_kw, report.charger_max_power_kw) < 0:
            raise MalformedReport("a load report has impossible power")
        if report.others_ev_power_kw is not None and report.others_ev_power_kw < 0:
            raise MalformedReport("a load report has impossible power")
        return report


# Reports are read on every admission answer: the checks test exact types, as JSON decoders make them (and
# as bool, an int in Python, is not).
def _finite(value: object) -> float:
    kind = type(value)
    if kind is float and math.isfinite(value):
        return value
    if kind is int:
        return float(value)  # OverflowError beyond what a float holds
    raise ValueError("not a finite number")


MAX_COUNT = 2**63 - 1  # what any JSON peer can hold as an integer


def _per_priority(values: object, read) -> tuple:
    if not isinstance(values, list) or len(values) != len(PRIORITIES):
        raise ValueError(f"not a list of {len(PRIORITIES)}, one per priority")
    return tuple([read(value) for value in values])


def _count(value: object) -> int:
    if type(value) is not int or not 0 <= value <= MAX_COUNT:
        raise ValueError("not a count from 0 to 2**63 - 1")
    return value


_KW = {"type": "number", "minimum": 0}
_COUNT = {"type": "integer", "minimum": 0}


def _per_priority_schema(items: dict) -> dict:
    return {"type": "array", "items": items, "minItems": len(PRIORITIES), "maxItems": len(PRIORITIES)}


LOAD_REPORT_SCHEMA: dict = {
    "type": "object",
    "required": [
        "name",
        "capacity_kw",
        "load_kw",
        "ev_power_kw",
        "background_kw",
        "utilization",
        "available_kw",
        "active_sessions",
        "charger_max_power_kw",
        "next_session_end_s",
        "epoch",
        "sequence",
        "allocation",
        "headroom_kw",
        "admission_headroom_kw",
        "committed_kw",
        "paused_sessions",
        "queued_sessions",
        "queue_limit",
        "queue_by_priority",
        "shareable_kw",
        "sharing_sessions",
        "demand_kw",
        "estimated_start_s",
    ],
    "properties": {
        "name": {"type": "string", "pattern": SUBSTATION_NAME_PATTERN.pattern},
        "capacity_kw": {"type": "number", "exclusiveMinimum": 0},
        "load_kw": _KW,
        "ev_power_kw": _KW,
        "background_kw": _KW,
        "utilization": {"type": "number", "minimum": 0},
        "available_kw": _KW,
        "active_sessions": {"type": "integer", "minimum": 0},
        "charger_max_power_kw": _KW,
        "next_session_end_s": {"type": ["number", "null"], "minimum": 0},
        "others_ev_power_kw": {**_KW, "description": f"With {BALANCER_ID}: what other balancers' sessions draw."},
        "epoch": {"type": "string", "description": "Changes when the substation's process restarts."},
        "sequence": {"type": "integer", "minimum": 0, "description": "Orders the reports of one epoch."},
        "others_sessions": {
            "type": "integer",
            "minimum": 0,
            "description": f"With {BALANCER_ID}: sessions other balancers placed (started or queued).",
        },
        "started_for_you": {
            "type": "integer",
            "minimum": 0,
            "description": f"With {BALANCER_ID}: that balancer's sessions started here at admission in this epoch.",
        },
        "allocation": {"enum": ["fair", "fixed"]},
        "headroom_kw": {**_KW, "description": "Capacity less the background's peak over the next allocation step."},
        "admission_headroom_kw": {**_KW, "description": "The same over the admission's look-ahead."},
        "committed_kw": {**_KW, "description": "Minimums (fair) or powers (fixed) of the sessions started."},
        "paused_sessions": {"type": "integer", "minimum": 0},
        "queued_sessions": {"type": "integer", "minimum": 0},
        "queue_limit": {"type": "integer", "minimum": 0},
        "queue_by_priority": {
            "type": "array",
            "items": {"type": "integer", "minimum": 0},
            "minItems": 4,
            "maxItems": 4,
        },
        "shareable_kw": {"type": "array", "items": _KW, "minItems": 4, "maxItems": 4},
        "sharing_sessions": {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 4, "maxItems": 4},
        "demand_kw": {**_KW, "description": "What every car here could draw together."},
        "estimated_start_s": {
            **_per_priority_schema({"type": ["number", "null"], "minimum": 0}),
            "description": "Per priority: seconds until a newcomer queued now would start.",
        },
    },
}


# --- a session, as its substation reports it ------------------------------------------------------------
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

    def to_json(self) -> dict:
        return {
            "session_id": self.session_id,
            "substation": self.substation,
            "vehicle_id": self.vehicle_id,
            "state": self.state,
            "allocated_kw": round(self.allocated_kw, 6),
            # The name clients of version 0.2 read; the same value.
            "power_kw": round(self.allocated_kw, 6),
            "min_power_kw": self.min_power_kw,
            "max_power_kw": self.max_power_kw,
            "priority": self.priority,
            "energy_kwh": self.energy_kwh,
            "energy_delivered_kwh": round(self.energy_delivered_kwh, 6),
            "energy_remaining_kwh": round(max(0.0, self.energy_kwh - self.energy_delivered_kwh), 6),
            "requested_at": iso_utc(self.requested_at),
            "started_at": iso_utc(self.started_at),
            "position": self.position,
            "estimated_start": iso_utc(self.estimated_start),
            "estimated_end": iso_utc(self.estimated_end),
            "ended_at": iso_utc(self.ended_at),
            "charging_schedule": self.charging_schedule(),
        }

    def charging_schedule(self) -> dict | None:
        """The limits so far, shaped as an OCPP ChargingSchedule (W, periods in seconds from its start)."""
        if not self.schedule:
            return None
        start = self.schedule[0].start
        return {
            "startSchedule": iso_utc(start),
            "chargingRateUnit": "W",
            "chargingSchedulePeriod": [
                {"startPeriod": round(period.start - start), "limit": round(period.limit_kw * 1000, 1)}
                for period in self.schedule
            ],
            "minChargingRate": round(self.min_power_kw * 1000, 1),
        }


_MOMENT = {"type": ["string", "null"], "format": "date-time"}
SESSION_SCHEMA: dict = {
    "type": "object",
    "required": [
        "session_id",
        "substation",
        "vehicle_id",
        "state",
        "allocated_kw",
        "power_kw",
        "min_power_kw",
        "max_power_kw",
        "priority",
        "energy_kwh",
        "energy_delivered_kwh",
        "energy_remaining_kwh",
        "requested_at",
        "started_at",
        "position",
        "estimated_start",
        "estimated_end",
        "ended_at",
        "charging_schedule",
    ],
    "properties": {
        "session_id": {"type": "string", "pattern": SESSION_ID_PATTERN.pattern},
        "substation": {"type": "string", "pattern": SUBSTATION_NAME_PATTERN.pattern},
        "vehicle_id": {"type": "string", "pattern": VEHICLE_ID_PATTERN.pattern},
        "state": {"enum": list(SESSION_STATES)},
        "allocated_kw": {**_KW, "description": "What it may draw now: 0 while queued or paused."},
        "power_kw": {**_KW, "description": "The same as allocated_kw (the name of version 0.2)."},
        "min_power_kw": _KW,
        "max_power_kw": {**_KW, "description": "The car's maximum, capped by the substation's charger."},
        "priority": {"type": "integer", "minimum": PRIORITIES[0], "maximum": PRIORITIES[-1]},
        "energy_kwh": _KW,
        "energy_delivered_kwh": _KW,
        "energy_remaining_kwh": _KW,
        "requested_at": {"type": "string", "format": "date-time"},
        "started_at": {**_MOMENT, "description": "When it first charged; null while queued."},
        "position": {"type": ["integer", "null"], "minimum": 1, "description": "Place in the queue, 1 first."},
        "estimated_start": {**_MOMENT, "description": "While queued: when it should start."},
        "estimated_end": {**_MOMENT, "description": "At the current allocation; null while it draws nothing."},
        "ended_at": _MOMENT,
        "charging_schedule": {
            "type": ["object", "null"],
            "description": "Its limits so far, as an OCPP ChargingSchedule (the latest periods).",
            "required": ["startSchedule", "chargingRateUnit", "chargingSchedulePeriod", "minChargingRate"],
            "properties": {
                "startSchedule": {"type": "string", "format": "date-time"},
                "chargingRateUnit": {"const": "W"},
                "chargingSchedulePeriod": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["startPeriod", "limit"],
                        "properties": {"startPeriod": {"type": "integer", "minimum": 0}, "limit": _KW},
                    },
                },
                "minChargingRate": _KW,
            },
        },
    },
}


def is_session_report(body: object) -> bool:
    """Enough of a session to pass on: a proxy checks what it relies on, and relays the rest as it is."""
    return (
        isinstance(body, dict)
        and is_session_id(body.get("session_id"))
        and body.get("substation") == substation_of(body["session_id"])
    )


# --- the admission's answer: substation -> balancer -----------------------------------------------------
def admission_answer(session: SessionReport, load: LoadReport) -> dict:
    return {"session": session.to_json(), "load": load.to_json()}


ADMISSION_ANSWER_SCHEMA: dict = {
    "type": "object",
    "required": ["session", "load"],
    "properties": {"session": {"$ref": "#/components/schemas/Session"}, "load": {"$ref": "#/components/schemas/Load"}},
}
