"""Changing the topology at run time: register and remove substations, behind a bearer token."""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, request

from grid_common.problems import Problem
from grid_common.protocol import InvalidRequest
from grid_common.web import invalid_request_problem, read_json_body
from load_balancer import metrics
from load_balancer.config import MAX_SUBSTATIONS, parse_registration
from load_balancer.routes import context

blueprint = Blueprint("topology", __name__)


@blueprint.before_request
def require_topology_token() -> None:
    token_expected = context().config.topology_token
    if not token_expected:
        raise Problem(403, "Forbidden", "Changing the topology is off: the balancer has no TOPOLOGY_TOKEN.")
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Problem(
            401,
            "Unauthorized",
            "Send Authorization: Bearer <TOPOLOGY_TOKEN>.",
            headers={"WWW-Authenticate": 'Bearer realm="topology"'},
        )
    if not hmac.compare_digest(token.encode(), token_expected.encode()):
        raise Problem(403, "Forbidden", "The bearer token is not the balancer's TOPOLOGY_TOKEN.")


@blueprint.post("/substations")
def register_substation():
    ctx = context()
    try:
        name, url = parse_registration(read_json_body(optional=False), ctx.substation_urls)
    except InvalidRequest as error:
        raise invalid_request_problem(error) from None
    if len(ctx.grid_view.all()) >= MAX_SUBSTATIONS:
        raise Problem(409, "Conflict", f"The balancer knows {MAX_SUBSTATIONS} substations, the most it takes.")
    try:
        added = ctx.grid_view.add(name, url)
    except KeyError:
        raise Problem(409, "Conflict", f"A substation named {name} is already known.") from None
    metrics.initialize([name], ctx.strategy.name)
    ctx.poller.refresh(added)  # its state now, rather than at the next poll
    with ctx.grid_view.lock:
        return added.to_json(), 201, {"Location": f"/substations/{name}"}


@blueprint.delete("/substations/<name>")
def remove_substation(name: str):
    ctx = context()
    try:
        ctx.grid_view.remove(name)
    except KeyError:
        raise Problem(404, "Not Found", f"No substation named {name}.") from None
    metrics.forget(name)
    removed = Response(status=204)
    del removed.headers["Content-Type"]  # Flask types every response, but a 204 has no body to type
    return removed
