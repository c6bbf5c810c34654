"""What the balancer knows of the grid: the live page, and the view it draws from (`GET /substations`)."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response

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
