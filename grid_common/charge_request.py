"""The charging request an EV sends, validated the same way by the gateway and the balancer."""

from __future__ import annotations

import math
import re
import secrets
from dataclasses import dataclass

VEHICLE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
DEFAULT_ENERGY_KWH = 11.0
DEFAULT_MAX_POWER_KW = 11.0
# Upper bounds are physical: no road vehicle battery above 250 kWh, no charger above 1 MW.
MAX_ENERGY_KWH = 250.0
MAX_POWER_KW = 1000.0
# No charger delivers less than about 1.4 kW (6 A at 230 V): below 1 kW a "session" would last for ages.
MIN_POWER_KW = 1.0
# Which balancer process asks a substation: its load reports then say what *other* balancers' sessions
# draw there, and its admissions may be conditional on that: at most the kW under which its choice of the
# substation stands. A substation where others' sessions draw more answers 412 with its load; the balancer
# chooses again. So replicated balancers stay as balanced as one, whatever their polling.
BALANCER_ID = "Balancer-Id"
OTHERS_EV_POWER_CONDITION = "If-Others-EV-Power-At-Most"
BALANCER_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass(frozen=True)
class ChargeRequest:
    vehicle_id: str
    energy_kwh: float
    max_power_kw: float

    def to_json(self) -> dict:
        return {"vehicle_id": self.vehicle_id, "energy_kwh": self.energy_kwh, "max_power_kw": self.max_power_kw}


class InvalidRequest(ValueError):
    """The request body is JSON but says something impossible; `errors` names each field."""

    def __init__(self, errors: list[dict]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))


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


def parse_charge_request(body: object) -> ChargeRequest:
    """Turn a decoded JSON body (or None for a body-less POST) into a request with defaults filled."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise InvalidRequest([{"field": "(body)", "message": "must be a JSON object"}])
    errors: list[dict] = []
    unknown = sorted(set(body) - {"vehicle_id", "energy_kwh", "max_power_kw"})
    for field in unknown:
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


SESSION_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,63}\.[A-Za-z0-9]{8,64}$")


def is_session_id(value: str) -> bool:
    """Session ids are `<substation name>.<token>`, so any balancer can route them without shared state."""
    return bool(SESSION_ID_PATTERN.fullmatch(value))


def substation_of(session_id: str) -> str:
    return session_id.split(".", 1)[0]
