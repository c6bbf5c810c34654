"""The gateway's HTTP routes: validate, start or read a session through the balancer, answer in its words."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from flask import Blueprint, current_app, g, request

from charge_request_service.balancer_client import BalancerClient
from charge_request_service.starting import NotStarted, OutcomeUnknown, SessionStarter, Started
from grid_common.problems import Problem
from grid_common.protocol import (
    IDEMPOTENCY_KEY,
    IDEMPOTENT_REPLAYED,
    NOMINAL_VOLTAGE_V,
    InvalidRequest,
    is_session_id,
    parse_session_change,
    parse_start_request,
)
from grid_common.responses import json_response
from grid_common.upstream import UpstreamError
from grid_common.web import invalid_request_problem, read_json_body, relay, request_body, upstream_failure_problem

blueprint = Blueprint("gateway", __name__)


@dataclass(frozen=True)
class Context:
    balancer: BalancerClient
    starter: SessionStarter
    # Client name -> bearer token (CLIENT_TOKENS); empty: the gateway serves anyone, as one client.
    clients: dict[str, str] = field(default_factory=dict)
    voltage_v: float = NOMINAL_VOLTAGE_V  # currents in a request become powers at it


def context() -> Context:
    return current_app.extensions["gateway"]


@blueprint.before_request
def authenticate_client() -> None:
    """With CLIENT_TOKENS, every route of the API is for its clients only, each known by its bearer token:
    Idempotency-Keys are then each client's own."""
    clients = context().clients
    g.client = None
    if not clients:
        return
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    challenge = 'Bearer realm="gateway"'
    if scheme.lower() != "bearer" or not token:
        raise Problem(401, "Unauthorized", "Send Authorization: Bearer <your client token>.",
                      headers={"WWW-Authenticate": challenge})  # fmt: skip
    # Every token is compared, so that the time taken tells nothing of which one came close.
    matches = [name for name, secret in clients.items() if hmac.compare_digest(token.encode(), secret.encode())]
    if not matches:
        raise Problem(
            401, "Unauthorized", "The bearer token is not a client token of this gateway.",
            headers={"WWW-Authenticate": f'{challenge}, error="invalid_token"'},
        )  # fmt: skip
    g.client = matches[0]


def checked_session_id(session_id: str) -> str:
    if not is_session_id(session_id):
        raise Problem(400, "Bad Request", "Malformed session id: expected <substation>.<token>.")
    return session_id


def from_balancer(call, unknown: str = ""):
    """The balancer's answer, or the problem of its absence: 504 when it was too slow, 502 otherwise;
    `unknown`, what the client should know of an outcome that is not known."""
    try:
        return call()
    except OutcomeUnknown as outcome:
        if outcome.response is not None:
            return NotStarted(outcome.response)
        assert outcome.cause is not None
        problem = upstream_failure_problem(outcome.cause, "load balancer")
        problem.detail = f"{problem.detail} {unknown}".strip()
        raise problem from None
    except UpstreamError as error:
        raise upstream_failure_problem(error, "load balancer") from None


UNKNOWN_WITHOUT_KEY = (
    "Whether it started a session is not known: send the request with an Idempotency-Key, and a retry with the "
    "same key gets that session or starts one, never two."
)
UNKNOWN_WITH_KEY = "Whether it started a session is not known: retry with the same Idempotency-Key and body."


@blueprint.post("/initiate_energy_transfer")
def initiate_energy_transfer():
    try:
        charge = parse_start_request(read_json_body(optional=True), voltage_v=context().voltage_v)
    except InvalidRequest as error:
        raise invalid_request_problem(error) from None
    starter = context().starter
    key = request.headers.get(IDEMPOTENCY_KEY)
    outcome = from_balancer(
        lambda: starter.start(charge) if key is None else starter.start_once(charge, key, request_body(), g.client),
        UNKNOWN_WITHOUT_KEY if key is None else UNKNOWN_WITH_KEY,
    )
    if not isinstance(outcome, Started):
        return relay(outcome.response, "load balancer")
    location = f"/sessions/{outcome.session['session_id']}"
    headers = {IDEMPOTENT_REPLAYED: "true"} if outcome.replayed else None
    return json_response(outcome.session, outcome.status, location=location, headers=headers)


@blueprint.get("/sessions/<session_id>")
def get_session(session_id: str):
    balancer = context().balancer
    return relay(from_balancer(lambda: balancer.session(checked_session_id(session_id))), "load balancer")


@blueprint.patch("/sessions/<session_id>")
def amend_session(session_id: str):
    """A driver's new energy or departure (a JSON merge patch), checked here and made by the session's
    substation."""
    try:
        change = parse_session_change(read_json_body(optional=False)).to_json()
    except InvalidRequest as error:
        raise invalid_request_problem(error) from None
    balancer = context().balancer
    return relay(from_balancer(lambda: balancer.amend_session(checked_session_id(session_id), change)), "load balancer")


@blueprint.post("/sessions/<session_id>/stop")
def stop_session(session_id: str):
    balancer = context().balancer
    return relay(from_balancer(lambda: balancer.stop_session(checked_session_id(session_id))), "load balancer")
