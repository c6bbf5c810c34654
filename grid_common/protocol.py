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

# --- headers --------------------------------------------------------------------------------------------
# Which balancer process asks a substation: its load reports then say what *other* balancers' sessions
# draw there, and its admissions may be conditional on that (OTHERS_EV_POWER_CONDITION): at most the kW
# under which its choice of the substation stands. A substation where others' sessions draw more answers
# 412 with its load, and the balancer chooses again.
BALANCER_ID = "Balancer-Id"
OTHERS_EV_POWER_CONDITION = "If-Others-EV-Power-At-Most"
IDEMPOTENCY_KEY = "Idempotency-Key"
IDEMPOTENT_REPLAYED = "Idempotent-Replayed"

# --- names and ids --------------------------------------------------------------------------------------
# Every pattern is matched whole (fullmatch): Python's `$` would also match before a final newline.
SUBSTATION_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,63}$")
VEHICLE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
BALANCER_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# `<substation name>.<token>`: any balancer routes a session by its prefix, without shared state.
SESSION_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,63}\.[A-Za-z0-9]{8,64}$")
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


def new_session_id(substation: str) -> str:
    return f"{substation}.{secrets.token_hex(12)}"


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

    def to_json(self) -> dict:
        return {"vehicle_id": self.vehicle_id, "energy_kwh": self.energy_kwh, "max_power_kw": self.max_power_kw}


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
    },
}


def _number(body: dict, field: str, default: float, maximum: float, errors: list[dict]) -> float:
    if field not in body:
        return default
    value = body[field]
    # bool is an int in Python; `true` is never a quantity of energy.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        errors.append({"field": field, "message": "must be a number"})
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
    for field in sorted(set(body) - set(CHARGE_REQUEST_SCHEMA["properties"]) - extra_fields):
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
    if "max_power_kw" in body and not any(e["field"] == "max_power_kw" for e in errors) and max_power_kw < MIN_POWER_KW:
        errors.append({"field": "max_power_kw", "message": f"must be at least {MIN_POWER_KW:g}"})
    if errors:
        raise InvalidRequest(errors)
    return ChargeRequest(vehicle_id=vehicle_id, energy_kwh=energy_kwh, max_power_kw=max_power_kw)


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
    # Only for the balancer that asked (Balancer-Id): the EV power of sessions other balancers placed.
    others_ev_power_kw: float | None = None

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
        if self.others_ev_power_kw is not None:
            body["others_ev_power_kw"] = round(self.others_ev_power_kw, 6)
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


def _finite(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number")
    return float(value)


MAX_COUNT = 2**63 - 1  # what any JSON peer can hold as an integer


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise ValueError("not a count from 0 to 2**63 - 1")
    return value


_KW = {"type": "number", "minimum": 0}
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
    },
}


# --- a session, as its substation reports it ------------------------------------------------------------
CHARGING, COMPLETED, STOPPED = "charging", "completed", "stopped"
SESSION_STATES = (CHARGING, COMPLETED, STOPPED)


@dataclass(frozen=True)
class SessionReport:
    session_id: str
    substation: str
    vehicle_id: str
    state: str
    power_kw: float
    energy_kwh: float
    energy_delivered_kwh: float
    started_at: float
    estimated_end: float
    ended_at: float | None

    def to_json(self) -> dict:
        return {
            "session_id": self.session_id,
            "substation": self.substation,
            "vehicle_id": self.vehicle_id,
            "state": self.state,
            "power_kw": self.power_kw,
            "energy_kwh": self.energy_kwh,
            "energy_delivered_kwh": round(self.energy_delivered_kwh, 6),
            "started_at": iso_utc(self.started_at),
            "estimated_end": iso_utc(self.estimated_end),
            "ended_at": iso_utc(self.ended_at),
        }


SESSION_SCHEMA: dict = {
    "type": "object",
    "required": [
        "session_id",
        "substation",
        "vehicle_id",
        "state",
        "power_kw",
        "energy_kwh",
        "energy_delivered_kwh",
        "started_at",
        "estimated_end",
        "ended_at",
    ],
    "properties": {
        "session_id": {"type": "string", "pattern": SESSION_ID_PATTERN.pattern},
        "substation": {"type": "string", "pattern": SUBSTATION_NAME_PATTERN.pattern},
        "vehicle_id": {"type": "string", "pattern": VEHICLE_ID_PATTERN.pattern},
        "state": {"enum": list(SESSION_STATES)},
        "power_kw": _KW,
        "energy_kwh": _KW,
        "energy_delivered_kwh": _KW,
        "started_at": {"type": "string", "format": "date-time"},
        "estimated_end": {"type": "string", "format": "date-time"},
        "ended_at": {"type": ["string", "null"], "format": "date-time"},
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
