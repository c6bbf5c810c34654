"""HTTP edge of the gateway: validate, forward to the balancer, answer in the balancer's words."""

from __future__ import annotations

import itertools
import time

from flask import Flask, Response, g, json, request

from charge_request_service import metrics
from charge_request_service.config import GatewayConfig
from charge_request_service.idempotency import (
    IdempotencyStore,
    Mismatch,
    Replay,
    StillPending,
    fingerprint,
    valid_key,
)
from charge_request_service.openapi import SPEC
from grid_common.charge_request import InvalidRequest, is_session_id, parse_charge_request
from grid_common.openapi import add_openapi_route
from grid_common.problems import Problem
from grid_common.upstream import JsonClient, UpstreamError, UpstreamRefused
from grid_common.web import (
    add_probe_routes,
    invalid_request_problem,
    new_app,
    read_json_body,
    relay,
    upstream_failure_problem,
)


class BalancerRotation:
    """Balancer URLs in turn: each call starts at the next one, and goes round all of them if it must."""

    def __init__(self, urls: tuple[str, ...]) -> None:
        self.urls = urls
        self._turn = itertools.count()

    def round(self) -> list[str]:
        start = next(self._turn) % len(self.urls)
        return [*self.urls[start:], *self.urls[:start]]


def create_app(config: GatewayConfig) -> Flask:
    app = new_app(__name__)
    client = JsonClient(connect_timeout=config.connect_timeout_s, read_timeout=config.balancer_timeout_s)
    keys = IdempotencyStore(
        config.idempotency_db, config.idempotency_ttl_s, pending_lease_s=config.balancer_timeout_s * 2 + 1
    )

    @app.before_request
    def _start_timer():
        g.started = time.perf_counter()

    @app.after_request
    def _count(response: Response):
        route = request.url_rule.rule if request.url_rule else "unmatched"
        metrics.REQUESTS.labels(route, request.method, str(response.status_code)).inc()
        metrics.REQUEST_SECONDS.labels(route, request.method).observe(time.perf_counter() - g.started)
        return response

    balancers = BalancerRotation(config.balancer_urls)

    def call_balancer(method: str, path: str, body: dict | None = None):
        """One call, on the next balancer in turn. A balancer that could not be connected to never got the
        request, so the next one is tried, and after a round of them all, the round again (CONNECT_RETRIES)."""
        for attempt in range(config.connect_retries + 1):
            if attempt:
                time.sleep(0.05 * 2 ** (attempt - 1))
            for url in balancers.round():
                try:
                    return client.call(method, f"{url}{path}", body)
                except UpstreamRefused as error:
                    refused = error
                except UpstreamError as error:
                    raise upstream_failure_problem(error, "load balancer") from None
        raise upstream_failure_problem(refused, "load balancer")

    def checked_session_id(session_id: str) -> str:
        if not is_session_id(session_id):
            raise Problem(400, "Bad Request", "Malformed session id: expected <substation>.<token>.")
        return session_id

    def session_started(session: dict) -> tuple[Response, dict]:
        return (
            Response(json.dumps(session), status=201, content_type="application/json"),
            {"Location": f"/sessions/{session['session_id']}"},
        )

    def start_session(charge) -> dict | Response:
        """The started session, or the balancer's own answer (a refusal, a problem) to pass on as it is."""
        response = call_balancer("POST", "/assign_substation", charge.to_json())
        if response.status != 201:
            return relay(response, "load balancer")
        if not isinstance(response.body, dict) or "session_id" not in response.body:
            raise Problem(502, "Bad Gateway", "The load balancer gave no usable answer.")
        # "result" is what the first version answered; clients written for it keep working.
        return {"result": "Charging started", **response.body}

    @app.post("/initiate_energy_transfer")
    def initiate_energy_transfer():
        try:
            charge = parse_charge_request(read_json_body(optional=True))
        except InvalidRequest as error:
            raise invalid_request_problem(error) from None
        key = request.headers.get("Idempotency-Key")
        if key is None:
            placed = start_session(charge)
            return placed if isinstance(placed, Response) else session_started(placed)
        if not valid_key(key):
            raise Problem(400, "Bad Request", "Idempotency-Key must be 1 to 255 printable ASCII characters.")
        claim = keys.claim(key, fingerprint(request.get_data()), wait_s=config.balancer_timeout_s + 1)
        if isinstance(claim, Mismatch):
            raise Problem(422, "Unprocessable Content", "This Idempotency-Key was used with a different request body.")
        if isinstance(claim, StillPending):
            raise Problem(409, "Conflict", "A request with this Idempotency-Key is still in progress.", retry_after=1)
        if isinstance(claim, Replay):
            answer, headers = session_started(claim.body)
            return answer, {**headers, "Idempotent-Replayed": "true"}
        try:
            placed = start_session(charge)
        except BaseException:
            keys.release(key)
            raise
        if isinstance(placed, Response):
            keys.release(key)  # no session: a retry with this key should try again
            return placed
        keys.finish(key, 201, placed)
        return session_started(placed)

    @app.get("/sessions/<session_id>")
    def get_session(session_id: str):
        return relay(call_balancer("GET", f"/sessions/{checked_session_id(session_id)}"), "load balancer")

    @app.post("/sessions/<session_id>/stop")
    def stop_session(session_id: str):
        return relay(call_balancer("POST", f"/sessions/{checked_session_id(session_id)}/stop"), "load balancer")

    add_probe_routes(app, lambda: (True, {}))
    add_openapi_route(app, SPEC)
    metrics.initialize(
        [(rule.rule, method) for rule in app.url_map.iter_rules() for method in rule.methods - {"HEAD", "OPTIONS"}]
    )
    return app
