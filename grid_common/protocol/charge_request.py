"""The charging request (an EV, the gateway and the balancer speak it) and the admission (the balancer asks a
substation with it). Each field is declared once, in `ChargeRequest`: its type, limits, default and
description make the JSON Schema (msgspec), and the parser reads its checks from them, naming every field
that is wrong at once, in words a client can act on."""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import Meta, Struct

from grid_common.protocol.charger_link import ChargerLink
from grid_common.protocol.names import (
    CHARGER_ID_PATTERN,
    CIRCUIT_PATTERN,
    SESSION_ID_PATTERN,
    TRANSACTION_ID_PATTERN,
    VEHICLE_ID_PATTERN,
    is_session_id,
)
from grid_common.protocol.phases import GridPhase

# Currents are per phase, at the nominal voltage between a phase and neutral (configurable: NOMINAL_VOLTAGE_V).
NOMINAL_VOLTAGE_V = 230.0
# IEC 61851: a car may not be offered less than 6 A a phase, so no car's minimum is below it.
MIN_CURRENT_A = 6.0
# A body-less request is a common car: three phases at 16 A (11 kW), charging at no less than 3 x 6 A.
DEFAULT_PHASES: Literal[1, 3] = 3
DEFAULT_MAX_CURRENT_A = 16.0
# Beyond any AC connector (IEC 62196 goes to 63 A a phase, a few industrial ones to 250 A).
MAX_CURRENT_A = 500.0


def kw_of(current_a: float, phases: int, voltage_v: float = NOMINAL_VOLTAGE_V) -> float:
    """The power of `current_a` on each of `phases` phases, in kW (rounded to the milliwatt: 3 x 16 A is 11.04)."""
    return round(current_a * phases * voltage_v / 1000.0, 6)


def current_of(kw: float, phases: int, voltage_v: float = NOMINAL_VOLTAGE_V) -> float:
    """The current on each of `phases` phases that `kw` takes, in A."""
    return kw * 1000.0 / (phases * voltage_v)


DEFAULT_ENERGY_KWH = 11.0
DEFAULT_MAX_POWER_KW = kw_of(DEFAULT_MAX_CURRENT_A, DEFAULT_PHASES)
# Upper bounds are physical: no road vehicle battery above 250 kWh, no charger above 1 MW.
MAX_ENERGY_KWH = 250.0
MAX_POWER_KW = 1000.0
# Below 1 kW a "session" would last for ages; a minimum given in kW is taken as it is given.
MIN_POWER_KW = 1.0
# The least a body-less request's car charges at: 6 A on each of its three phases.
DEFAULT_MIN_POWER_KW = kw_of(MIN_CURRENT_A, DEFAULT_PHASES)
# Higher is served first; 0 unless the request says otherwise.
PRIORITIES = (0, 1, 2, 3)


class InvalidRequest(ValueError):
    """The body is JSON but says something impossible; `errors` names each field."""

    def __init__(self, errors: list[dict]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))


