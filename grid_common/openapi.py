"""OpenAPI 3.1 pieces every service's document is built from, and the route that serves it.

The schemas of what crosses between services are the protocol's own (grid_common/protocol/);
tests/app/test_api_contract.py runs schemathesis against each service's app, and sends what generated
requests cannot reach, to keep them true.
"""

from __future__ import annotations

from flask import Blueprint

from grid_common import __version__
from grid_common.protocol import BALANCER_ID, BALANCER_ID_PATTERN, COMPONENTS, MAX_ENERGY_KWH, SESSION_ID_PATTERN

PROBLEM = {"$ref": "#/components/schemas/Problem"}
SESSION = {"$ref": "#/components/schemas/Session"}
LOAD = {"$ref": "#/components/schemas/Load"}

SCHEMAS: dict = {
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details.",
        "required": ["type", "title", "status"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["field", "message"],
                    "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                },
            },
        },
    },
    **COMPONENTS,
    "Health": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
}

BALANCER_ID_PARAMETER = {
    "name": BALANCER_ID,
    "in": "header",
    "required": False,
    "description": "The asking balancer process: the load then says what other balancers' sessions draw.",
    "schema": {"type": "string", "pattern": BALANCER_ID_PATTERN.pattern},
}


RETRY_AFTER = {"schema": {"type": "string", "pattern": "^[1-9][0-9]*$"}, "description": "whole seconds, at least 1"}
LOCATION = {"schema": {"type": "string"}, "description": "/sessions/<session_id>"}


def problem(description: str, retry_after: bool = False, *, headers: dict[str, dict] | None = None) -> dict:
    """`headers` by name: a name need not be an identifier (WWW-Authenticate), nor can it clash with `retry_after`."""
    response: dict = {"description": description, "content": {"application/problem+json": {"schema": PROBLEM}}}
    headers = dict(headers or {})
    if retry_after:
        headers = {"Retry-After": RETRY_AFTER, **headers}
    if headers:
        response["headers"] = headers
    return response


def json_response(description: str, schema: dict, **headers: dict) -> dict:
    response: dict = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


CHARGE_REQUEST_BODY = {
    "required": False,
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/StartRequest"}}},
}
SESSION_ID_PARAMETER = {
    "name": "session_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": SESSION_ID_PATTERN.pattern},
    "description": "`<substation>.<token>`",
}
# Any request that comes with a body: the edge answers before the route does (grid_common/edge.py).
BODY_LIMITS = {
    "408": problem("The body did not arrive within 5 s."),
    "413": problem("Body over 16 KiB."),
}
# An operation that reads a JSON body.
BAD_INPUT = {
    "400": problem("Malformed JSON."),
    **BODY_LIMITS,
    "415": problem("A body that is not application/json."),
    "422": problem("A field that is unknown or out of range; `errors` names each."),
}
UPSTREAM = {
    "502": problem("An upstream could not be reached or gave no usable answer."),
    "504": problem(
        "An upstream did not answer in time: whether the request took effect is not known. When a substation may "
        "hold the session, `session_id` names it (read it later), and nothing was placed anywhere else."
    ),
}


SESSION_CHANGE = {
    "type": "object",
    "minProperties": 1,
    "additionalProperties": False,
    "properties": {
        "energy_kwh": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": MAX_ENERGY_KWH,
            "description": "The session's energy in all, as in a request (not what is left): one already "
            "delivered completes it.",
        },
        "departure_time": {
            "type": ["string", "null"],
            "format": "date-time",
            "description": "When its driver leaves, with its offset; null: no departure any more.",
        },
    },
}


def session_paths(failures: dict, stop_parameters: tuple[dict, ...] = ()) -> dict:
    """Reading, changing and stopping a session, the same on every service; `failures` are its own error
    answers, `stop_parameters` what else a stop or a change takes there."""

    def operation(summary: str, answer: str, parameters: tuple[dict, ...] = ()) -> dict:
        responses = {
            "200": json_response(answer, SESSION),
            "400": problem("Malformed session id."),
            "404": problem("No such session, or its substation is not known."),
            **BODY_LIMITS,
            **failures,
        }
        return {"summary": summary, "parameters": [SESSION_ID_PARAMETER, *parameters], "responses": responses}

    amend = operation(
        "Say a running session's energy or departure anew (JSON merge patch: a field left out is unchanged); "
        "planned and shared anew at once.",
        "The session as changed.",
        stop_parameters,
    )
    amend["requestBody"] = {
        "required": True,
        "content": {
            media: {"schema": SESSION_CHANGE} for media in ("application/json", "application/merge-patch+json")
        },
    }
    amend["responses"].update(
        {
            "400": problem("Malformed session id or JSON."),
            "409": problem("The session has ended (`session`: as it ended): nothing was changed."),
            "415": problem("A body that is not JSON."),
            "422": problem("A field unknown or wrong, or none given (`errors` names each)."),
        }
    )
    return {
        "/sessions/{session_id}": {
            "get": operation("A session, as its substation knows it now.", "The session."),
            "patch": amend,
        },
        "/sessions/{session_id}/stop": {
            "post": operation("End a session early and free its power.", "The final session.", stop_parameters)
        },
    }


def probe_paths(ready_description: str) -> dict:
    health = {"$ref": "#/components/schemas/Health"}
    return {
        "/healthz": {"get": {"summary": "The process answers.", "responses": {"200": json_response("Alive.", health)}}},
        "/readyz": {
            "get": {
                "summary": ready_description,
                "responses": {
                    "200": json_response("Ready.", health),
                    "503": json_response("Not ready, or draining before a shutdown.", health),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics.",
                "responses": {"200": {"description": "Text exposition format.", "content": {"text/plain": {}}}},
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document.",
                "responses": {"200": json_response("OpenAPI 3.1.", {"type": "object"})},
            }
        },
    }


def document(
    title: str,
    description: str,
    paths: dict,
    extra_schemas: dict | None = None,
    *,
    security_schemes: dict | None = None,
    security: list[dict] | None = None,
) -> dict:
    spec: dict = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": __version__, "description": description},
        "paths": paths,
        "components": {"schemas": {**SCHEMAS, **(extra_schemas or {})}},
    }
    if security_schemes:
        spec["components"]["securitySchemes"] = security_schemes
    if security is not None:
        spec["security"] = security
    return spec


def openapi_blueprint(spec: dict) -> Blueprint:
    """`GET /openapi.json`: the service's own document."""
    blueprint = Blueprint("openapi", __name__)

    @blueprint.get("/openapi.json")
    def openapi():
        return spec

    return blueprint
