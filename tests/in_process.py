"""A whole grid in this process: each service's real Flask app, their calls to each other delivered by a
WsgiTransport (tests/fakes.py). Fast, and no port, no process: for the HTTP contract of every route."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import Flask

from charge_request_service.app import create_app as create_gateway
from charge_request_service.balancer_client import BalancerClient
from charge_request_service.config import GatewayConfig
from load_balancer.app import create_app as create_balancer
from load_balancer.config import BalancerConfig
from load_balancer.substation_client import SubstationClient
from substation_service.app import create_app as create_substation
from substation_service.config import SubstationConfig
from tests.fakes import Clock, WsgiTransport

BALANCER_URL = "http://balancer.test"


def substation_url(name: str) -> str:
    return f"http://{name}.test"


@dataclass
class InProcessGrid:
    transport: WsgiTransport
    clock: Clock
    substations: dict[str, Flask] = field(default_factory=dict)
    balancer: Flask | None = None
    gateway: Flask | None = None

    def poll(self) -> None:
        """The balancer reads every substation's load now, as its poller does when a report is due."""
        balancer = self.balancer.extensions["balancer"]
        for substation in balancer.grid_view.all():
            balancer.poller.refresh(substation)


def in_process_grid(
    capacities: dict[str, float] | None = None,
    *,
    substation: dict | None = None,
    balancer: dict | None = None,
    gateway: dict | None = None,
) -> InProcessGrid:
    """Substations (of `capacities`, no background demand, sessions an hour long), a balancer that has
    polled them once, and a gateway; each config's fields can be changed by keyword."""
    capacities = capacities or {"substation1": 150, "substation2": 150, "substation3": 300}
    grid = InProcessGrid(WsgiTransport(), Clock())
    for name, capacity in capacities.items():
        settings = {"capacity_kw": capacity, "background_peak_fraction": 0, "time_scale": 1, **(substation or {})}
        config = SubstationConfig(name=name, **settings)
        grid.substations[name] = create_substation(config, clock=grid.clock)
        grid.transport.serve(substation_url(name), grid.substations[name])
    balancer_config = BalancerConfig(
        substations=tuple((name, substation_url(name)) for name in capacities),
        start_poller=False,
        **(balancer or {}),
    )
    substations = SubstationClient(connect_timeout_s=0.5, read_timeout_s=2, transport=grid.transport)
    grid.balancer = create_balancer(balancer_config, substations=substations)
    grid.transport.serve(BALANCER_URL, grid.balancer)
    grid.poll()
    gateway_config = GatewayConfig(balancer_urls=(BALANCER_URL,), **(gateway or {}))
    client = BalancerClient(
        gateway_config.balancer_urls,
        connect_timeout_s=gateway_config.connect_timeout_s,
        read_timeout_s=gateway_config.balancer_timeout_s,
        connect_retries=gateway_config.connect_retries,
        transport=grid.transport,
        sleep=lambda seconds: None,
    )
    grid.gateway = create_gateway(gateway_config, balancer=client)
    return grid
