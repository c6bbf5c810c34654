"""A real Prometheus scrapes the real services: every dashboard panel and every alert rule has data."""

from __future__ import annotations

import json
import math
import re
import shutil
import urllib.parse

import pytest
import yaml

from load_tester.fleet.car import Car
from tests.chargers import ChargerLoop, RejectProfiles
from tests.helpers import call, wait_until
from tools.processes import free_port
from tools.topology import PROMETHEUS_COMPOSE_CONFIG, ROOT

DASHBOARD = json.loads((ROOT / "monitoring/grafana/dashboards/smart-grid.json").read_text())
RULES = yaml.safe_load((ROOT / "monitoring/prometheus/rules/alerts.yml").read_text())
VARIABLES = DASHBOARD["templating"]["list"]
# An alert compares what it watches with a threshold: `<watched> > 0`.
COMPARISON = re.compile(r"(?s)^(?P<watched>.+?)\s*(?:==|!=|>=|<=|>|<)\s*-?[0-9.]+(?:e-?[0-9]+)?$")
LABEL_VALUES = re.compile(r"label_values\((?P<metric>\w+),\s*(?P<label>\w+)\)")
# Sessions that take 11 kW or wait: they do not share, so a substation holds capacity / 11 kW of them.
RIGID = {"min_power_kw": 11, "max_power_kw": 11}
LONG = {"TIME_SCALE": "1"}
GRID_LIMIT_TOKEN = "a-grid-operator-token-for-tests"
SHARING_ALERTS = {"SubstationOverload", "QueueWaitingTooLong", "FairnessLow"}
# The OCPP service polls its substations' feeds and posts meters quickly, for a test.
OCPP = {"FEED_INTERVAL_S": "0.1", "METER_FLUSH_S": "0.2", "CHARGERS_PER_SUBSTATION": "2",
        "FLEET_CHARGERS_PER_SUBSTATION": "0"}  # fmt: skip


def with_variables(expr: str) -> str:
    """A panel's query as Grafana runs it with every value of its variables ("All"): a regex of all
    the values, which `.+` stands for. A repeated panel runs it for one value each, a subset of the same."""
    names = {variable["name"] for variable in VARIABLES}
    return re.sub(r"\$(\w+)", lambda found: ".+" if found[1] in names else found[0], expr)


def watched(expr: str) -> str:
    """What an alert watches: its expression without the comparison with its threshold. It must have data
    whether or not the alert fires, or a misspelt metric or label would pass as an alert that never fires."""
    found = COMPARISON.match(expr.strip())
    return found["watched"] if found else expr


def values_of(variable: dict) -> str:
    """The values a variable offers, `label_values(<metric>, <label>)`, as a PromQL query. Grafana's Prometheus
    data source runs the variable's `query.query` (`definition` is only the editor's label, unknown to the schema)."""
    found = LABEL_VALUES.fullmatch(variable["query"]["query"])
    assert found, f"variable {variable['name']}: label_values(<metric>, <label>)"
    return f"group by ({found['label']}) ({found['metric']})"


