"""A real Prometheus scrapes the real services: every dashboard panel and every alert rule has data."""

from __future__ import annotations

import json
import shutil
import urllib.parse

import pytest
import yaml

from tests.helpers import call, wait_until
from tools.processes import free_port
from tools.topology import PROMETHEUS_COMPOSE_CONFIG, ROOT

DASHBOARD = json.loads((ROOT / "monitoring/grafana/dashboards/smart-grid.json").read_text())
RULES = yaml.safe_load((ROOT / "monitoring/prometheus/rules/alerts.yml").read_text())
PANEL_QUERIES = [(p["title"], t["expr"]) for p in DASHBOARD["panels"] for t in p["targets"]]
ALERT_QUERIES = [(r["alert"], r["expr"]) for g in RULES["groups"] for r in g["rules"]]
LONG = {"TIME_SCALE": "1"}


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, expr: str) -> list:
        reply = call("GET", f"{self.url}/api/v1/query?query={urllib.parse.quote(expr)}")
        assert reply.status == 200 and reply.body["status"] == "success", (expr, reply.body)
        return reply.body["data"]["result"]

    def targets(self) -> list:
        return call("GET", f"{self.url}/api/v1/targets").body["data"]["activeTargets"]


def scrape_config(targets: dict[str, list[str]]) -> dict:
    """The compose config with its own jobs and rules, pointed at this test's ports, scraping every second."""
    config = yaml.safe_load(PROMETHEUS_COMPOSE_CONFIG.read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": targets[job["job_name"]]}]
    config["rule_files"] = [str(PROMETHEUS_COMPOSE_CONFIG.parent / pattern) for pattern in config["rule_files"]]
    return config


@pytest.fixture
def monitored_grid(services, tmp_path):
    """Substations a (22 kW) and b behind the balancer and gateway; a second balancer watches only d."""
    binary = shutil.which("prometheus")
    assert binary, "prometheus is missing: `apt-get install prometheus` (.ci/run installs it)"
    subs = {name: services.substation(name, capacity, **LONG) for name, capacity in (("a", 22), ("b", 44), ("d", 150))}
    balancer = services.balancer({"a": subs["a"], "b": subs["b"]})
    lonely_balancer = services.balancer({"d": subs["d"]})
    gateway = services.gateway(balancer.url)
    port = free_port()
    config = tmp_path / "prometheus.yml"
    address = lambda service: f"127.0.0.1:{service.port}"  # noqa: E731
    config.write_text(
        yaml.safe_dump(
            scrape_config(
                {
                    "gateway": [address(gateway)],
                    "balancer": [address(balancer), address(lonely_balancer)],
                    "substations": [address(s) for s in subs.values()],
                }
            )
        )
    )
    services.run(
        "prometheus",
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        {},
        f"http://127.0.0.1:{port}/-/ready",
    )
    prometheus = Prometheus(f"http://127.0.0.1:{port}")
    wait_until(lambda: len(prometheus.targets()) == 6 and all(t["health"] == "up" for t in prometheus.targets()), 20)
    return prometheus, gateway, subs


def assert_every_query_has_data(prometheus: Prometheus, queries: list[tuple[str, str]]) -> None:
    def missing():
        return [(title, expr) for title, expr in queries if not prometheus.query(expr)]

    empty = missing()
    if empty:  # rate() needs two scrapes in its window: give Prometheus a few more seconds before failing
        try:
            wait_until(lambda: not missing(), timeout=15, interval=0.5)
        except AssertionError:
            pytest.fail(f"queries without data: {missing()}")


def test_every_panel_and_alert_has_data(monitored_grid):
    prometheus, gateway, subs = monitored_grid
    # On an idle suite, before any traffic, no panel may show "No data".
    assert_every_query_has_data(prometheus, PANEL_QUERIES)

    # Traffic, then a full grid: a is filled directly, b through the gateway, until the gateway answers 503.
    assert call("POST", f"{subs['a'].url}/begin_charging", {"max_power_kw": 22}).status == 201
    statuses = [call("POST", f"{gateway.url}/initiate_energy_transfer").status for _ in range(6)]
    assert statuses == [201] * 4 + [503] * 2
    call("POST", f"{gateway.url}/initiate_energy_transfer", {"energy_kwh": -1})
    # A substation goes down: the lonely balancer is left with no healthy substation.
    subs["d"].process.stop()

    assert_every_query_has_data(prometheus, PANEL_QUERIES + ALERT_QUERIES)
    by_substation = {r["metric"]["substation"]: float(r["value"][1]) for r in prometheus.query("substation_load")}
    assert by_substation == {"a": 1, "b": 4, "d": 0} or by_substation == {"a": 1, "b": 4}
    refused = prometheus.query('sum(increase(balancer_rejected_requests_total{reason="no_capacity"}[5m]))')
    assert float(refused[0]["value"][1]) > 0
    rules = call("GET", f"{prometheus.url}/api/v1/rules").body["data"]["groups"][0]["rules"]
    assert {r["name"] for r in rules} == {name for name, _ in ALERT_QUERIES}
    assert all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules]
    firing_or_pending = {
        a["labels"]["alertname"] for a in call("GET", f"{prometheus.url}/api/v1/alerts").body["data"]["alerts"]
    }
    assert {"SessionsRefusedNoCapacity", "SubstationOverloaded"} <= firing_or_pending