class ChargeRequest(Struct, frozen=True, forbid_unknown_fields=True):
    """Every field is optional; a body-less POST asks for the defaults."""

    vehicle_id: Annotated[
        str,
        Meta(
            pattern=VEHICLE_ID_PATTERN.pattern,
            description="Generated when absent.",
            extra={"message": "must be 1-64 characters: letters, digits and . _ : - (not first)"},
        ),
    ] = ""
    energy_kwh: Annotated[float, Meta(gt=0, le=MAX_ENERGY_KWH)] = DEFAULT_ENERGY_KWH
    max_power_kw: Annotated[
        float,
        Meta(
            ge=MIN_POWER_KW,
            le=MAX_POWER_KW,
            description=f"Or max_current_a; by default {DEFAULT_MAX_CURRENT_A:g} A on each of its phases "
            f"({DEFAULT_MAX_POWER_KW:g} kW on three at {NOMINAL_VOLTAGE_V:g} V).",
        ),
    ] = DEFAULT_MAX_POWER_KW
    # The least the car charges at: it is given at least this, or waits (paused, queued) at 0 kW.
    min_power_kw: Annotated[
        float,
        Meta(
            ge=MIN_POWER_KW,
            le=MAX_POWER_KW,
            description=f"Or min_current_a; at most max_power_kw; by default the lesser of max_power_kw and "
            f"{MIN_CURRENT_A:g} A on each of its phases ({DEFAULT_MIN_POWER_KW:g} kW on three).",
        ),
    ] = DEFAULT_MIN_POWER_KW
    priority: Annotated[int, Meta(ge=PRIORITIES[0], le=PRIORITIES[-1])] = 0
    # Queue at the substation where it starts soonest (202) rather than be refused (503) when all are full.
    wait: Annotated[
        bool, Meta(description="When no substation can start it now: queue (202) instead of a refusal (503).")
    ] = False
    phases: Annotated[
        Literal[1, 3],
        Meta(description="The phases the car charges on: a 1-phase car draws all its current on one grid phase."),
    ] = DEFAULT_PHASES
    max_current_a: Annotated[
        Annotated[float, Meta(ge=MIN_CURRENT_A, le=MAX_CURRENT_A)] | None,
        Meta(description="Per phase, instead of max_power_kw: taken as that power at the nominal voltage."),
    ] = None
    min_current_a: Annotated[
        Annotated[float, Meta(ge=MIN_CURRENT_A, le=MAX_CURRENT_A)] | None,
        Meta(description=f"Per phase, instead of min_power_kw; at least {MIN_CURRENT_A:g} A (IEC 61851)."),
    ] = None
    departure_time: Annotated[
        Annotated[datetime, Meta(tz=True)] | None,
        Meta(
            description="When the driver leaves, wanting energy_kwh by then (ISO 8601 with its offset, wall "
            "time). A substation that plans (ALLOCATION=planned) serves the cars leaving first first, and says "
            "whether it can promise the energy.",
        ),
    ] = None

    def to_json(self) -> dict:
        body = msgspec.structs.asdict(self)
        for field in CURRENT_FIELDS:
            if body.get(field) is None:
                body.pop(field, None)  # once parsed, the powers say it: a current is not said twice
        if self.departure_time is None:
            body.pop("departure_time", None)
        else:
            body["departure_time"] = self.departure_time.isoformat()
        return body

    @property
    def departure_at(self) -> float | None:
        """The departure in wall seconds (None: none given)."""
        return None if self.departure_time is None else self.departure_time.timestamp()


CURRENT_FIELDS = ("max_current_a", "min_current_a")


class StartRequest(ChargeRequest, frozen=True, forbid_unknown_fields=True):
    """What a client asks the gateway for: a ChargeRequest, at a charger of its choice if it names one."""

    charger_id: Annotated[
        Annotated[str, Meta(pattern=CHARGER_ID_PATTERN.pattern)] | None,
        Meta(
            description="Start this OCPP charger remotely (RemoteStartTransaction / RequestStartTransaction): "
            "the session is at the charger's substation, under the charger's transaction."
        ),
    ] = None

    def to_json(self) -> dict:
        body = super().to_json()
        if body.get("charger_id") is None:
            body.pop("charger_id", None)  # a request for any substation says nothing of chargers
        return body

    def without_charger(self) -> ChargeRequest:
        fields = msgspec.structs.asdict(self)
        fields.pop("charger_id")
        return ChargeRequest(**fields)


class Admission(StartRequest, frozen=True, forbid_unknown_fields=True):
    """A ChargeRequest, and the session id the balancer chose (the same id again: the same session); from the
    OCPP service also the charger the car is plugged into, its transaction, and the charger's default power."""

    session_id: Annotated[str, Meta(pattern=SESSION_ID_PATTERN.pattern)] | None = None
    transaction_id: Annotated[
        Annotated[str, Meta(pattern=TRANSACTION_ID_PATTERN.pattern)] | None, Meta(description="With charger_id.")
    ] = None
    failsafe_kw: Annotated[
        float, Meta(ge=0, le=MAX_POWER_KW, description="With charger_id: what it draws on its own (its default).")
    ] = 0.0
    grid_phase: Annotated[
        GridPhase | None,
        Meta(description="With charger_id and phases 1: the grid phase the charger's L1 is wired to."),
    ] = None
    circuit: Annotated[
        Annotated[str, Meta(pattern=CIRCUIT_PATTERN.pattern)] | None,
        Meta(description="With charger_id: the substation's circuit the charger hangs on (one of its CIRCUITS)."),
    ] = None
    phase_switching: Annotated[
        bool, Meta(description="With charger_id: the charger can switch a 3-phase car to one phase and back.")
    ] = False


