"""The substation's API, served at /openapi.json (under `/<name>` for each hosted one)."""

from __future__ import annotations

from grid_common.openapi import BAD_INPUT, SESSION, document, json_response, probe_paths, problem, session_paths

LOAD = {
    "type": "object",
    "required": ["name", "capacity_kw", "load_kw", "utilization", "active_sessions", "epoch", "sequence"],
    "properties": {
        "name": {"type": "string"},
        "capacity_kw": {"type": "number"},
        "load_kw": {"type": "number"},
        "ev_power_kw": {"type": "number"},
        "background_kw": {"type": "number"},
        "utilization": {"type": "number"},
        "available_kw": {"type": "number"},
        "active_sessions": {"type": "integer", "minimum": 0},
        "charger_max_power_kw": {"type": "number"},
        "next_session_end_s": {"type": ["number", "null"]},
        "others_ev_power_kw": {"type": "number", "description": "With Balancer-Id: other balancers' sessions."},
        "epoch": {"type": "string"},
        "sequence": {"type": "integer"},
    },
}
BALANCER_ID_PARAMETER = {
    "name": "Balancer-Id",
    "in": "header",
    "required": False,
    "description": "The asking balancer process: the load then says what other balancers' sessions draw.",
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
}
ADMITTED = {"type": "object", "required": ["session", "load"], "properties": {"session": SESSION, "load": LOAD}}
ADMISSION = {
    "required": False,
    "content": {
        "application/json": {
            "schema": {
                "allOf": [{"$ref": "#/components/schemas/ChargeRequest"}],
                "properties": {"session_id": {"type": "string"}},
                "description": "A ChargeRequest, and the session id the balancer chose (replayed if known).",
            }
        }
    },
}

SPEC = document(
    "Smart grid: substation",
    "One substation: admits a session atomically, or refuses it when it would exceed its capacity.",
    {
        "/begin_charging": {
            "post": {
                "summary": "Admit a session if it fits under capacity for its whole duration.",
                "parameters": [
                    BALANCER_ID_PARAMETER,
                    {
                        "name": "If-Others-EV-Power-At-Most",
                        "in": "header",
                        "required": False,
                        "description": "Admit only if sessions other balancers placed draw at most this many kW: "
                        "as long as this balancer's choice of this substation stands. Needs Balancer-Id.",
                        "schema": {"type": "number", "minimum": 0},
                    },
                ],
                "requestBody": ADMISSION,
                "responses": {
                    "201": json_response(
                        "Admitted.", {"type": "object", "properties": {"session": SESSION, "load": LOAD}}
                    ),
                    "200": json_response("The same session id again: the session it named.", {"type": "object"}),
                    **BAD_INPUT,
                    "409": problem("Full (with Retry-After and the load), or a session id reused.", retry_after=True),
                    "412": problem(
                        "Other balancers' sessions draw more than If-Others-EV-Power-At-Most (with the load)."
                    ),
                },
            }
        },
        "/load": {
            "get": {
                "summary": "What the balancer polls.",
                "parameters": [BALANCER_ID_PARAMETER],
                "responses": {"200": json_response("Load.", LOAD), "400": problem("A malformed Balancer-Id.")},
            }
        },
        **session_paths({}),
        "/": {"get": {"summary": "Name and load.", "responses": {"200": json_response("Index.", {"type": "object"})}}},
        **probe_paths("Ready at once."),
    },
)
