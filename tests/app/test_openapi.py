"""Each service's OpenAPI document describes exactly the routes it serves."""

from __future__ import annotations

import re

import pytest

from charge_request_service.app import create_app as create_gateway
from charge_request_service.config import GatewayConfig
from load_balancer.app import create_app as create_balancer
from load_balancer.config import BalancerConfig
from substation_service.app import create_app as create_substation
from substation_service.config import SubstationConfig

APPS = {
    "gateway": lambda: create_gateway(GatewayConfig(balancer_urls=("http://127.0.0.1:9",))),
    "balancer": lambda: create_balancer(BalancerConfig(substations=(("a", "http://127.0.0.1:9"),), start_poller=False)),
    "substation": lambda: create_substation(SubstationConfig(name="a")),
}


def served_operations(app) -> set[tuple[str, str]]:
    operations = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        operations |= {(path, method.lower()) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return operations


@pytest.mark.parametrize("service", sorted(APPS))
def test_the_document_lists_every_route_and_only_those(service):
    app = APPS[service]()
    spec = app.test_client().get("/openapi.json").get_json()
    assert spec["openapi"] == "3.1.0"
    documented = {(path, method) for path, item in spec["paths"].items() for method in item}
    assert documented == served_operations(app)
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            assert operation["responses"], (path, method)
            assert operation.get("summary"), (path, method)
