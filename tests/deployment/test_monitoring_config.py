"""Prometheus configs and alert rules pass promtool; the Grafana dashboard is provisioned and well formed."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tools.topology import (
    PROMETHEUS_COMPOSE_CONFIG,
    PROMETHEUS_KUBERNETES_CONFIG,
    PROMETHEUS_LOCAL_CONFIG,
    ROOT,
    load_compose,
)

MONITORING = ROOT / "monitoring"
DASHBOARD_FILE = MONITORING / "grafana" / "dashboards" / "smart-grid.json"
DATASOURCES_FILE = MONITORING / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS_FILE = MONITORING / "grafana" / "provisioning" / "dashboards" / "smart-grid.yml"
CURRENT_PANEL_TYPES = {"timeseries", "stat", "gauge", "bargauge", "table", "text", "row", "barchart", "piechart"}


def promtool(*args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: `apt-get install prometheus` (.ci/run installs it)"
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60, cwd=ROOT)


@pytest.mark.parametrize(
    "config",
    [PROMETHEUS_COMPOSE_CONFIG, PROMETHEUS_LOCAL_CONFIG, PROMETHEUS_KUBERNETES_CONFIG],
    ids=["compose", "local", "kubernetes"],
)
def test_promtool_accepts_every_scrape_config(config: Path):
    result = promtool("check", "config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 rules found" in result.stdout, "every config loads the alert rules"


def test_alert_rules_pass_their_promtool_unit_tests():
    result = promtool("test", "rules", "monitoring/prometheus/tests/alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_rule_has_a_unit_test():
    rules = yaml.safe_load((MONITORING / "prometheus" / "rules" / "alerts.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    tests = yaml.safe_load((MONITORING / "prometheus" / "tests" / "alerts_test.yml").read_text())
    tested = {case["alertname"] for test in tests["tests"] for case in test["alert_rule_test"]}
    assert (
        alerts
        == tested
        == {"SubstationDown", "SubstationOverloaded", "SessionsRefusedNoCapacity", "NoHealthySubstation"}
    )
    for test in tests["tests"]:
        assert any(case["exp_alerts"] for case in test["alert_rule_test"]), "each test sees its alert fire"


def dashboard() -> dict:
    return json.loads(DASHBOARD_FILE.read_text())


def datasource_uid() -> str:
    (source,) = yaml.safe_load(DATASOURCES_FILE.read_text())["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    return source["uid"]


def test_dashboard_panels_are_current_types_on_the_provisioned_data_source():
    uid = datasource_uid()
    panels = dashboard()["panels"]
    assert all(p["type"] in CURRENT_PANEL_TYPES for p in panels), "no legacy graph panels"
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": uid}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid and target["expr"].strip(), panel["title"]


def test_dashboard_has_the_panels_people_asked_for():
    titles = {p["title"] for p in dashboard()["panels"]}
    for wanted in (
        "EV sessions per substation",
        "Power against capacity",
        "Utilization",
        "Balancer decisions per second",
        "Gateway requests and errors per second",
        "Gateway latency",
        "Refused sessions per second",
        "Substations up",
        "Imbalance",
    ):
        assert wanted in titles
    first_version = next(p for p in dashboard()["panels"] if p["title"] == "EV sessions per substation")
    assert "substation_load" in first_version["targets"][0]["expr"], "the original dashboards' metric, kept"


def test_dashboard_panels_do_not_overlap():
    taken: set[tuple[int, int]] = set()
    for panel in dashboard()["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
        cells = {
            (x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, panel["title"]
        taken |= cells
    assert len({p["id"] for p in dashboard()["panels"]}) == len(dashboard()["panels"])


def test_grafana_provisioning_is_mounted_where_grafana_reads_it():
    grafana = load_compose()["services"]["grafana"]
    mounts = dict(
        volume.rsplit(":", 2)[:2] if volume.count(":") == 2 else volume.split(":") for volume in grafana["volumes"]
    )
    assert mounts["./monitoring/grafana/provisioning"] == "/etc/grafana/provisioning"
    dashboards_dir = mounts["./monitoring/grafana/dashboards"]
    (provider,) = yaml.safe_load(PROVIDERS_FILE.read_text())["providers"]
    assert provider["options"]["path"] == dashboards_dir
    env = grafana["environment"]
    assert env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"] == f"{dashboards_dir}/{DASHBOARD_FILE.name}"
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true" and env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    prometheus = load_compose()["services"]["prometheus"]
    assert "./monitoring/prometheus:/etc/prometheus:ro" in prometheus["volumes"]