PANEL_QUERIES = [(p["title"], with_variables(t["expr"])) for p in DASHBOARD["panels"] for t in p.get("targets", [])]
ALERT_QUERIES = [(r["alert"], watched(r["expr"])) for g in RULES["groups"] for r in g["rules"]]
VARIABLE_QUERIES = [(f"${v['name']}", values_of(v)) for v in VARIABLES]


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, expr: str) -> list:
        reply = call("GET", f"{self.url}/api/v1/query?query={urllib.parse.quote(expr)}")
        assert reply.status == 200 and reply.body["status"] == "success", (expr, reply.body)
        return reply.body["data"]["result"]

    def value(self, expr: str) -> float | None:
        """The value of a query that returns one series; None when it returns none."""
        result = self.query(expr)
        assert len(result) <= 1, (expr, result)
        return float(result[0]["value"][1]) if result else None

    def targets(self) -> list:
        return call("GET", f"{self.url}/api/v1/targets").body["data"]["activeTargets"]

    def alerts(self) -> set[str]:
        """Alerts firing or pending."""
        return {a["labels"]["alertname"] for a in call("GET", f"{self.url}/api/v1/alerts").body["data"]["alerts"]}


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
    """Substations a (22 kW) and b behind the balancer and gateway; a second balancer watches only d; c has
    chargers on OCPP (c-cp1 on OCPP 1.6, which rejects its first two profiles, and c-cp2 on 2.0.1), connected and
    idle: the OCPP service's series exist before any car comes, as under `make up` with its fleet."""
    binary = shutil.which("prometheus")
    assert binary, "prometheus is missing: `apt-get install prometheus` (.ci/run installs it)"
    sizes = (("a", 22), ("b", 44), ("c", 44), ("d", 150), ("e", 100))
    limited = {"e": {"GRID_LIMIT_TOKEN": GRID_LIMIT_TOKEN}}  # e is under a grid operator's limit throughout
    subs = {name: services.substation(name, capacity, **LONG, **limited.get(name, {})) for name, capacity in sizes}
    window = {"limit_kw": 60, "duration_s": 3600}
    auth = {"Authorization": f"Bearer {GRID_LIMIT_TOKEN}"}
    assert call("PUT", f"{subs['e'].url}/grid_limit", window, headers=auth).status == 200
    balancer = services.balancer({"a": subs["a"], "b": subs["b"]})
    lonely_balancer = services.balancer({"d": subs["d"]})
    gateway = services.gateway(balancer.url)
    ocpp = services.ocpp({"c": subs["c"]}, **OCPP)
    wait_until(lambda: call("GET", f"{ocpp.url}/readyz").status == 200, 10)
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
                    "ocpp": [address(ocpp)],
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
    wait_until(lambda: len(prometheus.targets()) == 9 and all(t["health"] == "up" for t in prometheus.targets()), 20)
    with ChargerLoop() as chargers:
        url = f"ws://127.0.0.1:{ocpp.port}/ocpp"
        rejections = RejectProfiles(1)  # its default profile, as it connects
        picky = chargers.connect(url, "c-cp1", "1.6", prepare=rejections)
        chargers.connect(url, "c-cp2", "2.0.1")
        wait_until(lambda: any(p.accepted is False for p in picky.record.profiles), 10)
        wait_until(lambda: prometheus.value('sum(ocpp_profiles_total{result="rejected"})') == 1, 10)
        yield prometheus, gateway, subs, chargers, rejections


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
    prometheus, gateway, subs, chargers, rejections = monitored_grid
    # On an idle suite, before any traffic, no panel may show "No data", and every variable has values.
    assert_every_query_has_data(prometheus, PANEL_QUERIES + VARIABLE_QUERIES)

    # Traffic, then a full grid: a (22 kW) is filled directly, b (44 kW) through the gateway with four
    # sessions of 11 kW, and the gateway answers 503.
    direct = call("POST", f"{subs['a'].url}/begin_charging", {"min_power_kw": 22, "max_power_kw": 22})
    assert direct.status == 201
    started = {direct.body["session"]["session_id"]: "a"}
    replies = [call("POST", f"{gateway.url}/initiate_energy_transfer", RIGID) for _ in range(6)]
    assert [reply.status for reply in replies] == [201] * 4 + [503] * 2
    # Refused for want of room, not for want of a reachable substation: the alert below watches this reason.
    assert [reply.body["title"] for reply in replies[4:]] == ["No capacity"] * 2, [r.body for r in replies[4:]]
    started |= {reply.body["session_id"]: reply.body["substation"] for reply in replies[:4]}
    # A car that asks to wait is queued, and starts when a session ends where it waits: a wait observed.
    queued = call("POST", f"{gateway.url}/initiate_energy_transfer", {**RIGID, "wait": True})
    assert queued.status == 202 and queued.body["state"] == "queued", queued.body
    ending = next(session for session, where in started.items() if where == queued.body["substation"])
    assert call("POST", f"{gateway.url}/sessions/{ending}/stop").status == 200
    session_url = f"{gateway.url}/sessions/{queued.body['session_id']}"
    wait_until(lambda: call("GET", session_url).body["state"] == "charging")
    # Cars that ask to wait start while there is room, and the next one waits on in a queue.
    for _ in range(3):
        waiting = call("POST", f"{gateway.url}/initiate_energy_transfer", {**RIGID, "wait": True})
        assert waiting.status in (201, 202), waiting.body
        if waiting.status == 202:
            break
    assert waiting.status == 202
    call("POST", f"{gateway.url}/initiate_energy_transfer", {"energy_kwh": -1})
    # Cars at both chargers of c: profiles delivered, meters read, and c-cp1 rejects one more (increase() sees
    # none in a series whose first sample is already 1); then c-cp2's connection drops mid-transaction.
    plugged, dropped = chargers.chargers
    rejections.left = 1
    for charger in (plugged, dropped):
        chargers.run(charger.plug(Car(phases=3, max_current_a=32, energy_need_wh=200_000)))
    wait_until(lambda: (prometheus.value("sum(ocpp_profile_delivery_seconds_count)") or 0) >= 1, timeout=10)
    wait_until(lambda: prometheus.value('sum(ocpp_profiles_total{result="rejected"})') == 2, timeout=10)
    wait_until(lambda: (prometheus.value("sum(ocpp_measured_power_watts)") or 0) > 0, timeout=10)
    chargers.run(dropped.disconnect())
    # A substation goes down: the lonely balancer is left with no healthy substation.
    subs["d"].process.stop()

    # Every alert's watched series exists, firing or not.
    assert_every_query_has_data(prometheus, PANEL_QUERIES + ALERT_QUERIES)
    wait_until(lambda: prometheus.value("sum(substation_wait_seconds_count)") == 1, timeout=10)
    full = 'sum(substation_ev_power_watts{substation=~"a|b"}) == sum(substation_capacity_watts{substation=~"a|b"})'
    wait_until(lambda: prometheus.query(full), timeout=10)
    wait_until(lambda: prometheus.value("sum(substation_queue_length)") == 1, timeout=10)
    assert prometheus.value('sum(substation_sessions{state="queued"})') == 1
    waits = [(title, expr) for title, expr in PANEL_QUERIES if "substation_wait_seconds_bucket" in expr]
    assert waits
    for title, expr in waits:  # a number, not only NaN: the wait observed is on the panel
        assert any(math.isfinite(float(series["value"][1])) for series in prometheus.query(expr)), (title, expr)
    refused = 'sum(increase(balancer_rejected_requests_total{reason="no_capacity"}[5m])) > 0'
    wait_until(lambda: prometheus.query(refused), timeout=10)
    rules = call("GET", f"{prometheus.url}/api/v1/rules").body["data"]["groups"][0]["rules"]
    assert {r["name"] for r in rules} == {name for name, _ in ALERT_QUERIES}
    assert all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules]
    delivery = [(title, expr) for title, expr in PANEL_QUERIES if "ocpp_profile_delivery_seconds_bucket" in expr]
    assert delivery
    for title, expr in delivery:
        assert any(math.isfinite(float(series["value"][1])) for series in prometheus.query(expr)), (title, expr)
    wait_until(lambda: prometheus.value("sum(ocpp_chargers_offline_in_transaction)") == 1, timeout=10)
    # A charger offline mid-transaction is pending for its minute; a rejected profile fires at once.
    provoked = {"SessionsRefusedNoCapacity", "SubstationDown", "NoHealthySubstation"}
    provoked |= {"ChargerOfflineInTransaction", "ChargingProfileRejected"}
    try:
        wait_until(lambda: provoked <= prometheus.alerts(), timeout=15)
    except AssertionError:
        pytest.fail(f"alerts neither firing nor pending: {provoked - prometheus.alerts()}")
    # A full grid where every session gets its share is what smart charging aims at: no sharing alert.
    assert prometheus.value("sum(substation_overload_seconds_total)") == 0
    assert not SHARING_ALERTS & prometheus.alerts()
