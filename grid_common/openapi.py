"""OpenAPI 3.1 pieces every service's document is built from, and the route that serves it.

The schemas say what the code enforces (grid_common/charge_request.py and the services' own checks);
tests/integration/test_api_contract.py runs schemathesis against the live services to keep them true.
"""

from __future__ import annotations

from flask import Flask

from grid_common.charge_request import (
    MAX_ENERGY_KWH,
    MAX_POWER_KW,
    MIN_POWER_KW,
    SESSION_ID_PATTERN,
    VEHICLE_ID_PATTERN,
)

PROBLEM = {"$ref": "#/components/schemas/Problem"}
SESSION = {"$ref": "#/components/schemas/Session"}

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
    "ChargeRequest": {
        "type": "object",
        "description": "Every field is optional; a body-less POST asks for the defaults.",
        "additionalProperties": False,
        "properties": {
            "vehicle_id": {
                "type": ["string", "null"],
                "pattern": VEHICLE_ID_PATTERN.pattern,
                "description": "Generated when absent.",
            },
            "energy_kwh": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_ENERGY_KWH, "default": 11},
            "max_power_kw": {"type": "number", "minimum": MIN_POWER_KW, "maximum": MAX_POWER_KW, "default": 11},
        },
    },
    "Session": {
        "type": "object",
        "required": ["session_id", "substation", "vehicle_id", "state", "power_kw", "energy_kwh"],
        "properties": {
            "session_id": {"type": "string", "pattern": SESSION_ID_PATTERN.pattern},
            "substation": {"type": "string"},
            "vehicle_id": {"type": "string"},
            "state": {"enum": ["charging", "completed", "stopped"]},
            "power_kw": {"type": "number"},
            "energy_kwh": {"type": "number"},
            "energy_delivered_kwh": {"type": "number"},
            "started_at": {"type": "string", "format": "date-time"},
            "estimated_end": {"type": "string", "format": "date-time"},
            "ended_at": {"type": ["string", "null"], "format": "date-time"},
        },
    },
    "Health": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
}


def problem(description: str, retry_after: bool = False) -> dict:
    response: dict = {"description": description, "content": {"application/problem+json": {"schema": PROBLEM}}}
    if retry_after:
        response["headers"] = {"Retry-After": {"schema": {"type": "string"}, "description": "seconds"}}
    return response


def json_response(description: str, schema: dict, **headers: dict) -> dict:
    response: dict = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


CHARGE_REQUEST_BODY = {
    "required": False,
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ChargeRequest"}}},
}
SESSION_ID_PARAMETER = {
    "name": "session_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": SESSION_ID_PATTERN.pattern},
    "description": "`<substation>.<token>`",
}
BAD_INPUT = {
    "400": problem("Malformed JSON or session id."),
    "404": problem("No such session or route."),
    "413": problem("Body over 16 KiB."),
    "415": problem("A body that is not application/json."),
    "422": problem("A field that is unknown or out of range; `errors` names each."),
}
UPSTREAM = {
    "502": problem("An upstream could not be reached or gave no usable answer."),
    "504": problem("An upstream did not answer in time."),
}


def session_paths(failures: dict) -> dict:
    """Reading and stopping a session, the same on every service; `failures` are its own error answers."""

    def operation(summary: str, answer: str) -> dict:
        responses = {"200": json_response(answer, SESSION), **BAD_INPUT, **failures}
        return {"summary": summary, "parameters": [SESSION_ID_PARAMETER], "responses": responses}

    return {
        "/sessions/{session_id}": {"get": operation("A session, as its substation knows it now.", "The session.")},
        "/sessions/{session_id}/stop": {
            "post": operation("End a session early and free its power.", "The final session.")
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


def document(title: str, description: str, paths: dict, extra_schemas: dict | None = None) -> dict:
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "0.2.0", "description": description},
        "paths": paths,
        "components": {"schemas": {**SCHEMAS, **(extra_schemas or {})}},
    }


def add_openapi_route(app: Flask, spec: dict) -> None:
    @app.get("/openapi.json")
    def openapi():
        return spec
