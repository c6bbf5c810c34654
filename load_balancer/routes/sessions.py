"""Reading and stopping a session: forwarded to the substation its id names."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, Response

from grid_common.upstream import UpstreamError, UpstreamResponse, UpstreamUnavailable
from grid_common.web import relay, upstream_failure_problem
from load_balancer import metrics
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
        metrics.UPSTREAM_FAILURES.labels(substation.name, "session", error.kind).inc()
        raise upstream_failure_problem(error, f"substation {substation.name}") from None
    if frees_power and response.status == 200:
        # The session's power is free now: let the next decision know without waiting for a poll.
        ctx.poller.refresh(substation)
    return relay(response, f"substation {substation.name}")


@blueprint.get("/sessions/<session_id>")
def get_session(session_id: str):
    return forward(session_id, lambda client, url, timeout: client.session(url, session_id, timeout_s=timeout))


@blueprint.post("/sessions/<session_id>/stop")
def stop_session(session_id: str):
    return forward(
        session_id,
        lambda client, url, timeout: client.stop_session(url, session_id, timeout_s=timeout),
        frees_power=True,
    )
