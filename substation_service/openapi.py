"""The substation's API, served at /openapi.json (under `/<name>` for each hosted one)."""

from __future__ import annotations

from grid_common.openapi import (
    BAD_INPUT,
    BALANCER_ID_PARAMETER,
    LOAD,
    LOCATION,
    document,
    json_response,
    probe_paths,
    problem,
    session_paths,
)
from grid_common.protocol import (
    BALANCER_ID,
    OTHERS_EV_POWER_CONDITION,
    OTHERS_SESSIONS_CONDITION,
    SESSION_EXISTS,
)

ADMITTED = {"$ref": "#/components/schemas/AdmissionAnswer"}
JOURNAL_UNAVAILABLE = problem(
    "The journal cannot write (nothing was changed), or could not be read at start (nothing is known of the "
    "sessions until it can).",
    retry_after=True,
)
LATE = problem(
    "It arrived after its Request-Deadline, or its deadline passed before it could be made (nothing was changed; "
    "`deadline` and `now`, this host's time, tell a caller whose clock differs); or its body did not arrive "
    "within 5 s."
)
DEADLINE = {
    "name": "Request-Deadline",
    "in": "header",
    "required": False,
    "schema": {"type": "number"},
    "description": "Unix time after which the change is not made (408): the caller has given up on it.",
}
CIRCUITS = {
    "type": "object",
    "required": ["circuits"],
    "properties": {
        "circuits": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "parent"],
                "properties": {
                    "name": {"type": "string"},
                    "parent": {"type": ["string", "null"]},
                    "max_current_a": {"type": "number", "description": "A limit on each phase."},
                    "current_a": {"type": "object", "description": "What is counted on each phase (L1, L2, L3)."},
                    "max_power_kw": {"type": "number", "description": "A limit on its total."},
                    "power_kw": {"type": "number", "description": "What is counted on it."},
                    "grid_limit_kw": {
                        "type": ["number", "null"],
                        "description": "The grid operator's limit on it in force now.",
                    },
                },
            },
        }
    },
}
GRID_LIMIT_TOKEN: list[dict[str, list[str]]] = [{"grid_limit_token": []}]
GRID_LIMIT_AUTH = {
    "401": problem(
        "No bearer token.",
        headers={"WWW-Authenticate": {"schema": {"type": "string"}, "description": 'Bearer realm="grid-limit"'}},
    ),
    "403": problem("A wrong token, or grid limits are off (no GRID_LIMIT_TOKEN)."),
}
ISO_TIME = {"type": "string", "format": "date-time"}
LIMIT_PERIOD = {
    "type": "object",
    "required": ["start", "end", "limit_kw"],
    "additionalProperties": False,
    "properties": {"start": ISO_TIME, "end": ISO_TIME, "limit_kw": {"type": "number", "minimum": 0}},
}


def schedule_schema(what: str, schema: dict) -> dict:
    """A schedule of the grid operator's limits, as GET, PUT and DELETE answer it, naming `what` it limits."""
    return {
        "type": "object",
        "required": ["substation", what, "limit_in_force_kw", "periods", "changes"],
        "properties": {
            "substation": {"type": "string"},
            what: schema,
            "limit_in_force_kw": {"type": ["number", "null"]},
            "periods": {"type": "array", "items": LIMIT_PERIOD},
            "changes": {"type": "integer", "minimum": 0},
        },
    }


