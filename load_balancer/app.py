"""The balancer's app factory: builds the grid view, the strategy, the assigner and the poller, and wires
the routes to them. Collaborators that do I/O can be handed in, so that a test needs no socket."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from flask import Flask

from grid_common.openapi import openapi_blueprint
from grid_common.web import new_app, probes_blueprint
from load_balancer import metrics
from load_balancer.assignment import Assigner
from load_balancer.config import BalancerConfig
from load_balancer.discovery import Discovery, Resolve, resolve_ipv4
from load_balancer.grid_view import GridView
from load_balancer.ocpp_client import OcppClient
from load_balancer.openapi import SPEC
from load_balancer.poller import Poller
from load_balancer.routes import Context, assign, grid, sessions, topology
from load_balancer.strategies import make_strategy
from load_balancer.substation_client import SubstationClient
from load_balancer.substation_urls import SubstationUrls


def substation_urls(config: BalancerConfig, resolve: Resolve) -> SubstationUrls:
    """Where a registered substation may be: SUBSTATION_NETWORKS, or the networks of the configured topology."""
    if config.substation_networks:
        return SubstationUrls([ipaddress.ip_network(n, strict=False) for n in config.substation_networks])
    # A URL without a host (none passes parse_substations) is left out: resolving None would give loopback.
    hosts = [host for _, url in config.substations if (host := urlsplit(url).hostname) is not None]
    if config.substations_dns:
        hosts.append(config.substations_dns.rpartition(":")[0])
    return SubstationUrls.of_topology(hosts, resolve=lambda host: sorted(resolve(host, 80)))


def create_app(
    config: BalancerConfig,
    *,
    substations: SubstationClient | None = None,
    resolve: Resolve = resolve_ipv4,
    ocpp: OcppClient | None = None,
) -> Flask:
    """`substations`: the client every call to a substation goes through; `resolve`: DNS, for SUBSTATIONS_DNS;
    `ocpp`: the client of the OCPP service (by default one for OCPP_URL, if set)."""
    app = new_app(__name__)
    grid_view = GridView(list(config.substations), config.unhealthy_after_failures)
    urls = substation_urls(config, resolve)
    substations = substations or SubstationClient(
        connect_timeout_s=config.connect_timeout_s,
        read_timeout_s=config.admission_timeout_s,
        registered_address_check=urls.address_problem,
    )
    strategy = make_strategy(config.strategy)
    assigner = Assigner(
        grid_view,
        strategy,
        substations,
        admission_timeout_s=config.admission_timeout_s,
        deadline_s=config.assign_deadline_s,
    )
    discovery = None
    if config.substations_dns:
        host, _, port = config.substations_dns.rpartition(":")
        discovery = Discovery(
            grid_view,
            substations,
            host,
            int(port),
            timeout_s=config.poll_timeout_s,
            strategy=strategy.name,
            resolve=resolve,
        )
    poller = Poller(
        grid_view,
        substations,
        interval_s=config.poll_interval_s,
        timeout_s=config.poll_timeout_s,
        discover=discovery.run_once if discovery else None,
        discovery_interval_s=config.discovery_interval_s,
    )
    if ocpp is None and config.ocpp_url:
        ocpp = OcppClient(config.ocpp_url, connect_timeout_s=config.connect_timeout_s)
    app.extensions["balancer"] = Context(config, grid_view, strategy, substations, assigner, poller, urls, ocpp)
    metrics.initialize([name for name, _ in config.substations], strategy.name)
    for blueprint in (assign.blueprint, sessions.blueprint, grid.blueprint, topology.blueprint):
        app.register_blueprint(blueprint)

    def readiness():
        healthy = grid_view.healthy_count()
        return healthy > 0, {"healthy_substations": healthy, "substations": len(grid_view.all())}

    app.register_blueprint(probes_blueprint(readiness))
    app.register_blueprint(openapi_blueprint(SPEC))
    if config.start_poller:
        poller.start()
    return app