# --- checking a request field by field, from its declaration --------------------------------------------
Check = Callable[[Any], tuple[Any, str | None]]  # the value to keep, or why it is wrong


def _number_check(minimum: float | None, maximum: float) -> Check:
    """Every quantity here is positive: not a number, not finite, not above 0, too big, too small."""

    def check(value: Any) -> tuple[Any, str | None]:
        # bool is an int in Python; `true` is never a quantity of energy.
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None, "must be a number"
        try:
            value = float(value)
        except OverflowError:  # an integer of hundreds of digits: JSON allows it, no quantity here is one
            return None, f"must be at most {maximum:g}"
        if not math.isfinite(value):
            return None, "must be finite"
        if value <= 0:
            return None, "must be greater than 0"
        if value > maximum:
            return None, f"must be at most {maximum:g}"
        if minimum is not None and value < minimum:
            return None, f"must be at least {minimum:g}"
        return value, None

    return check


def _integer_check(low: int, high: int) -> Check:
    def check(value: Any) -> tuple[Any, str | None]:
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # JSON has numbers, not integers: 3.0 is 3
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            return None, f"must be an integer from {low} to {high}"
        return value, None

    return check


def _choice_check(choices: tuple[Any, ...]) -> Check:
    def check(value: Any) -> tuple[Any, str | None]:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or value not in choices:
            return None, f"must be {' or '.join(str(choice) for choice in choices)}"
        return value, None

    return check


def _flag_check(value: Any) -> tuple[Any, str | None]:
    return (value, None) if isinstance(value, bool) else (None, "must be true or false")


def _text_check(pattern: str, message: str) -> Check:
    import re

    compiled = re.compile(pattern)

    def check(value: Any) -> tuple[Any, str | None]:
        if not isinstance(value, str) or not compiled.fullmatch(value):
            return None, message
        return value, None

    return check


def _moment_check(value: Any) -> tuple[Any, str | None]:
    """An ISO 8601 date and time with its offset from UTC (a moment, not a wall clock's reading somewhere)."""
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        return None, "must be an ISO 8601 date and time with its offset, such as 2026-12-08T07:00:00+01:00"
    return moment, None


T = TypeVar("T")


def _declared(struct: type[Struct], field: str, what: str, value: T | None) -> T:
    """A limit the checks need the field's declaration to give (they have no default for it)."""
    if value is None:
        raise TypeError(f"{struct.__name__}.{field} declares no {what}, and its check needs one")
    return value


def _checks_of(struct: type[Struct]) -> dict[str, Check]:
    """Each field's check, from its type and limits as declared."""
    checks: dict[str, Check] = {}
    for field in msgspec.inspect.type_info(struct).fields:  # type: ignore[attr-defined]
        kind = field.type
        extra = {}
        if isinstance(kind, msgspec.inspect.Metadata):
            extra, kind = kind.extra or {}, kind.type
        if isinstance(kind, msgspec.inspect.UnionType):  # X | None: null is the default, checked as absent
            (kind,) = (member for member in kind.types if not isinstance(member, msgspec.inspect.NoneType))
        if isinstance(kind, msgspec.inspect.LiteralType):
            checks[field.name] = _choice_check(kind.values)
        elif isinstance(kind, msgspec.inspect.FloatType):
            checks[field.name] = _number_check(kind.ge, _declared(struct, field.name, "maximum (le)", kind.le))
        elif isinstance(kind, msgspec.inspect.IntType):
            low = _declared(struct, field.name, "minimum (ge)", kind.ge)
            checks[field.name] = _integer_check(low, _declared(struct, field.name, "maximum (le)", kind.le))
        elif isinstance(kind, msgspec.inspect.BoolType):
            checks[field.name] = _flag_check
        elif isinstance(kind, msgspec.inspect.DateTimeType):
            checks[field.name] = _moment_check
        elif isinstance(kind, msgspec.inspect.StrType):
            checks[field.name] = _text_check(_declared(struct, field.name, "pattern", kind.pattern), extra["message"])
    return checks


CHECKS = _checks_of(ChargeRequest)
CHARGE_REQUEST_FIELDS = frozenset(CHECKS)


FIELD_ORDER = {field: index for index, field in enumerate(CHECKS)}
NULLABLE_FIELDS = frozenset({"vehicle_id", "departure_time", *CURRENT_FIELDS})
MAXIMUM_FIELDS = frozenset({"max_power_kw", "max_current_a", "phases"})


