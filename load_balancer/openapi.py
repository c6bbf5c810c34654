"""The balancer's API, served at /openapi.json."""

from __future__ import annotations

from grid_common.openapi import (
    BAD_INPUT,
    CHARGE_REQUEST_BODY,
    LOCATION,
    SESSION,
    UPSTREAM,
    document,
    json_response,
    probe_paths,
    problem,
    session_paths,
)
from grid_common.protocol import SESSION_TOKEN_PATTERN, SUBSTATION_NAME_PATTERN

VIEW = {
    "type": "object",
    "required": ["name", "url", "healthy", "active_sessions", "load_kw", "capacity_kw", "utilization", "updated_at"],
    "properties": {
        "name": {"type": "string"},
        "url": {"type": "string"},
        "healthy": {"type": "boolean"},
        "active_sessions": {"type": "integer", "minimum": 0},
        "pending_sessions": {"type": "integer", "minimum": 0},
        "load_kw": {"type": "number"},
        "capacity_kw": {"type": "number"},
        "utilization": {"type": "number"},
        "updated_at": {"type": ["string", "null"], "format": "date-time"},
    },
}
GRID_VIEW = {
    "type": "object",
    "required": ["strategy", "substations"],
    "properties": {"strategy": {"type": "string"}, "substations": {"type": "array", "items": VIEW}},
}
# A charger as the OCPP service lists it (`GET /chargers` there), passed on as it is: what the page reads.
CHARGER = {
    "type": "object",
    "required": ["charger_id", "substation", "connected"],
    "properties": {
        "charger_id": {"type": "string"},
        "substation": {"type": "string"},
        "connected": {"type": "boolean"},
        "protocol": {"type": ["string", "null"], "description": "ocpp1.6 or ocpp2.0.1 while connected, else null"},
        "session_id": {"type": ["string", "null"], "description": "its transaction's session, if one runs"},
        "state": {"type": ["string", "null"]},
        "limit_kw": {"type": ["number", "null"], "description": "what its session may draw"},
        "limit_a": {"type": ["number", "null"], "description": "the limit last accepted, per phase"},
        "default_a": {"type": ["number", "null"], "description": "its safe default, per phase"},
        "measured_kw": {"type": ["number", "null"], "description": "what its meter read last"},
        "fleet": {"type": "boolean"},
    },
}
CHARGERS = {
    "type": "object",
    "required": ["chargers"],
    "properties": {"chargers": {"type": "array", "items": CHARGER}},
}
TOKEN: list[dict[str, list[str]]] = [{"topology_token": []}]  # a security requirement, no scopes
NAME = {
    "name": "name",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": SUBSTATION_NAME_PATTERN.pattern},
}
REGISTRATION = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["name", "url"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "pattern": SUBSTATION_NAME_PATTERN.pattern},
                    "url": {"type": "string", "format": "uri", "pattern": "^https?://"},
                },
            }
        }
    },
}
SUBSTATION_LOCATION = {"schema": {"type": "string"}, "description": "/substations/<name>"}
AUTH = {
    "401": problem(
        "No bearer token.",
        headers={"WWW-Authenticate": {"schema": {"type": "string"}, "description": 'Bearer realm="topology"'}},
    ),
    "403": problem("A wrong token, or topology changes are off (no TOPOLOGY_TOKEN)."),
}

