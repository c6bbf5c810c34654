"""Bearer tokens for the endpoints that change how the grid is run (the balancer's topology, a substation's grid
limits): off without a token configured, and compared in constant time."""

from __future__ import annotations

import hmac

from flask import request

from grid_common.problems import Problem


def require_bearer_token(expected: str, setting: str, realm: str, what: str) -> None:
    """Raise the problem a request without `expected` as its bearer token gets: 403 when the endpoint is off (no
    `setting` configured), 401 without a token, 403 with another."""
    if not expected:
        raise Problem(403, "Forbidden", f"{what} is off: there is no {setting}.")
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Problem(
            401,
            "Unauthorized",
            f"Send Authorization: Bearer <{setting}>.",
            headers={"WWW-Authenticate": f'Bearer realm="{realm}"'},
        )
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise Problem(403, "Forbidden", f"The bearer token is not the {setting}.")
