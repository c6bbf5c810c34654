"""HTTP edge of the gateway: validate, forward to the balancer, answer in the balancer's words."""

from __future__ import annotations

import time

from flask import Flask, Response, g, json, request

from charge_request_service import metrics
from charge_request_service.config import GatewayConfig
from grid_common.charge_request import InvalidRequest, is_session_id, parse_charge_request
from grid_common.problems import Problem
from grid_common.upstream import JsonClient, UpstreamError
from grid_common.web import (
    add_probe_routes,
    invalid_request_problem,
    new_app,
    read_json_body,
    relay,
    upstream_failure_problem,
)


def create_app(config: GatewayConfig) -> Flask:
    app = new_app(__name__)
    client = JsonClient(connect_timeout=config.connect_timeout_s, read_timeout=config.balancer_timeout_s)

    @app.before_request
    def _start_timer():
        g.started = time.perf_counter()

    @app.after_request
    def _count(response: Response):
        route = request.url_rule.rule if request.url_rule else "unmatched"
        metrics.REQUESTS.labels(route, request.method, str(response.status_code)).inc()
        metrics.REQUEST_SECONDS.labels(route, request.method).observe(time.perf_counter() - g.started)
        return response

    def call_balancer(method: str, path: str, body: dict | None = None):
        try:
            return client.call(method, f"{config.balancer_url}{path}", body)
        except UpstreamError as error:
            raise upstream_failure_problem(error, "load balancer") from None

    def checked_session_id(session_id: str) -> str:
        if not is_session_id(session_id):
            raise Problem(400, "Bad Request", "Malformed session id: expected <substation>.<token>.")
        return session_id

    @app.post("/initiate_energy_transfer")
    def initiate_energy_transfer():
        try:
            charge = parse_charge_request(read_json_body(optional=True))
        except InvalidRequest as error:
            raise invalid_request_problem(error) from None
        response = call_balancer("POST", "/assign_substation", charge.to_json())
        if response.status != 201:
            return relay(response, "load balancer")
        if not isinstance(response.body, dict) or "session_id" not in response.body:
            raise Problem(502, "Bad Gateway", "The load balancer gave no usable answer.")
        # "result" is what the first version answered; clients written for it keep working.
        session = {"result": "Charging started", **response.body}
        return (
            Response(json.dumps(session), status=201, content_type="application/json"),
            {"Location": f"/sessions/{session['session_id']}"},
        )

    @app.get("/sessions/<session_id>")
    def get_session(session_id: str):
        return relay(call_balancer("GET", f"/sessions/{checked_session_id(session_id)}"), "load balancer")

    @app.post("/sessions/<session_id>/stop")
    def stop_session(session_id: str):
        return relay(call_balancer("POST", f"/sessions/{checked_session_id(session_id)}/stop"), "load balancer")

    add_probe_routes(app, lambda: (True, {}))
    metrics.initialize(
        [(rule.rule, method) for rule in app.url_map.iter_rules() for method in rule.methods - {"HEAD", "OPTIONS"}]
    )
    return app
