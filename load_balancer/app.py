"""HTTP edge of the balancer: thin routes over the view, the strategy and the assigner."""

from __future__ import annotations

import hmac
import os
import secrets
import time

from flask import Flask, Response, json, request

from grid_common.charge_request import (
    BALANCER_ID,
    OTHERS_EV_POWER_CONDITION,
    InvalidRequest,
    is_session_id,
    parse_charge_request,
    substation_of,
)
from grid_common.openapi import add_openapi_route
from grid_common.problems import Problem
from grid_common.upstream import JsonClient, UpstreamError, UpstreamUnavailable
from grid_common.web import (
    add_probe_routes,
    invalid_request_problem,
    new_app,
    read_json_body,
    relay,
    upstream_failure_problem,
)
from load_balancer import metrics
from load_balancer.assignment import Assigner, NotPlaced
from load_balancer.config import BalancerConfig, parse_registration
from load_balancer.discovery import Discovery
from load_balancer.openapi import SPEC
from load_balancer.poller import Poller
from load_balancer.strategies import make_strategy
from load_balancer.view import GridView, SubstationView


def create_app(config: BalancerConfig) -> Flask:
    app = new_app(__name__)
    view = GridView(list(config.substations), config.unhealthy_after_failures)
    # Every call says which balancer process asks (each gunicorn worker keeps a view of its own), so that
    # substations can tell this one's sessions from other balancers'.
    client = JsonClient(
        connect_timeout=config.connect_timeout_s,
        read_timeout=config.admission_timeout_s,
        headers={BALANCER_ID: f"{secrets.token_hex(6)}-{os.getpid()}"},
    )
    strategy = make_strategy(config.strategy)

    def begin_charging(substation: SubstationView, body: dict, timeout: float, others_at_most_kw: float | None):
        condition = {} if others_at_most_kw is None else {OTHERS_EV_POWER_CONDITION: f"{others_at_most_kw:.6f}"}
        return client.call("POST", f"{substation.url}/begin_charging", body, timeout=timeout, headers=condition)

    assigner = Assigner(
        view,
        strategy,
        begin_charging,
        admission_timeout_s=config.admission_timeout_s,
        deadline_s=config.assign_deadline_s,
    )
    discovery = None
    if config.substations_dns:
        host, _, port = config.substations_dns.rpartition(":")
        discovery = Discovery(
            view, client, host, int(port), timeout_s=config.poll_timeout_s, strategy=strategy.name, wall_clock=time.time
        )
    poller = Poller(
        view,
        client,
        interval_s=config.poll_interval_s,
        timeout_s=config.poll_timeout_s,
        discover=discovery.run_once if discovery else None,
        discovery_interval_s=config.discovery_interval_s,
    )
    app.extensions.update(grid_view=view, poller=poller)
    metrics.initialize([name for name, _ in config.substations], strategy.name)
    if config.start_poller:
        poller.start()

    @app.post("/assign_substation")
    def assign_substation():
        try:
            charge = parse_charge_request(read_json_body(optional=True))
        except InvalidRequest as error:
            raise invalid_request_problem(error) from None
        with metrics.ASSIGN_SECONDS.time():
            try:
                placed = assigner.assign(charge)
            except NotPlaced as refusal:
                if refusal.reason == "no_capacity":
                    title, detail = "No capacity", "No substation has room for this session now."
                else:
                    title, detail = "No substation available", "No substation is reachable now."
                raise Problem(503, title, detail, retry_after=refusal.retry_after_s, tried=refusal.attempts) from None
        session = placed.session
        return (
            Response(json.dumps(session), status=201, content_type="application/json"),
            {"Location": f"/sessions/{session['session_id']}"},
        )

    @app.get("/")
    def live_page():
        # One self-contained HTML file (static/index.html) that polls /substations from the browser.
        page = app.send_static_file("index.html")
        page.headers["Cache-Control"] = "no-cache"
        return page

    @app.get("/substations")
    def substations():
        with view.lock:
            listed = [v.to_json() for v in view.all()]
        return {"strategy": strategy.name, "substations": listed}

    def owner_of(session_id: str) -> SubstationView:
        if not is_session_id(session_id):
            raise Problem(400, "Bad Request", "Malformed session id: expected <substation>.<token>.")
        substation = view.get(substation_of(session_id))
        if substation is None:
            raise Problem(404, "Not Found", f"No session {session_id}: its substation is not known here.")
        return substation

    def forward(method: str, substation: SubstationView, path: str):
        try:
            response = client.call(method, f"{substation.url}{path}", timeout=config.admission_timeout_s)
        except UpstreamError as error:
            view.record_failure(substation.name, certain=isinstance(error, UpstreamUnavailable))
            metrics.UPSTREAM_FAILURES.labels(substation.name, "session", error.kind).inc()
            raise upstream_failure_problem(error, f"substation {substation.name}") from None
        return relay(response, f"substation {substation.name}")

    @app.get("/sessions/<session_id>")
    def get_session(session_id: str):
        return forward("GET", owner_of(session_id), f"/sessions/{session_id}")

    @app.post("/sessions/<session_id>/stop")
    def stop_session(session_id: str):
        substation = owner_of(session_id)
        response = forward("POST", substation, f"/sessions/{session_id}/stop")
        if response.status_code == 200:
            # The stopped session's power is free now: let the next decision know without waiting for a poll.
            poller.refresh(substation)
        return response

    def require_topology_token() -> None:
        if not config.topology_token:
            raise Problem(403, "Forbidden", "Changing the topology is off: the balancer has no TOPOLOGY_TOKEN.")
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Problem(
                401,
                "Unauthorized",
                "Send Authorization: Bearer <TOPOLOGY_TOKEN>.",
                headers={"WWW-Authenticate": 'Bearer realm="topology"'},
            )
        if not hmac.compare_digest(token.encode(), config.topology_token.encode()):
            raise Problem(403, "Forbidden", "The bearer token is not the balancer's TOPOLOGY_TOKEN.")

    @app.post("/substations")
    def register_substation():
        require_topology_token()
        try:
            name, url = parse_registration(read_json_body(optional=False))
        except InvalidRequest as error:
            raise invalid_request_problem(error) from None
        try:
            added = view.add(name, url)
        except KeyError:
            raise Problem(409, "Conflict", f"A substation named {name} is already known.") from None
        metrics.initialize([name], strategy.name)
        poller.refresh(added)  # its state now, rather than at the next poll
        with view.lock:
            return added.to_json(), 201, {"Location": f"/substations/{name}"}

    @app.delete("/substations/<name>")
    def remove_substation(name: str):
        require_topology_token()
        try:
            view.remove(name)
        except KeyError:
            raise Problem(404, "Not Found", f"No substation named {name}.") from None
        metrics.forget(name, strategy.name)
        return "", 204

    def readiness():
        healthy = view.healthy_count()
        return healthy > 0, {"healthy_substations": healthy, "substations": len(view.all())}

    add_probe_routes(app, readiness)
    add_openapi_route(app, SPEC)
    return app
