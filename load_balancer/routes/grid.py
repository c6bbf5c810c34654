"""What the balancer knows of the grid: the live page, and what it draws from: the view (`GET /substations`)
and, with OCPP_URL, the OCPP service's chargers (`GET /grid/chargers`)."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response

from grid_common.problems import Problem
from grid_common.upstream import UpstreamError
from grid_common.web import relay, upstream_failure_problem
from load_balancer.routes import context

blueprint = Blueprint("grid", __name__)
# One self-contained HTML file that polls /substations from the browser; read once, served from memory.
LIVE_PAGE = (Path(__file__).parent.parent / "static" / "index.html").read_bytes()


@blueprint.get("/")
def live_page():
    return Response(LIVE_PAGE, content_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})


@blueprint.get("/substations")
def substations():
    ctx = context()
    with ctx.grid_view.lock:
        listed = [known.to_json() for known in ctx.grid_view.all()]
    return {"strategy": ctx.strategy.name, "substations": listed}


@blueprint.get("/grid/chargers")
def chargers():
    """The OCPP service's `/chargers`, passed on: the page shows each substation's chargers on its card."""
    ocpp = context().ocpp
    if ocpp is None:
        raise Problem(404, "Not Found", "No chargers here: the balancer has no OCPP_URL.")
    try:
        response = ocpp.chargers()
    except UpstreamError as error:
        raise upstream_failure_problem(error, "OCPP service") from None
    return relay(response, "OCPP service")
