"""The gateway's API, served at /openapi.json."""

from __future__ import annotations

from grid_common.openapi import (
    BAD_INPUT,
    CHARGE_REQUEST_BODY,
    LOCATION,
    UPSTREAM,
    document,
    json_response,
    probe_paths,
    problem,
    session_paths,
)
from grid_common.protocol import IDEMPOTENCY_KEY, IDEMPOTENCY_KEY_MAX_LENGTH, IDEMPOTENT_REPLAYED

STARTED = {
    "allOf": [
        {"$ref": "#/components/schemas/Session"},
        {"type": "object", "required": ["result"], "properties": {"result": {"const": "Charging started"}}},
    ]
}
QUEUED = {
    "allOf": [
        {"$ref": "#/components/schemas/Session"},
        {"type": "object", "required": ["result"], "properties": {"result": {"const": "Queued"}}},
    ]
}
SESSION_HEADERS = {
    "Location": LOCATION,
    IDEMPOTENT_REPLAYED: {
        "schema": {"const": "true"},
        "description": "The answer an earlier request with this Idempotency-Key got, given again.",
    },
}

UNAUTHORIZED = {
    "401": problem(
        "The gateway has clients (CLIENT_TOKENS) and the request has no bearer token of one of them.",
        headers={"WWW-Authenticate": {"schema": {"type": "string"}, "description": 'Bearer realm="gateway"'}},
    )
}

SPEC = document(
    "Smart grid: charge request gateway",
    "Where an EV asks to charge. Every error is application/problem+json (RFC 9457). With CLIENT_TOKENS the "
    "gateway serves its clients only, each with its bearer token, and Idempotency-Keys are each client's own; "
    "without, it serves anyone, as one client.",
    {
        "/initiate_energy_transfer": {
            "post": {
                "summary": "Start charging where the most headroom is, or at the charger `charger_id` names.",
                "parameters": [
                    {
                        "name": IDEMPOTENCY_KEY,
                        "in": "header",
                        "required": False,
                        "schema": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": IDEMPOTENCY_KEY_MAX_LENGTH,
                            "pattern": "^[ -~]+$",
                        },
                        "description": "The same key and body give the same session, never a second one.",
                    }
                ],
                "requestBody": CHARGE_REQUEST_BODY,
                "responses": {
                    "201": json_response("Charging started.", STARTED, **SESSION_HEADERS),
                    "202": json_response(
                        "Queued where it should start soonest (it asked to wait).", QUEUED, **SESSION_HEADERS
                    ),
                    **BAD_INPUT,
                    "400": problem(
                        "Malformed JSON, or an Idempotency-Key that is not 1 to 255 printable ASCII characters."
                    ),
                    **UNAUTHORIZED,
                    "404": problem("With `charger_id`: no such charger here (or no OCPP service)."),
                    "409": problem(
                        "A request with this Idempotency-Key is in progress (or finding out what an earlier one "
                        "did), or an earlier one may still start a session: ask again after Retry-After. With "
                        "`charger_id`: the charger is busy, offline, or refused to start (nothing was started).",
                        retry_after=True,
                    ),
                    "503": problem(
                        "Nothing was started: no substation has room, or none is reachable, or the hosts' clocks "
                        "differ (`Clock skew`); or the Idempotency-Key store cannot be reached (the detail says "
                        "whether it may have taken the key), or whether an earlier request with this key started a "
                        "session cannot be told yet.",
                        retry_after=True,
                    ),
                    **UPSTREAM,
                },
            }
        },
        **session_paths(
            {
                **UNAUTHORIZED,
                "503": problem(
                    "The session's substation cannot read its journal, or (a stop) write it; or (a stop) its "
                    "clock is ahead of the balancer's (`Clock skew`): nothing was changed.",
                    retry_after=True,
                ),
                **UPSTREAM,
            }
        ),
        **probe_paths("Ready for traffic (off while draining)."),
    },
    security_schemes={
        "clientToken": {
            "type": "http",
            "scheme": "bearer",
            "description": "A client's token, when the gateway has clients (CLIENT_TOKENS).",
        }
    },
    security=[{}, {"clientToken": []}],  # either: a gateway without clients asks for none
)
