"""Request plumbing every service needs: JSON bodies, health and readiness, metrics."""

from __future__ import annotations

import json
from collections.abc import Callable

from flask import Blueprint, Flask, Response, request
from flask.json.provider import DefaultJSONProvider
from prometheus_client import CollectorRegistry

from grid_common import deadline
from grid_common.edge import BODY, MAX_BODY_BYTES, BoundedBody
from grid_common.lifecycle import draining
from grid_common.metrics import CONTENT_TYPE_LATEST, render_metrics
from grid_common.problems import Problem, install_problem_handlers, relay_problem
from grid_common.protocol import REQUEST_DEADLINE, InvalidRequest
from grid_common.responses import json_response
from grid_common.upstream import UpstreamError, UpstreamResponse, UpstreamTimeout


def new_app(name: str) -> Flask:
    app = Flask(name)
    # The body arrives whole, bounded in size and time, before the app reads it (grid_common/edge.py).
    # Flask's documented way to add WSGI middleware, though its types declare wsgi_app a method.
    app.wsgi_app = BoundedBody(app.wsgi_app)  # type: ignore[method-assign]
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    assert isinstance(app.json, DefaultJSONProvider)  # Flask's own: this app configures no other
    app.json.sort_keys = False
    install_problem_handlers(app)
    return app


def request_body() -> bytes:
    """The request's body as it came: the bytes BoundedBody read, else (no body, or an app without it) read
    through the framework."""
    raw = request.environ.get(BODY)
    return request.get_data(cache=True) if raw is None else raw


def read_json_body(*, optional: bool) -> object:
    """Decode the request body as JSON; an empty body is None when `optional`."""
    raw = request_body()
    if not raw:  # whitespace is a body, and not JSON: only an absent one takes the defaults
        if optional:
            return None
        raise Problem(400, "Bad Request", "A JSON body is required.")
    if not _declares_json(request.environ.get("CONTENT_TYPE", "")) and not request.is_json:
        raise Problem(
            415,
            "Unsupported Media Type",
            f"Send the body as application/json, not {request.mimetype or 'no content type'}.",
        )
    # What clients send is read with the standard library, not orjson (grid_common/responses.py): NaN gets
    # the field's own 422 "must be finite", and nesting too deep is told apart as RecursionError.
    try:
        body = json.loads(raw)
    except ValueError as error:
        raise Problem(400, "Bad Request", f"The body is not valid JSON: {error}.") from None
    except RecursionError:
        raise Problem(400, "Bad Request", "The body is not valid JSON: it nests too deeply.") from None
    if body is None:
        # `null` is a body that says nothing valid, not a missing one: only an empty body takes the defaults.
        raise Problem(
            422,
            "Unprocessable Content",
            "The body must be a JSON object, not null.",
            errors=[{"field": "(body)", "message": "must be a JSON object"}],
        )
    return body


def _declares_json(content_type: str) -> bool:
    """The usual Content-Type, recognised without parsing it (request.is_json parses it for the rest)."""
    return content_type == "application/json" or content_type.startswith("application/json;")


def invalid_request_problem(error: InvalidRequest) -> Problem:
    return Problem(422, "Unprocessable Content", str(error), errors=error.errors)


def probes_blueprint(is_ready: Callable[[], tuple[bool, dict]], registry: CollectorRegistry | None = None) -> Blueprint:
    """`/healthz` says the process answers; `/readyz` whether it should get traffic; `/metrics` for Prometheus."""
    blueprint = Blueprint("probes", __name__)

    @blueprint.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @blueprint.get("/readyz")
    def readyz():
        if draining():
            return json_response({"status": "draining"}, 503)
        ready, details = is_ready()
        return json_response({"status": "ready" if ready else "not ready", **details}, 200 if ready else 503)

    @blueprint.get("/metrics")
    def metrics_endpoint():
        return Response(render_metrics(registry), content_type=CONTENT_TYPE_LATEST)

    return blueprint


def upstream_failure_problem(error: UpstreamError, upstream: str) -> Problem:
    """A call that got no usable answer: 504 when it was too slow, 502 otherwise."""
    if isinstance(error, UpstreamTimeout):
        return Problem(504, "Gateway Timeout", f"The {upstream} did not answer in time.")
    return Problem(502, "Bad Gateway", f"The {upstream} could not be reached or gave no usable answer.")


def relay(response: UpstreamResponse, upstream: str) -> Response:
    """Answer with what the upstream said: its success, or its problem, or 502 if it crashed."""
    if 200 <= response.status < 300:
        return json_response(response.body, response.status)
    if 400 <= response.status < 500 or response.status in (502, 503, 504):
        return relay_problem(response.status, response.body, response.retry_after)
    raise Problem(502, "Bad Gateway", f"The {upstream} failed with status {response.status}.")


def request_deadline() -> float | None:
    """The deadline the request carries (Request-Deadline), checked: 400 when it is not a Unix time."""
    try:
        return deadline.parse(request.headers.get(REQUEST_DEADLINE))
    except ValueError:
        raise Problem(400, "Bad Request", f"{REQUEST_DEADLINE} must be a Unix time in seconds.") from None


def refuse_if_late(what: str = "changed") -> float | None:
    """A change asked for after its deadline: the caller gave up on it, so it is not made (408)."""
    late = request_deadline()
    if late is not None and deadline.passed(late):
        raise Problem(
            408,
            "Request Timeout",
            f"The request arrived after its deadline: nothing was {what}.",
            **deadline.late_body(late),
        )
    return late