def parse_charge_request(
    body: object, *, extra_fields: frozenset[str] = frozenset(), voltage_v: float = NOMINAL_VOLTAGE_V
) -> ChargeRequest:
    """A decoded JSON body (None for a body-less POST) as a request with defaults filled in; InvalidRequest
    naming every field that is wrong (unknown ones first, then in the order they are declared).
    `extra_fields` are fields a caller reads itself (the admission's session_id): not unknown here.

    Currents become powers at `voltage_v` on the car's phases, so that the request goes on in kW alone."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise InvalidRequest([{"field": "(body)", "message": "must be a JSON object"}])
    values: dict[str, Any] = {}
    unknown: list[str] = []
    wrong: list[dict] = []
    for field, value in body.items():  # what was sent only: every request asks this, three times on its way
        check = CHECKS.get(field)
        if check is None:
            if field not in extra_fields:
                unknown.append(field)
        elif value is not None or field not in NULLABLE_FIELDS:  # null: one is made up, or none is given
            kept, error = check(value)
            if error is None:
                values[field] = kept
            else:
                wrong.append({"field": field, "message": error})
    phases = values.get("phases", DEFAULT_PHASES)
    for current, power in (("max_current_a", "max_power_kw"), ("min_current_a", "min_power_kw")):
        amperes = values.pop(current, None)
        if current in body and body[current] is not None and power in body:
            wrong.append({"field": current, "message": f"give {current} or {power}, not both"})
        elif amperes is not None:
            values[power] = kw_of(amperes, phases, voltage_v)
    max_kw = values.get("max_power_kw", kw_of(DEFAULT_MAX_CURRENT_A, phases, voltage_v))
    if "min_power_kw" in values and values["min_power_kw"] > max_kw and not _fields(wrong) & MAXIMUM_FIELDS:
        if body.get("min_current_a") is not None:
            most = f"{current_of(max_kw, phases, voltage_v):.3g} A"
            wrong.append({"field": "min_current_a", "message": f"must be at most the maximum current ({most})"})
        else:
            wrong.append({"field": "min_power_kw", "message": f"must be at most max_power_kw ({max_kw:g})"})
    if unknown or wrong:
        wrong.sort(key=lambda error: FIELD_ORDER[error["field"]])
        raise InvalidRequest([{"field": field, "message": "is not a known field"} for field in sorted(unknown)] + wrong)
    if "vehicle_id" not in values:
        values["vehicle_id"] = f"EV-{secrets.token_hex(4)}"
    values["max_power_kw"] = max_kw
    if "min_power_kw" not in values:
        values["min_power_kw"] = min(max_kw, kw_of(MIN_CURRENT_A, phases, voltage_v))
    return ChargeRequest(**values)


@dataclass(frozen=True)
class SessionChange:
    """What a running session's driver (or car, through OCPP's NotifyEVChargingNeeds) says anew: the energy the
    session is for, in all (as at its request), and when the driver leaves. None of `energy_kwh`: unchanged;
    `departure_time` is changed only when `departs` (to None: no departure any more)."""

    energy_kwh: float | None = None
    departs: bool = False
    departure_time: datetime | None = None

    @property
    def departure_at(self) -> float | None:
        return None if self.departure_time is None else self.departure_time.timestamp()

    def to_json(self) -> dict:
        body: dict[str, Any] = {}
        if self.energy_kwh is not None:
            body["energy_kwh"] = self.energy_kwh
        if self.departs:
            body["departure_time"] = None if self.departure_time is None else self.departure_time.isoformat()
        return body


SESSION_CHANGE_FIELDS = ("energy_kwh", "departure_time")


def parse_session_change(body: object) -> SessionChange:
    """A PATCH of a session (JSON merge patch: a field absent is unchanged, `departure_time` null clears it);
    InvalidRequest naming every field that is wrong, checked as a request's are."""
    if not isinstance(body, dict):
        raise InvalidRequest([{"field": "(body)", "message": "must be a JSON object"}])
    wrong = [{"field": field, "message": "is not a known field"} for field in sorted(body) if field not in
             SESSION_CHANGE_FIELDS]  # fmt: skip
    values: dict[str, Any] = {}
    for field in SESSION_CHANGE_FIELDS:
        if field not in body or (field == "departure_time" and body[field] is None):
            continue
        kept, error = CHECKS[field](body[field])
        if error is None:
            values[field] = kept
        else:
            wrong.append({"field": field, "message": error})
    if not wrong and not body:
        wrong.append({"field": "(body)", "message": "must change energy_kwh or departure_time"})
    if wrong:
        raise InvalidRequest(wrong)
    return SessionChange(values.get("energy_kwh"), "departure_time" in body, values.get("departure_time"))


