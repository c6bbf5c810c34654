"""The gateway's app factory: builds the balancer client and the idempotency store, and wires the routes.
Collaborators that do I/O can be handed in, so that a test needs no socket."""

from __future__ import annotations

from flask import Flask

from charge_request_service import metrics, routes
from charge_request_service.balancer_client import BalancerClient
from charge_request_service.config import GatewayConfig
from charge_request_service.idempotency import KeyStore, open_store
from charge_request_service.openapi import SPEC
from charge_request_service.starting import SessionStarter
from grid_common.openapi import openapi_blueprint
from grid_common.web import new_app, probes_blueprint


def create_app(config: GatewayConfig, *, balancer: BalancerClient | None = None, keys: KeyStore | None = None) -> Flask:
    """`balancer`: the client every call to the balancer goes through; `keys`: where Idempotency-Keys live."""
    app = new_app(__name__)
    balancer = balancer or BalancerClient(
        config.balancer_urls,
        connect_timeout_s=config.connect_timeout_s,
        read_timeout_s=config.balancer_timeout_s,
        connect_retries=config.connect_retries,
    )
    wait_s = config.balancer_timeout_s + 1  # how long a duplicate, or a busy store, is waited for
    keys = keys or open_store(
        redis_url=config.idempotency_redis_url,
        path=config.idempotency_db,
        ttl_s=config.idempotency_ttl_s,
        lease_s=config.lease_s,
        max_keys=config.idempotency_max_keys,
        redis_max_connections=config.idempotency_redis_max_connections,
        pool_wait_s=wait_s,
    )
    starter = SessionStarter(balancer, keys, wait_s=wait_s, attempt_s=config.balancer_timeout_s, lease_s=config.lease_s)
    app.extensions["gateway"] = routes.Context(balancer, starter, dict(config.client_tokens), config.nominal_voltage_v)
    app.register_blueprint(routes.blueprint)
    app.register_blueprint(probes_blueprint(lambda: (True, {})))
    app.register_blueprint(openapi_blueprint(SPEC))
    metrics.instrument(app)
    return app
