"""Changing the topology at run time: register and remove substations, behind a bearer token."""

from __future__ import annotations

from flask import Blueprint, Response

from grid_common.auth import require_bearer_token
from grid_common.problems import Problem
from grid_common.protocol import InvalidRequest, MalformedReport
from grid_common.upstream import UpstreamError
from grid_common.web import invalid_request_problem, read_json_body
from load_balancer import metrics
from load_balancer.config import MAX_SUBSTATIONS, parse_registration
from load_balancer.routes import context

blueprint = Blueprint("topology", __name__)


@blueprint.before_request
def require_topology_token() -> None:
    require_bearer_token(context().config.topology_token, "TOPOLOGY_TOKEN", "topology", "Changing the topology")


@blueprint.post("/substations")
def register_substation():
    ctx = context()
    try:
        name, url = parse_registration(read_json_body(optional=False), ctx.substation_urls)
    except InvalidRequest as error:
        raise invalid_request_problem(error) from None
    if len(ctx.grid_view.all()) >= MAX_SUBSTATIONS:
        raise Problem(409, "Conflict", f"The balancer knows {MAX_SUBSTATIONS} substations, the most it takes.")
    if name in ctx.grid_view:
        raise Problem(409, "Conflict", f"A substation named {name} is already known.")
    # A substation is what answers as one: whatever else listens at an allowed address is not called again.
    ctx.substations.registered(url)
    problem = answers_as_substation(name, url)
    if problem is not None:
        if not any(known.url == url for known in ctx.grid_view.all()):
            ctx.substations.registered(url, False)
        raise invalid_request_problem(InvalidRequest([{"field": "url", "message": problem}]))
    try:
        added = ctx.grid_view.add(name, url)
    except KeyError:
        raise Problem(409, "Conflict", f"A substation named {name} is already known.") from None
    metrics.initialize([name], ctx.strategy.name)
    ctx.poller.refresh(added)  # its state now, rather than at the next poll
    with ctx.grid_view.lock:
        return added.to_json(), 201, {"Location": f"/substations/{name}"}


def answers_as_substation(name: str, url: str) -> str | None:
    """Why `url` is not substation `name` as far as its answer tells (its load report), or None."""
    ctx = context()
    try:
        report = ctx.substations.load(url, timeout_s=ctx.config.admission_timeout_s)
    except UpstreamError as error:
        return f"does not answer as a substation ({error})"
    except MalformedReport as error:
        return f"does not answer as a substation: its /load is not a load report ({error})"
    if report.name != name:
        return f"the substation there calls itself {report.name}, not {name}"
    return None


@blueprint.delete("/substations/<name>")
def remove_substation(name: str):
    ctx = context()
    try:
        removed = ctx.grid_view.remove(name)
    except KeyError:
        raise Problem(404, "Not Found", f"No substation named {name}.") from None
    if not any(known.url == removed.url for known in ctx.grid_view.all()):
        ctx.substations.registered(removed.url, False)
    metrics.forget(name)
    response = Response(status=204)
    del response.headers["Content-Type"]  # Flask types every response, but a 204 has no body to type
    return response