def _fields(errors: list[dict]) -> set[str]:
    return {error["field"] for error in errors}


def admission_body(request: ChargeRequest, session_id: str) -> dict:
    return {**request.to_json(), "session_id": session_id}


ADMISSION_FIELDS = frozenset(
    {"session_id", "charger_id", "transaction_id", "failsafe_kw", "grid_phase", "circuit", "phase_switching"}
)
_CHARGER_ID_CHECK = _text_check(CHARGER_ID_PATTERN.pattern, "must be 1-48 letters, digits and . _ : - (not first)")
_TRANSACTION_ID_CHECK = _text_check(TRANSACTION_ID_PATTERN.pattern, "must be 1-36 letters, digits and . _ : -")
_FAILSAFE_CHECK = _number_check(None, MAX_POWER_KW)
_GRID_PHASE_CHECK = _choice_check(tuple(phase.value for phase in GridPhase))
_CIRCUIT_CHECK = _text_check(CIRCUIT_PATTERN.pattern, "must be 1-48 letters, digits and . _ : - (not first)")


def parse_start_request(body: object, *, voltage_v: float = NOMINAL_VOLTAGE_V) -> StartRequest:
    """A client's request (parse_charge_request), and the charger it names, if any."""
    request_errors: list[dict] = []
    try:
        request = parse_charge_request(body, extra_fields=frozenset({"charger_id"}), voltage_v=voltage_v)
    except InvalidRequest as error:
        request_errors = error.errors
    charger_id = body.get("charger_id") if isinstance(body, dict) else None
    if charger_id is not None:
        charger_id, wrong = _CHARGER_ID_CHECK(charger_id)
        if wrong is not None:
            request_errors.append({"field": "charger_id", "message": wrong})
    if request_errors:
        raise InvalidRequest(request_errors)
    return StartRequest(**msgspec.structs.asdict(request), charger_id=charger_id)


def parse_admission(body: object, *, voltage_v: float = NOMINAL_VOLTAGE_V) -> tuple[ChargeRequest, str | None]:
    """The request and the session id the balancer chose for it, if it chose one."""
    request, session_id, _ = parse_charger_admission(body, voltage_v=voltage_v)
    return request, session_id


def parse_charger_admission(
    body: object, *, voltage_v: float = NOMINAL_VOLTAGE_V
) -> tuple[ChargeRequest, str | None, ChargerLink | None]:
    """The request, the session id chosen for it if any, and the charger the car is plugged into if any."""
    fields = body if isinstance(body, dict) else {}
    session_id = fields.get("session_id")
    request_errors: list[dict] = []
    try:
        request = parse_charge_request(body, extra_fields=ADMISSION_FIELDS, voltage_v=voltage_v)
    except InvalidRequest as error:
        request_errors = error.errors
    if session_id is not None and not is_session_id(session_id):  # null: none chosen, as the schema allows
        request_errors.append({"field": "session_id", "message": "must look like <substation>.<token>"})
    link_values: dict[str, Any] = {}
    for field, check in (
        ("charger_id", _CHARGER_ID_CHECK),
        ("transaction_id", _TRANSACTION_ID_CHECK),
        ("failsafe_kw", _FAILSAFE_CHECK),
        ("grid_phase", _GRID_PHASE_CHECK),
        ("circuit", _CIRCUIT_CHECK),
        ("phase_switching", _flag_check),
    ):
        if fields.get(field) is not None:
            kept, wrong = check(fields[field]) if fields[field] != 0 else (0.0, None)
            if wrong is None:
                link_values[field] = kept
            else:
                request_errors.append({"field": field, "message": wrong})
    if request_errors:
        raise InvalidRequest(request_errors)
    if "grid_phase" in link_values:
        link_values["grid_phase"] = GridPhase(link_values["grid_phase"])
    if "phase_switching" in link_values:
        link_values["phase_switching"] = link_values["phase_switching"] is True
    link = ChargerLink(**link_values) if "charger_id" in link_values else None
    return request, session_id, link
