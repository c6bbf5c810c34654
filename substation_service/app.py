"""HTTP edge of the substation: thin routes over `grid.Substation`."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from flask import Flask, request
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from grid_common.charge_request import (
    BALANCER_ID,
    BALANCER_ID_PATTERN,
    OTHERS_EV_POWER_CONDITION,
    InvalidRequest,
    is_session_id,
    parse_charge_request,
)
from grid_common.openapi import add_openapi_route
from grid_common.problems import Problem
from grid_common.timefmt import iso_utc
from grid_common.web import add_probe_routes, invalid_request_problem, new_app, read_json_body
from substation_service.config import SubstationConfig
from substation_service.grid import Admitted, Outdated, Session, SessionConflict, Substation
from substation_service.journal import open_journal
from substation_service.metrics import build_registry
from substation_service.openapi import SPEC
from substation_service.profile import BackgroundDemand, DailyProfile, SimulatedClock

# When the grid is full because of background demand alone, no session end tells us when to retry.
DEFAULT_RETRY_AFTER_S = 5.0


def asking_balancer() -> str | None:
    balancer = request.headers.get(BALANCER_ID)
    if balancer is not None and not BALANCER_ID_PATTERN.match(balancer):
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


def session_json(session: Session, substation: str, now: float) -> dict:
    return {
        "session_id": session.session_id,
        "substation": substation,
        "vehicle_id": session.vehicle_id,
        "state": session.state,
        "power_kw": session.power_kw,
        "energy_kwh": session.energy_kwh,
        "energy_delivered_kwh": round(session.energy_delivered_kwh(now), 6),
        "started_at": iso_utc(session.started_at),
        "estimated_end": iso_utc(session.ends_at),
        "ended_at": iso_utc(session.ended_at),
    }


def build_substation(config: SubstationConfig, now: float) -> Substation:
    background = BackgroundDemand(
        peak_kw=config.capacity_kw * config.background_peak_fraction,
        profile=DailyProfile(),
        clock=SimulatedClock(config.time_scale, config.background_phase_hours),
    )
    return Substation(
        config.name,
        config.capacity_kw,
        config.charger_max_power_kw,
        config.time_scale,
        background,
        history_limit=config.session_history_limit,
        journal=open_journal(config.session_db),
        now=now,
    )


def create_app(config: SubstationConfig, clock: Callable[[], float] = time.time) -> Flask:
    app = new_app(__name__)
    substation = build_substation(config, clock())
    app.extensions["substation"] = substation

    def session_id_from_path(session_id: str) -> str:
        if not is_session_id(session_id):
            raise Problem(400, "Bad Request", "Malformed session id: expected <substation>.<token>.")
        return session_id

    @app.get("/")
    def index():
        return {"service": "substation", "name": config.name, "load": substation.report(clock()).to_json()}

    @app.post("/begin_charging")
    def begin_charging():
        body = read_json_body(optional=True)
        session_id = None
        if isinstance(body, dict) and "session_id" in body:
            body = dict(body)
            session_id = body.pop("session_id")
            if not isinstance(session_id, str) or not is_session_id(session_id):
                raise Problem(422, "Unprocessable Content", "session_id must look like <substation>.<token>.")
        try:
            charge = parse_charge_request(body)
        except InvalidRequest as error:
            raise invalid_request_problem(error) from None
        balancer = asking_balancer()
        allowed_kw = others_ev_power_condition(balancer)
        now = clock()
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
            body = {"session": session_json(outcome.session, config.name, now), "load": outcome.report.to_json()}
            return body, status, {"Location": f"/sessions/{outcome.session.session_id}"}
        if isinstance(outcome, Outdated):
            raise Problem(
                412,
                "Precondition Failed",
                f"Other balancers' sessions at {config.name} draw {outcome.report.others_ev_power_kw:g} kW, more "
                f"than the {outcome.allowed_kw:g} kW of {OTHERS_EV_POWER_CONDITION}: choose again with this load.",
                load=outcome.report.to_json(),
            )
        raise Problem(
            409,
            "Substation full",
            f"{config.name} cannot take {outcome.needed_kw:g} kW more without exceeding its "
            f"{config.capacity_kw:g} kW capacity.",
            retry_after=outcome.retry_after_s or DEFAULT_RETRY_AFTER_S,
            load=outcome.report.to_json(),
        )

    @app.get("/load")
    def load():
        return substation.report(clock(), asking_balancer()).to_json()

    @app.get("/sessions/<session_id>")
    def get_session(session_id: str):
        now = clock()
        session = substation.session(session_id_from_path(session_id), now)
        if session is None:
            raise Problem(404, "Not Found", f"No session {session_id} at {config.name}.")
        return session_json(session, config.name, now)

    @app.post("/sessions/<session_id>/stop")
    def stop_session(session_id: str):
        now = clock()
        session = substation.stop(session_id_from_path(session_id), now)
        if session is None:
            raise Problem(404, "Not Found", f"No session {session_id} at {config.name}.")
        return session_json(session, config.name, now)

    add_probe_routes(app, lambda: (True, {"substation": config.name}), build_registry(substation, clock))
    add_openapi_route(app, SPEC)
    return app


def create_hosting_app(config: SubstationConfig, clock: Callable[[], float] = time.time):
    """One process simulating several substations, each a whole substation app under `/<name>`.

    Each keeps its own state, lock, admission and metrics, exactly as in a process of its own; only the
    process is shared. The root answers `/healthz` and `/readyz` for the process and lists what it hosts.
    """
    hosted = {sub.name: create_app(sub, clock) for sub in config.hosted()}
    root = new_app(__name__)

    @root.get("/")
    def index():
        return {"service": "substation host", "substations": [f"/{name}" for name in hosted]}

    add_probe_routes(root, lambda: (True, {"substations": len(hosted)}))
    return DispatcherMiddleware(root, {f"/{name}": app for name, app in hosted.items()})
