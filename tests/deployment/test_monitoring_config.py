"""Prometheus configs and alert rules pass promtool; the Grafana dashboard is provisioned and well formed."""

from __future__ import annotations

import json
import re
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
    assert "10 rules found" in result.stdout, "every config loads the alert rules"


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
        == {
            "SubstationDown",
            "SubstationOverload",
            "QueueWaitingTooLong",
            "FairnessLow",
            "SessionsRefusedNoCapacity",
            "NoHealthySubstation",
            "SubstationJournalDown",
            "ClockSkew",
            "ChargerOfflineInTransaction",
            "ChargingProfileRejected",
        }
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
        if panel["type"] == "row":
            assert "targets" not in panel, "a row only groups the panels below it"
            continue
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid and target["expr"].strip(), panel["title"]
    for variable in dashboard()["templating"]["list"]:
        assert variable["datasource"] == {"type": "prometheus", "uid": uid}, variable["name"]


def test_dashboard_variables_are_defined_where_used():
    defined = {variable["name"] for variable in dashboard()["templating"]["list"]}
    for panel in dashboard()["panels"]:
        used = set(re.findall(r"\$(\w+)", " ".join([panel["title"], *queries(panel).splitlines()])))
        assert used <= defined, panel["title"]
        if "repeat" in panel:
            assert panel["repeat"] in defined, panel["title"]


def queries(panel: dict) -> str:
    return "\n".join(target["expr"] for target in panel.get("targets", []))


def panel_querying(pattern: str, panel_type: str = "timeseries") -> dict:
    """The first panel of `panel_type` with a query that matches `pattern`."""
    found = [p for p in dashboard()["panels"] if p["type"] == panel_type and re.search(pattern, queries(p))]
    assert found, f"a {panel_type} panel querying {pattern}"
    return found[0]


# Queries that read EV power, background and capacity alike, in any order.
EV_BACKGROUND_AND_CAPACITY = (
    r"(?s)^(?=.*substation_ev_power_watts)(?=.*substation_background_power_watts)(?=.*substation_capacity_watts)"
)


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
    # Smart charging: how each substation shares its power, who waits and how long, and how fairly.
    sharing = panel_querying(EV_BACKGROUND_AND_CAPACITY)
    assert sharing["fieldConfig"]["defaults"]["custom"]["stacking"]["mode"] == "normal"
    assert panel_querying(r"substation_queue_length")
    by_state = panel_querying(r"by \(state\) \(substation_sessions\)")
    assert by_state["fieldConfig"]["defaults"]["custom"]["stacking"]["mode"] == "normal"
    waits = queries(panel_querying(r"substation_wait_seconds_bucket"))
    for quantile in ("0.5", "0.95"):
        assert re.search(rf"histogram_quantile\({quantile}, .*\(rate\(substation_wait_seconds_bucket\[\w+\]\)", waits)
    fairness = panel_querying(r"substation_fairness_jain_ratio")
    assert "by (substation, priority)" in queries(fairness), "per substation and priority"
    overload = panel_querying(r"substation_overload_seconds_total", "stat")
    assert overload["fieldConfig"]["defaults"]["thresholds"]["steps"][0]["color"] == "green", "it should read 0"
    assert panel_querying(r"substation_energy_delivered_joules_total", "stat")


def overrides_of(panel: dict, ref_id: str) -> dict:
    """What a panel's overrides set for one of its queries."""
    return {
        prop["id"]: prop["value"]
        for override in panel["fieldConfig"]["overrides"]
        if override["matcher"] == {"id": "byFrameRefID", "options": ref_id}
        for prop in override["properties"]
    }


def test_each_substation_stacks_ev_background_and_free_power_under_its_capacity():
    sharing = panel_querying(EV_BACKGROUND_AND_CAPACITY)
    assert sharing["repeat"] == "substation", "one panel per substation"
    assert sharing["fieldConfig"]["defaults"]["unit"] == "watt", "every series in watts"
    ref_of = {
        tuple(sorted(set(re.findall(r"substation_\w+_watts", target["expr"])))): target["refId"]
        for target in sharing["targets"]
    }
    capacity = ref_of[("substation_capacity_watts",)]
    stacked = [
        ref_of[("substation_background_power_watts",)],
        ref_of[("substation_ev_power_watts",)],
        ref_of[("substation_background_power_watts", "substation_capacity_watts", "substation_ev_power_watts")],
    ]
    free = next(t["expr"] for t in sharing["targets"] if t["refId"] == stacked[-1])
    assert re.search(r"substation_capacity_watts\S* - substation_\w+_watts\S* - substation_\w+_watts", free)
    for ref_id in stacked:
        assert overrides_of(sharing, ref_id).get("custom.stacking", {"mode": "normal"})["mode"] == "normal"
    assert overrides_of(sharing, capacity)["custom.stacking"] == {"mode": "none"}, "capacity: a line, not stacked"
    assert overrides_of(sharing, capacity)["custom.fillOpacity"] == 0


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


def test_the_chargers_row_shows_the_ocpp_service():
    """Below the grid, a row of its own: chargers connected by protocol, measured against allocated power per
    substation, how fast profiles reach chargers, the messages chargers send, and profiles rejected."""
    panels = dashboard()["panels"]
    (row,) = [p for p in panels if p["type"] == "row"]
    assert row["title"] == "Chargers (OCPP)" and row["collapsed"] is False and row["panels"] == []
    below = [p for p in panels if p["gridPos"]["y"] > row["gridPos"]["y"]]
    assert below and all(re.search(r"\bocpp_", queries(p)) for p in below), "the row holds the OCPP panels"
    assert all(p["gridPos"]["y"] < row["gridPos"]["y"] for p in panels if p not in below and p is not row)
    assert "by (protocol)" in queries(panel_querying(r"ocpp_chargers_connected"))
    power = panel_querying(r"ocpp_measured_power_watts")
    assert re.search(r"sum by \(substation\) \(ocpp_allocated_power_watts\)", queries(power))
    assert "by (substation)" in queries(power).split("\n")[0] and power["fieldConfig"]["defaults"]["unit"] == "watt"
    delivery = queries(panel_querying(r"ocpp_profile_delivery_seconds_bucket"))
    for quantile in ("0.5", "0.99"):
        assert re.search(
            rf"histogram_quantile\({quantile}, sum by \(le\) \(rate\(ocpp_profile_delivery_seconds", delivery
        )
    assert "by (action, result)" in queries(panel_querying(r"ocpp_messages_total"))
    rejected = panel_querying(r'ocpp_profiles_total\{result="rejected"\}', "stat")
    assert rejected["fieldConfig"]["defaults"]["thresholds"]["steps"][0]["color"] == "green", "it should read 0"
    assert rejected["fieldConfig"]["defaults"]["noValue"] == "0", "no rejection yet is 0, not No data"
