"""The grid operator's limits, over HTTP, behind GRID_LIMIT_TOKEN: read the schedule, set one, clear it.

    PUT /grid_limit  {"limit_kw": 80, "duration_s": 900}                  a window from now
    PUT /grid_limit  {"periods": [{"start": "2026-12-07T17:00:00Z",
                                   "end": "2026-12-07T19:00:00Z", "limit_kw": 80}, ...]}
    DELETE /grid_limit                                                    back to the rated capacity
    GET /grid_limit                                                       the schedule, and the limit in force

The same under /circuits/<name>/grid_limit for one of the substation's circuits (CIRCUITS). Times are ISO 8601
with a time zone; a new schedule replaces the old one. Every change is logged.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime

from flask import Blueprint, request

from grid_common.auth import require_bearer_token
from grid_common.problems import Problem
from grid_common.protocol import InvalidRequest
from grid_common.responses import json_response
from grid_common.web import invalid_request_problem, read_json_body
from substation_service.grid_limits import MAX_AHEAD_S, InvalidSchedule, LimitPeriod
from substation_service.journal import JournalError
from substation_service.routes import context, journal_problem

log = logging.getLogger(__name__)
blueprint = Blueprint("grid_limit", __name__)


@blueprint.before_request
def require_grid_limit_token() -> None:
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        require_bearer_token(context().grid_limit_token, "GRID_LIMIT_TOKEN", "grid-limit", "Setting grid limits")


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def schedule_answer(circuit: str | None = None) -> dict:
    ctx = context()
    substation, now = ctx.substation, ctx.clock()
    limits = substation.limits if circuit is None else substation.circuit_limits[circuit]
    in_force = limits.in_force(now)
    answer: dict = {"substation": substation.name}
    if circuit is None:
        answer["rated_capacity_kw"] = limits.rated_kw
    else:
        answer["circuit"] = circuit
    return {
        **answer,
        "limit_in_force_kw": None if in_force is None else in_force.limit_kw,
        "periods": [
            {"start": iso(p.start), "end": iso(p.end), "limit_kw": p.limit_kw} for p in limits.periods if p.end > now
        ],
        "changes": limits.changes,
    }


def limited(circuit: str | None) -> str:
    """What a schedule limits, as the log names it."""
    name = context().substation.name
    return name if circuit is None else f"{name}'s circuit {circuit}"


def known_circuit(name: str) -> str:
    substation = context().substation
    if name not in substation.circuit_limits:
        known = ", ".join(substation.circuit_limits) or "none"
        raise Problem(404, "Not Found", f"{name!r} is not one of this substation's circuits ({known}).")
    return name


AN_ISO_TIME = "an ISO 8601 time with a time zone, e.g. 2026-12-07T17:00:00Z"


def moment_of(value: object, field: str) -> float:
    parsed = None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise InvalidRequest([{"field": field, "message": AN_ISO_TIME}])
    return parsed.timestamp()


def number_of(value: object, field: str) -> float:
    try:
        number = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan
    except OverflowError:  # an integer beyond any float
        number = math.nan
    if not math.isfinite(number):
        raise InvalidRequest([{"field": field, "message": "a finite number"}])
    return number


def parse_schedule(body: object, now: float) -> list[LimitPeriod]:
    """A window from now (`limit_kw`, `duration_s`) or `periods`; InvalidRequest naming the fields otherwise."""
    if not isinstance(body, dict):
        raise InvalidRequest([{"field": "body", "message": "an object: {limit_kw, duration_s} or {periods}"}])
    if "periods" in body:
        unknown = set(body) - {"periods"}
        periods = body["periods"]
        if unknown or not isinstance(periods, list):
            raise InvalidRequest([{"field": "periods", "message": "a list of {start, end, limit_kw}, alone"}])
        parsed = []
        for number, period in enumerate(periods):
            field = f"periods[{number}]"
            if not isinstance(period, dict) or set(period) != {"start", "end", "limit_kw"}:
                raise InvalidRequest([{"field": field, "message": "an object of start, end and limit_kw"}])
            parsed.append(LimitPeriod(moment_of(period["start"], f"{field}.start"),
                                      moment_of(period["end"], f"{field}.end"),
                                      number_of(period["limit_kw"], f"{field}.limit_kw")))  # fmt: skip
        return parsed
    if set(body) != {"limit_kw", "duration_s"}:
        raise InvalidRequest([{"field": "body", "message": "{limit_kw, duration_s} (a window from now) or {periods}"}])
    duration = number_of(body["duration_s"], "duration_s")
    if not 0 < duration <= MAX_AHEAD_S:
        raise InvalidRequest([{"field": "duration_s", "message": f"more than 0 and at most {MAX_AHEAD_S:g} s"}])
    return [LimitPeriod(now, now + duration, number_of(body["limit_kw"], "limit_kw"))]


@blueprint.get("/grid_limit")
def get_grid_limit():
    return json_response(schedule_answer())


@blueprint.get("/circuits/<name>/grid_limit")
def get_circuit_grid_limit(name: str):
    return json_response(schedule_answer(known_circuit(name)))


@blueprint.put("/grid_limit")
def put_grid_limit():
    return set_limits(None)


@blueprint.put("/circuits/<name>/grid_limit")
def put_circuit_grid_limit(name: str):
    return set_limits(known_circuit(name))


@blueprint.delete("/circuits/<name>/grid_limit")
def delete_circuit_grid_limit(name: str):
    return clear_limits(known_circuit(name))


def set_limits(circuit: str | None):
    ctx = context()
    now = ctx.clock()
    try:
        periods = parse_schedule(read_json_body(optional=False), now)
        ctx.substation.set_grid_limits(periods, now, circuit)
    except InvalidRequest as error:
        raise invalid_request_problem(error) from None
    except InvalidSchedule as error:
        raise invalid_request_problem(InvalidRequest([{"field": "periods", "message": str(error)}])) from None
    except JournalError:
        raise journal_problem(ctx.substation) from None
    log.info("grid limits of %s set by %s: %s", limited(circuit), request.remote_addr,
             ", ".join(f"{p.limit_kw:g} kW {iso(p.start)}..{iso(p.end)}" for p in periods) or "none")  # fmt: skip
    return json_response(schedule_answer(circuit))


@blueprint.delete("/grid_limit")
def delete_grid_limit():
    return clear_limits(None)


def clear_limits(circuit: str | None):
    ctx = context()
    try:
        ctx.substation.set_grid_limits([], ctx.clock(), circuit)
    except JournalError:
        raise journal_problem(ctx.substation) from None
    log.info("grid limits of %s cleared by %s", limited(circuit), request.remote_addr)
    return json_response(schedule_answer(circuit))
