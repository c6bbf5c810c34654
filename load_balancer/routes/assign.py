"""`POST /assign_substation`: place a session on the best substation that takes it."""

from __future__ import annotations

import math
import secrets

from flask import Blueprint, request

from grid_common import deadline
from grid_common.problems import Problem
from grid_common.protocol import (
    SESSION_TOKEN,
    InvalidRequest,
    StartRequest,
    is_session_token,
    parse_start_request,
)
from grid_common.responses import json_response
from grid_common.upstream import UpstreamError, UpstreamRefused
from grid_common.web import invalid_request_problem, read_json_body, refuse_if_late, relay
from load_balancer import metrics
from load_balancer.assignment import AdmissionUnknown, NotPlaced, SessionExists
from load_balancer.routes import context

blueprint = Blueprint("assign", __name__)


@blueprint.post("/assign_substation")
def assign_substation():
    try:
        charge = parse_start_request(read_json_body(optional=True), voltage_v=context().config.nominal_voltage_v)
    except InvalidRequest as error:
        raise invalid_request_problem(error) from None
    token = request.headers.get(SESSION_TOKEN)
    if token is not None and not is_session_token(token):
        raise Problem(400, "Bad Request", f"{SESSION_TOKEN} must be 8 to 64 letters and digits.")
    caller_deadline = refuse_if_late("placed")
    if charge.charger_id is not None:
        return start_at_charger(charge, charge.charger_id, token, caller_deadline)
    within_s = None if caller_deadline is None else deadline.seconds_left(caller_deadline, math.inf)
    with metrics.ASSIGN_SECONDS.time():
        try:
            placed = context().assigner.assign(charge, within_s=within_s, token=token)
        except SessionExists as exists:
            raise Problem(
                409,
                "Conflict",
                f"Session {exists.session_id} exists under this {SESSION_TOKEN}, made for another request: "
                "a token names one session.",
                headers={"Location": f"/sessions/{exists.session_id}"},
                session_id=exists.session_id,
            ) from None
        except AdmissionUnknown as unknown:
            raise Problem(
                504,
                "Outcome unknown",
                f"{unknown.substation} did not answer whether it admitted the session, nor could it say since: it "
                f"may hold it as {unknown.session_id}. Nothing was placed elsewhere; GET /sessions/"
                f"{unknown.session_id} tells once {unknown.substation} answers.",
                session_id=unknown.session_id,
                substation=unknown.substation,
                tried=unknown.attempts,
            ) from None
        except NotPlaced as refusal:
            largest = context().grid_view.largest_charger_kw()
            if largest is not None and charge.min_power_kw > largest:
                message = f"is more than any charger here gives ({largest:g} kW)"
                raise Problem(
                    422,
                    "Unprocessable Content",
                    f"min_power_kw: {message}.",
                    errors=[{"field": "min_power_kw", "message": message}],
                ) from None
            if refusal.reason == "no_capacity":
                title, detail = "No capacity", "No substation has room for this session now."
            elif refusal.reason == "clock_skew":
                title, detail = "Clock skew", "Substations refused the session as late by their clocks."
            else:
                title, detail = "No substation available", "No substation is reachable now."
            raise Problem(
                503, title, refusal.detail or detail, retry_after=refusal.retry_after_s, tried=refusal.attempts
            ) from None
    session = placed.session
    return json_response(session, 202 if placed.queued else 201, location=f"/sessions/{session['session_id']}")


def start_at_charger(charge: StartRequest, charger_id: str, token: str | None, caller_deadline: float | None):
    """A session at the charger the client named: the OCPP service asks the charger to start, and the session
    is at the charger's own substation (the car is plugged in there), under `<substation>.<token>`."""
    ctx = context()
    if ctx.ocpp is None:
        raise Problem(404, "Not Found", f"No charger {charger_id} here: this grid has no OCPP service (the "
                      "balancer's OCPP_URL), so no charger can be started.")  # fmt: skip
    token = token or secrets.token_hex(12)
    start_by = caller_deadline or deadline.deadline_in(ctx.config.assign_deadline_s)
    with metrics.ASSIGN_SECONDS.time():
        try:
            response = ctx.ocpp.remote_start(charger_id, charge.without_charger(), token, start_by)
        except UpstreamRefused:
            raise Problem(503, "OCPP service unavailable", "The OCPP service could not be reached: nothing was "
                          "started.", retry_after=1) from None  # fmt: skip
        except UpstreamError:
            raise Problem(
                504,
                "Outcome unknown",
                f"The OCPP service did not answer whether charger {charger_id} started: GET /sessions/by-token/"
                f"{token} tells once it has.",
                token=token,
            ) from None
    if response.status in (201, 202) and isinstance(response.body, dict) and "session_id" in response.body:
        return json_response(response.body, response.status, location=f"/sessions/{response.body['session_id']}")
    return relay(response, "OCPP service")
