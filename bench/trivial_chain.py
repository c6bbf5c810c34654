"""The stack's floor: a 3-hop Flask chain shaped like gateway -> balancer -> substations, with no logic.

Same gunicorn configuration and same pooled HTTP client as the suite, so the ratio of the suite's
throughput to this chain's is what the suite's own logic costs.
"""

from __future__ import annotations

import itertools
import os

from flask import Flask, request

from grid_common.upstream import JsonClient


def forwarding_app(next_urls: list[str]) -> Flask:
    """A hop that forwards each request to the next of `next_urls` in turn (a balancer's shape, no logic)."""
    app = Flask(__name__)
    client = JsonClient(connect_timeout=1.0, read_timeout=5.0)
    turn = itertools.cycle(next_urls)

    @app.post("/hop")
    def hop():
        reply = client.call("POST", f"{next(turn)}/hop", request.get_json(silent=True) or {})
        return reply.body, reply.status

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    return app


def last_app() -> Flask:
    app = Flask(__name__)

    @app.post("/hop")
    def hop():
        return {"result": "Charging started", "echo": request.get_json(silent=True)}, 201

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    return app


def app_from_env() -> Flask:
    """gunicorn entry point: `bench.trivial_chain:app_from_env()`; NEXT_URL set (one URL, or several
    separated by commas) means a forwarding hop."""
    next_urls = [url for url in os.environ.get("NEXT_URL", "").split(",") if url]
    return forwarding_app(next_urls) if next_urls else last_app()
