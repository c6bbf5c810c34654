"""Reading, changing and stopping a session: forwarded to the substation its id names."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from flask import Blueprint, Response

from grid_common import deadline
from grid_common.problems import Problem, clock_skew
from grid_common.protocol import InvalidRequest, is_session_token, parse_session_change, substation_of
from grid_common.upstream import UpstreamError, UpstreamResponse, UpstreamUnavailable
from grid_common.web import invalid_request_problem, read_json_body, relay, upstream_failure_problem
from load_balancer import metrics
from load_balancer.grid_view import KnownSubstation
from load_balancer.routes import context, owner_of
from load_balancer.substation_client import SubstationClient

blueprint = Blueprint("sessions", __name__)


def forward(
    session_id: str, call: Callable[[SubstationClient, str, float], UpstreamResponse], *, frees_power: bool = False
) -> Response:
    """`call(client, substation url, timeout)` on the session's substation; its answer, or why there was none."""
    ctx = context()
    substation = owner_of(session_id)
    try:
        response = call(ctx.substations, substation.url, ctx.config.admission_timeout_s)
    except UpstreamError as error:
        ctx.grid_view.record_failure(substation.name, certain=isinstance(error, UpstreamUnavailable))
        metrics.of_substation(metrics.UPSTREAM_FAILURES, substation.name, "session", error.kind).inc()
        raise upstream_failure_problem(error, f"substation {substation.name}") from None
    if frees_power and response.status == 200:
        # The session's power is free now: let the next decision know without waiting for a poll.
        ctx.poller.refresh(substation)
    return relay(response, f"substation {substation.name}")


@blueprint.get("/sessions/<session_id>")
def get_session(session_id: str):
    return forward(session_id, lambda client, url, timeout: client.session(url, session_id, timeout_s=timeout))


def refuse_if_skewed(response: UpstreamResponse, session_id: str, sent_by: float, what: str) -> UpstreamResponse:
    """A change the substation refused as late though it was sent in time: its clock is ahead (503, not 408)."""
    if response.status == 408 and (ahead := deadline.clock_ahead_s(response.body, sent_by, time.time())):
        raise clock_skew(substation_of(session_id), what, "balancer", ahead, "Nothing was changed.")
    return response


@blueprint.post("/sessions/<session_id>/stop")
def stop_session(session_id: str):
    def stop(client: SubstationClient, url: str, timeout: float) -> UpstreamResponse:
        stop_by = deadline.deadline_in(timeout)
        response = client.stop_session(url, session_id, timeout_s=timeout, deadline=stop_by)
        return refuse_if_skewed(response, session_id, stop_by, "stop")

    return forward(session_id, stop, frees_power=True)


@blueprint.patch("/sessions/<session_id>")
def amend_session(session_id: str):
    """A session's energy or departure said anew: checked here, made by its substation."""
    try:
        change = parse_session_change(read_json_body(optional=False)).to_json()
    except InvalidRequest as error:
        raise invalid_request_problem(error) from None

    def amend(client: SubstationClient, url: str, timeout: float) -> UpstreamResponse:
        amend_by = deadline.deadline_in(timeout)
        response = client.amend_session(url, session_id, change, timeout_s=timeout, deadline=amend_by)
        return refuse_if_skewed(response, session_id, amend_by, "change")

    return forward(session_id, amend, frees_power=True)  # an energy already in ends the session


@blueprint.get("/sessions/by-token/<token>")
def find_by_token(token: str):
    """The session a substation holds under `token` (`<substation>.<token>`): how a gateway finds out what
    an attempt whose answer it never got did. 404 only when every substation said it has none."""
    if not is_session_token(token):
        raise Problem(400, "Bad Request", "A session token is 8 to 64 letters and digits.")
    ctx = context()
    known = ctx.grid_view.all()
    if not known:
        raise Problem(404, "Not Found", "No substation is known here.")

    def ask(substation: KnownSubstation) -> UpstreamResponse | None:
        session_id = f"{substation.name}.{token}"
        try:
            return ctx.substations.session(substation.url, session_id, timeout_s=ctx.config.admission_timeout_s)
        except UpstreamError:
            return None

    with ThreadPoolExecutor(max_workers=min(32, len(known))) as pool:
        answers = list(pool.map(ask, known))
    for substation, answer in zip(known, answers, strict=True):
        if answer is not None and answer.status == 200:
            return relay(answer, f"substation {substation.name}")
    silent = [s.name for s, answer in zip(known, answers, strict=True) if answer is None or answer.status != 404]
    if silent:
        raise Problem(503, "Cannot tell", f"Substations {', '.join(silent)} did not say.", retry_after=1)
    raise Problem(404, "Not Found", f"No substation holds a session under {token}.")