GRID_LIMIT_SCHEDULE = schedule_schema("rated_capacity_kw", {"type": "number"})
CIRCUIT_GRID_LIMIT_SCHEDULE = schedule_schema("circuit", {"type": "string"})
CIRCUIT_NAME_PARAMETER = {
    "name": "name",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "One of the substation's circuits (CIRCUITS).",
}
NO_SUCH_CIRCUIT = {"404": problem("Not one of the substation's circuits.")}
GRID_LIMIT_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    {
                        "type": "object",
                        "description": "A window from now.",
                        "required": ["limit_kw", "duration_s"],
                        "additionalProperties": False,
                        "properties": {
                            "limit_kw": {"type": "number", "minimum": 0},
                            "duration_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 7 * 24 * 3600},
                        },
                    },
                    {
                        "type": "object",
                        "description": "A schedule: periods in order, none overlapping, within a week.",
                        "required": ["periods"],
                        "additionalProperties": False,
                        "properties": {"periods": {"type": "array", "maxItems": 96, "items": LIMIT_PERIOD}},
                    },
                ]
            }
        }
    },
}
ADMISSION = {"required": False, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Admission"}}}}

SPEC = document(
    "Smart grid: substation",
    "One substation: admits a session atomically, or refuses it when it would exceed its capacity.",
    {
        "/begin_charging": {
            "post": {
                "summary": "Admit a session if it fits under capacity for its whole duration.",
                "parameters": [
                    BALANCER_ID_PARAMETER,
                    DEADLINE,
                    {
                        "name": OTHERS_EV_POWER_CONDITION,
                        "in": "header",
                        "required": False,
                        "description": "Admit only if sessions other balancers placed draw at most this many kW: "
                        f"as long as this balancer's choice of this substation stands. Needs {BALANCER_ID}.",
                        "schema": {"type": "number", "minimum": 0},
                    },
                    {
                        "name": OTHERS_SESSIONS_CONDITION,
                        "in": "header",
                        "required": False,
                        "description": "Admit only if other balancers placed at most this many sessions here "
                        f"(started or queued): as long as this balancer's choice stands. Needs {BALANCER_ID}.",
                        "schema": {"type": "integer", "minimum": 0},
                    },
                ],
                "requestBody": ADMISSION,
                "responses": {
                    "201": json_response("Admitted.", ADMITTED, Location=LOCATION),
                    "200": json_response(
                        "The same session id again: the session it named.", ADMITTED, Location=LOCATION
                    ),
                    "202": json_response(
                        "Queued: it asked to wait, and starts once it fits.", ADMITTED, Location=LOCATION
                    ),
                    **BAD_INPUT,
                    "409": problem(
                        "Full (`reason` capacity, queue or charger; with Retry-After and the load), or a session id "
                        f"it holds for another request (`reason` {SESSION_EXISTS}, with `session_id`).",
                        retry_after=True,
                    ),
                    "412": problem(
                        f"Other balancers' sessions there are past {OTHERS_EV_POWER_CONDITION} or "
                        f"{OTHERS_SESSIONS_CONDITION} (with the load)."
                    ),
                    "408": LATE,
                    "503": JOURNAL_UNAVAILABLE,
                },
            }
        },
        "/circuits": {
            "get": {
                "summary": "The circuits inside the substation (CIRCUITS): each one's limit and its load now.",
                "responses": {"200": json_response("Circuits.", CIRCUITS), "503": JOURNAL_UNAVAILABLE},
            }
        },
        "/circuits/{name}/grid_limit": {
            "get": {
                "summary": "The grid operator's limits on a circuit: the schedule ahead and the limit in force.",
                "parameters": [CIRCUIT_NAME_PARAMETER],
                "responses": {"200": json_response("The schedule.", CIRCUIT_GRID_LIMIT_SCHEDULE), **NO_SUCH_CIRCUIT},
            },
            "put": {
                "summary": "Set the grid operator's limits on a circuit (a power; replaces its schedule).",
                "security": GRID_LIMIT_TOKEN,
                "parameters": [CIRCUIT_NAME_PARAMETER],
                "requestBody": GRID_LIMIT_BODY,
                "responses": {
                    "200": json_response("The schedule now.", CIRCUIT_GRID_LIMIT_SCHEDULE),
                    **BAD_INPUT,
                    **GRID_LIMIT_AUTH,
                    **NO_SUCH_CIRCUIT,
                    "503": JOURNAL_UNAVAILABLE,
                },
            },
            "delete": {
                "summary": "Clear the grid operator's limits on a circuit: its own limit holds again at once.",
                "security": GRID_LIMIT_TOKEN,
                "parameters": [CIRCUIT_NAME_PARAMETER],
                "responses": {
                    "200": json_response("The schedule now (empty).", CIRCUIT_GRID_LIMIT_SCHEDULE),
                    **GRID_LIMIT_AUTH,
                    **NO_SUCH_CIRCUIT,
                    "503": JOURNAL_UNAVAILABLE,
                },
            },
        },
        "/load": {
            "get": {
                "summary": "What the balancer polls.",
                "parameters": [BALANCER_ID_PARAMETER],
                "responses": {
                    "200": json_response("Load.", LOAD),
                    "400": problem(f"A malformed {BALANCER_ID}."),
                    "503": JOURNAL_UNAVAILABLE,
                },
            }
        },
        **session_paths({"408": LATE, "503": JOURNAL_UNAVAILABLE}, stop_parameters=(DEADLINE,)),
        "/chargers/feed": {
            "get": {
                "summary": "Sessions on chargers that changed since a cursor: what the OCPP service sends down.",
                "parameters": [
                    {
                        "name": "since",
                        "in": "query",
                        "required": False,
                        "description": "The `cursor` of an earlier answer of the same `epoch`; 0 or absent: all.",
                        "schema": {"type": "integer", "minimum": 0, "maximum": 10**18 - 1},
                    },
                    {
                        "name": "wait",
                        "in": "query",
                        "required": False,
                        "description": "Seconds to hold the request open when nothing changed since `since` (of the "
                        "`epoch` given): answered at the next change, or after this long with none. 0 or absent: "
                        "at once.",
                        "schema": {"type": "number", "minimum": 0, "maximum": 30},
                    },
                    {
                        "name": "epoch",
                        "in": "query",
                        "required": False,
                        "description": "The `epoch` of the answer `since` came from: a reader of another epoch (the "
                        "substation restarted) is answered at once, whatever `wait` says.",
                        "schema": {"type": "string", "maxLength": 64},
                    },
                ],
                "responses": {
                    "200": json_response("The sessions that changed.", {"$ref": "#/components/schemas/ChargerFeed"}),
                    "400": problem("A malformed cursor or wait."),
                    "503": JOURNAL_UNAVAILABLE,
                },
            }
        },
        "/meters": {
            "post": {
                "summary": "What chargers' meters read: power now, energy since each session started.",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/MeterReadings"}}},
                },
                "responses": {
                    "200": json_response(
                        "Taken; with the sessions it does not hold.", {"$ref": "#/components/schemas/MeterAnswer"}
                    ),
                    **BAD_INPUT,
                    "503": JOURNAL_UNAVAILABLE,
                },
            }
        },
        "/grid_limit": {
            "get": {
                "summary": "The grid operator's limits: the schedule ahead and the limit in force.",
                "responses": {"200": json_response("The schedule.", GRID_LIMIT_SCHEDULE)},
            },
            "put": {
                "summary": "Set the grid operator's limits (replacing the schedule); shared anew at once.",
                "security": GRID_LIMIT_TOKEN,
                "requestBody": GRID_LIMIT_BODY,
                "responses": {
                    "200": json_response("The schedule now.", GRID_LIMIT_SCHEDULE),
                    **BAD_INPUT,
                    **GRID_LIMIT_AUTH,
                    "503": JOURNAL_UNAVAILABLE,
                },
            },
            "delete": {
                "summary": "Clear the grid operator's limits: the rated capacity holds again at once.",
                "security": GRID_LIMIT_TOKEN,
                "responses": {
                    "200": json_response("The schedule now (empty).", GRID_LIMIT_SCHEDULE),
                    **GRID_LIMIT_AUTH,
                    "503": JOURNAL_UNAVAILABLE,
                },
            },
        },
        "/": {
            "get": {
                "summary": "Name and load.",
                "responses": {"200": json_response("Index.", {"type": "object"}), "503": JOURNAL_UNAVAILABLE},
            }
        },
        **probe_paths("Ready at once."),
    },
)
SPEC["components"]["securitySchemes"] = {"grid_limit_token": {"type": "http", "scheme": "bearer"}}
