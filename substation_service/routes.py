"""The substation's HTTP routes: read the request, ask the domain, answer in the protocol's shapes."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from flask import Blueprint, current_app, request

from grid_common.problems import Problem
from grid_common.protocol import (
    BALANCER_ID,
    OTHERS_EV_POWER_CONDITION,
    InvalidRequest,
    admission_answer,
    is_balancer_id,
    is_session_id,
    parse_admission,
)
from grid_common.web import invalid_request_problem, read_json_body
from substation_service.substation import Admitted, Outdated, Session, SessionConflict, Substation

# When the grid is full because of background demand alone, no session end tells us when to retry.
DEFAULT_RETRY_AFTER_S = 5.0

blueprint = Blueprint("substation", __name__)


@dataclass(frozen=True)
class Context:
    """What the routes work with; create_app puts it in `app.extensions`."""

    substation: Substation
    clock: Callable[[], float]  # wall seconds


def context() -> Context:
    return current_app.extensions["substation"]


def asking_balancer() -> str | None:
    balancer = request.headers.get(BALANCER_ID)
    if balancer is not None and not is_balancer_id(balancer):
        raise Problem(400, "Bad Request", f"{BALANCER_ID} must be 1 to 64 letters, digits, '.', '_' or '-'.")
    return balancer


def others_ev_power_condition(balancer: str | None) -> float | None:
    raw = request.headers.get(OTHERS_EV_POWER_CONDITION)
    if raw is None:
        return None
    if balancer is None:
        raise Problem(400, "Bad Request", f"{OTHERS_EV_POWER_CONDITION} needs {BALANCER_ID}: others than whom?")
    try:
        allowed_kw = float(raw)
    except ValueError:
        allowed_kw = math.nan
    if not (math.isfinite(allowed_kw) and allowed_kw >= 0):
        raise Problem(400, "Bad Request", f"{OTHERS_EV_POWER_CONDITION} must be a number of kW, 0 or more.")
    return allowed_kw


def session_id_from_path(session_id: str) -> str:
    if not is_session_id(session_id):
        raise Problem(400, "Bad Request", "Malformed session id: expected <substation>.<token>.")
    return session_id


@blueprint.get("/")
def index():
    ctx = context()
    return {"service": "substation", "name": ctx.substation.name, "load": ctx.substation.report(ctx.clock()).to_json()}


@blueprint.post("/begin_charging")
def begin_charging():
    ctx = context()
    substation = ctx.substation
    try:
        charge, session_id = parse_admission(read_json_body(optional=True))
    except InvalidRequest as error:
        raise invalid_request_problem(error) from None
    balancer = asking_balancer()
    allowed_kw = others_ev_power_condition(balancer)
    now = ctx.clock()
    try:
        outcome = substation.admit(
            charge.vehicle_id,
            charge.energy_kwh,
            charge.max_power_kw,
            now,
            session_id,
            placed_by=balancer,
            others_ev_power_at_most=allowed_kw,
        )
    except SessionConflict:
        raise Problem(409, "Conflict", f"Session {session_id} exists with a different request.") from None
    if isinstance(outcome, Admitted):
        status = 200 if outcome.replayed else 201
        body = admission_answer(outcome.session.report(substation.name, now), outcome.report)
        return body, status, {"Location": f"/sessions/{outcome.session.session_id}"}
    if isinstance(outcome, Outdated):
        raise Problem(
            412,
            "Precondition Failed",
            f"Other balancers' sessions at {substation.name} draw {outcome.report.others_ev_power_kw:g} kW, more "
            f"than the {outcome.allowed_kw:g} kW of {OTHERS_EV_POWER_CONDITION}: choose again with this load.",
            load=outcome.report.to_json(),
        )
    raise Problem(
        409,
        "Substation full",
        f"{substation.name} cannot take {outcome.needed_kw:g} kW more without exceeding its "
        f"{substation.capacity_kw:g} kW capacity.",
        retry_after=outcome.retry_after_s or DEFAULT_RETRY_AFTER_S,
        load=outcome.report.to_json(),
    )


@blueprint.get("/load")
def load():
    ctx = context()
    return ctx.substation.report(ctx.clock(), asking_balancer()).to_json()


def session_answer(session_id: str, find: Callable[[Substation, str, float], Session | None]):
    ctx = context()
    now = ctx.clock()
    session = find(ctx.substation, session_id_from_path(session_id), now)
    if session is None:
        raise Problem(404, "Not Found", f"No session {session_id} at {ctx.substation.name}.")
    return session.report(ctx.substation.name, now).to_json()


@blueprint.get("/sessions/<session_id>")
def get_session(session_id: str):
    return session_answer(session_id, Substation.session)


@blueprint.post("/sessions/<session_id>/stop")
def stop_session(session_id: str):
    return session_answer(session_id, Substation.stop)