SPEC = document(
    "Smart grid: load balancer",
    "Places each session on the substation with the most headroom, and keeps a live view of the grid.",
    {
        "/assign_substation": {
            "post": {
                "summary": "Place a session; tries the next best substation when one refuses or fails.",
                "parameters": [
                    {
                        "name": "Request-Deadline",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "number"},
                        "description": "Unix time after which nothing is placed (408): the caller has given up.",
                    },
                    {
                        "name": "Session-Token",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string", "pattern": SESSION_TOKEN_PATTERN.pattern},
                        "description": "Names the session `<substation>.<token>`, so that a retry can find it.",
                    },
                ],
                "requestBody": CHARGE_REQUEST_BODY,
                "responses": {
                    "201": json_response("Placed: charging.", SESSION, Location=LOCATION),
                    "202": json_response(
                        "Queued where it should start soonest (it asked to wait).", SESSION, Location=LOCATION
                    ),
                    **BAD_INPUT,
                    "400": problem("Malformed JSON, Request-Deadline or Session-Token."),
                    "408": problem(
                        "It arrived after its Request-Deadline (nothing was placed; `deadline` and `now`, this "
                        "host's time when it read it, tell a caller whose clock differs), or its body did not "
                        "arrive within 5 s."
                    ),
                    "404": problem("With `charger_id`: no such charger, or no OCPP service (OCPP_URL)."),
                    "409": problem(
                        "A session exists under this Session-Token, made for another request: `session_id` and "
                        "Location name it. With `charger_id`: the charger is busy, offline, or refused to start "
                        "(nothing was started).",
                        headers={"Location": LOCATION},
                    ),
                    "503": problem(
                        "Nothing was placed: no substation has room, or none is reachable, or they refused it as "
                        "late by their clocks (`Clock skew`, naming how far they are ahead); or the OCPP service "
                        "cannot be reached.",
                        retry_after=True,
                    ),
                    "504": problem(
                        "Outcome unknown: a substation was asked and did not answer, nor could say since, whether "
                        "it admitted the session. `session_id` names the session it may hold, and nothing was "
                        "placed anywhere else. With `charger_id`: the charger accepted (or did not answer) and has "
                        "not started yet; `session_id` names the session its transaction will be."
                    ),
                },
            }
        },
        "/substations": {
            "get": {
                "summary": "The live view of every substation.",
                "responses": {"200": json_response("The view.", GRID_VIEW)},
            },
            "post": {
                "summary": "Register a substation at run time.",
                "security": TOKEN,
                "requestBody": REGISTRATION,
                "responses": {
                    "201": json_response("Registered, and polled once.", VIEW, Location=SUBSTATION_LOCATION),
                    **BAD_INPUT,
                    **AUTH,
                    "409": problem("A substation with this name is known."),
                },
            },
        },
        "/substations/{name}": {
            "delete": {
                "summary": "Remove a substation: no more sessions go there.",
                "security": TOKEN,
                "parameters": [NAME],
                "responses": {"204": {"description": "Removed."}, **AUTH, "404": problem("No such substation.")},
            }
        },
        **session_paths(
            {
                **UPSTREAM,
                "503": problem(
                    "The session's substation cannot read its journal, or (a stop) write it; or (a stop) its clock "
                    "is ahead of this balancer's (`Clock skew`): nothing was changed.",
                    retry_after=True,
                ),
            }
        ),
        "/sessions/by-token/{token}": {
            "get": {
                "summary": "The session a substation holds under a token: what a gateway's retry looks for.",
                "parameters": [
                    {
                        "name": "token",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": SESSION_TOKEN_PATTERN.pattern},
                    }
                ],
                "responses": {
                    "200": json_response("The session.", SESSION),
                    "400": problem("Not a session token."),
                    "404": problem("Every substation said it has none."),
                    "503": problem("A substation did not say: ask again.", retry_after=True),
                },
            }
        },
        "/grid/chargers": {
            "get": {
                "summary": "The OCPP service's chargers (with OCPP_URL), as it lists them: what the live page shows.",
                "responses": {
                    "200": json_response("Every charger the OCPP service knows, connected or not.", CHARGERS),
                    "404": problem("No OCPP_URL: this balancer shows no chargers."),
                    "502": problem("The OCPP service could not be reached, or gave no usable answer."),
                    "504": problem("The OCPP service did not answer within 2 s."),
                },
            }
        },
        "/": {
            "get": {
                "summary": "The live page of the grid.",
                "responses": {
                    "200": {"description": "HTML, refreshed from /substations.", "content": {"text/html": {}}}
                },
            }
        },
        **probe_paths("Ready once a substation answers (off while draining)."),
    },
)
SPEC["components"]["securitySchemes"] = {"topology_token": {"type": "http", "scheme": "bearer"}}
