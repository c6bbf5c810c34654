"""The stack's floor: a 3-hop Flask chain shaped like gateway -> balancer -> substation, with no logic.

Same gunicorn configuration and same pooled HTTP client as the suite, so the ratio of the suite's
throughput to this chain's is what the suite's own logic costs.
"""

from __future__ import annotations

import os

from flask import Flask, request

from grid_common.upstream import JsonClient


def forwarding_app(next_url: str) -> Flask:
    app = Flask(__name__)
    client = JsonClient(connect_timeout=1.0, read_timeout=5.0)

    @app.post("/hop")
    def hop():
        reply = client.call("POST", f"{next_url}/hop", request.get_json(silent=True) or {})
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
    """gunicorn entry point: `bench.trivial_chain:app_from_env()`; NEXT_URL set means a forwarding hop."""
    next_url = os.environ.get("NEXT_URL")
    return forwarding_app(next_url) if next_url else last_app()
