"""docker-compose.yml, the Dockerfile, `make up` and the Prometheus configs describe one topology.

No Docker engine runs where these tests run, so this is how we know compose would run what we test.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from charge_request_service.config import GatewayConfig
from load_balancer.config import BalancerConfig
from load_tester.fleet.status import FleetEnvironment
from ocpp_service.config import OcppConfig
from substation_service.config import SubstationConfig
from tools.topology import (
    LOCAL_VOLUMES,
    PROMETHEUS_COMPOSE_CONFIG,
    PROMETHEUS_KUBERNETES_CONFIG,
    PROMETHEUS_LOCAL_CONFIG,
    ROOT,
    job_targets,
    kubernetes_prometheus_config,
    load_compose,
    local_prometheus_config,
    local_services,
    localize,
    localize_paths,
    published_ports,
    volume_mounts,
)

COMPOSE = load_compose()
SERVICES = COMPOSE["services"]
APP_SERVICES = {name: s for name, s in SERVICES.items() if "build" in s}
SUBSTATIONS = ["substation1", "substation2", "substation3"]
CONFIG_OF_TARGET = {
    "substation": SubstationConfig,
    "balancer": BalancerConfig,
    "gateway": GatewayConfig,
    "ocpp": OcppConfig,
    "fleet": FleetEnvironment,
}
# The simulated fleet drives the grid; it is no part of it, and has no metrics of its own.
GRID_SERVICES = {name: s for name, s in APP_SERVICES.items() if s["build"]["target"] != "fleet"}


def dockerfile_stages() -> dict[str, dict]:
    """Each build stage of the Dockerfile: its base image, user and CMD."""
    stages: dict[str, dict] = {}
    current = None
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if match := re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line):
            current = match.group(2) or match.group(1)
            base = stages.get(match.group(1), {})
            stages[current] = {"from": match.group(1), "user": base.get("user"), "cmd": base.get("cmd")}
        elif line.startswith("USER") and current:
            stages[current]["user"] = line.split()[1]
        elif line.startswith("CMD") and current:
            stages[current]["cmd"] = json.loads(line[3:])
    return stages


def test_the_documented_ports():
    ports = published_ports(COMPOSE)
    assert ports[("gateway", 6000)] == 6000
    assert ports[("balancer", 7000)] == 7000
    assert [ports[(name, 5000)] for name in SUBSTATIONS] == [5001, 5002, 5003]
    assert ports[("prometheus", 9090)] == 9090
    assert ports[("grafana", 3000)] == 3000


def test_substations_differ_in_capacity_so_utilization_balancing_shows():
    capacities = {SERVICES[name]["environment"]["CAPACITY_KW"] for name in SUBSTATIONS}
    assert len(capacities) > 1


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_compose_runs_the_images_own_command_as_non_root(name):
    service = APP_SERVICES[name]
    stage = dockerfile_stages()[service["build"]["target"]]
    assert service["command"] == stage["cmd"], "compose and the image must run the same command"
    assert stage["user"] and stage["user"].split(":")[0] not in {"root", "0"}
    assert service["read_only"] is True
    assert ":" not in service["image"], "built here from the source, not pulled: a name, no version to go stale"


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_every_service_environment_is_valid_configuration(name, tmp_path):
    """Compose's environment, with its volumes where `make up` puts them (the config checks folders exist)."""
    service = APP_SERVICES[name]
    config_class = CONFIG_OF_TARGET[service["build"]["target"]]
    local = next(s for s in local_services(COMPOSE, volumes_root=tmp_path) if s.name == name)
    for folder in local.data_dirs:
        folder.mkdir()
    config_class.from_env(local.env)


def test_substation_sessions_live_in_a_volume_in_compose_and_under_make_up():
    for name in SUBSTATIONS:
        service = SERVICES[name]
        assert service["environment"]["SESSION_DB"] == "/data/sessions.sqlite3"
        assert service["volumes"] == [f"{name}-data:/data"] and f"{name}-data" in COMPOSE["volumes"]
        local = next(s for s in local_services(COMPOSE) if s.name == name)
        assert local.data_dirs == [ROOT / ".run" / "volumes" / f"{name}-data"]
        assert local.env["SESSION_DB"] == str(ROOT / ".run" / "volumes" / f"{name}-data" / "sessions.sqlite3")
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "mkdir /data && chown 10001:10001 /data" in dockerfile, "a named volume takes the folder's owner"


def test_healthchecks_and_start_order():
    for name, service in APP_SERVICES.items():
        test = service["healthcheck"]["test"]
        assert test[:4] == ["CMD", "python", "-m", "grid_common.healthcheck"], name
        assert test[-1].endswith("/readyz")
        bind_port = service["environment"]["BIND"].rsplit(":", 1)[1]
        assert f":{bind_port}/" in test[-1], f"{name} healthcheck probes the port it binds"
    for name, service in SERVICES.items():
        for dependency, condition in service.get("depends_on", {}).items():
            # A one-shot service (grafana-password) is waited for until it has done its work.
            once = SERVICES[dependency].get("restart") == "no"
            expected = "service_completed_successfully" if once else "service_healthy"
            assert condition == {"condition": expected}, (name, dependency)
    assert set(SERVICES["balancer"]["depends_on"]) == set(SUBSTATIONS)
    assert set(SERVICES["gateway"]["depends_on"]) == {"balancer", "redis"}


def test_balancer_and_gateway_point_at_the_compose_services():
    listed = BalancerConfig.from_env(SERVICES["balancer"]["environment"]).substations
    assert listed == tuple((name, f"http://{name}:5000") for name in SUBSTATIONS)
    assert SERVICES["gateway"]["environment"]["BALANCER_URL"] == "http://balancer:7000"


def test_make_up_runs_the_compose_commands_and_environment_on_loopback():
    ports = published_ports(COMPOSE)
    local = {service.name: service for service in local_services(COMPOSE)}
    assert set(local) == set(APP_SERVICES)
    for name, service in APP_SERVICES.items():
        runner = local[name]
        assert runner.command == service["command"]
        compose_env = {k: str(v) for k, v in service["environment"].items()}
        assert set(runner.env) == set(compose_env)
        for key, value in compose_env.items():
            mounts = volume_mounts(service, COMPOSE, LOCAL_VOLUMES)
            if key == "BIND":
                expected = f"127.0.0.1:{runner.port}"
            elif key.endswith("_BIND"):  # another port of it (the OCPP service's API): on loopback, as published
                expected = f"127.0.0.1:{ports[(name, int(value.rsplit(':', 1)[1]))]}"
            else:
                expected = localize_paths(localize(value, ports), mounts)
            assert runner.env[key] == expected, (name, key)
    assert local["balancer"].env["SUBSTATIONS"] == (
        "substation1=http://127.0.0.1:5001,substation2=http://127.0.0.1:5002,substation3=http://127.0.0.1:5003"
    )
    order = [s.name for s in local_services(COMPOSE)]
    assert order.index("balancer") > max(order.index(s) for s in SUBSTATIONS)
    assert order.index("gateway") > order.index("balancer")


def scrape_targets(path: Path) -> set[str]:
    """Every `host:port` a config scrapes: static targets, and names found by DNS (each replica)."""
    config = yaml.safe_load(path.read_text())
    return {f"{host}:{port}" for job in config["scrape_configs"] for host, port in job_targets(job)}


def test_gateway_and_balancer_can_be_scaled_with_compose():
    """`docker compose up --scale gateway=2 --scale balancer=2`: ports, names and scraping all allow it."""
    config = yaml.safe_load(PROMETHEUS_COMPOSE_CONFIG.read_text())
    discovered = {job["job_name"]: job["dns_sd_configs"] for job in config["scrape_configs"] if "dns_sd_configs" in job}
    assert set(discovered) == {"gateway", "balancer"}, "every replica is scraped, not one at random"
    for name, port in (("gateway", 6000), ("balancer", 7000)):
        service = SERVICES[name]
        assert "container_name" not in service, "a fixed name allows one container"
        assert service["ports"] == [f"{port}-{port + 9}:{port}"], "each replica needs a host port of its own"
        assert discovered[name] == [{"names": [name], "type": "A", "port": port, "refresh_interval": "5s"}]
    assert SERVICES["gateway"]["environment"]["BALANCER_URL"] == "http://balancer:7000", "resolves to every replica"
    assert not any("container_name" in service for service in SERVICES.values())


def test_prometheus_scrapes_every_service_in_both_configs():
    compose_targets = scrape_targets(PROMETHEUS_COMPOSE_CONFIG)
    expected = {f"{name}:{s['environment']['BIND'].rsplit(':', 1)[1]}" for name, s in GRID_SERVICES.items()}
    assert compose_targets == expected
    local = {f"127.0.0.1:{s.port}" for s in local_services(COMPOSE) if s.name in GRID_SERVICES}
    assert scrape_targets(PROMETHEUS_LOCAL_CONFIG) == local


def test_local_and_kubernetes_prometheus_configs_are_generated_from_the_compose_one():
    assert PROMETHEUS_LOCAL_CONFIG.read_text() == local_prometheus_config(COMPOSE), (
        "run `python -m tools.topology --write`"
    )
    assert PROMETHEUS_KUBERNETES_CONFIG.read_text() == kubernetes_prometheus_config(), (
        "run `python -m tools.topology --write`"
    )


def test_images_are_pinned():
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("FROM") and " AS " in line and line.split()[1] not in dockerfile_stages():
            assert re.search(r":\d+\.\d+\.\d+", line), line
    for name, service in SERVICES.items():
        if "build" not in service:
            assert re.search(r":v?\d+\.\d+\.\d+$", service["image"]), name


def run_password_script(data: Path, env: dict[str, str]) -> str:
    """grafana-password's command, as compose runs it (with `$$` unescaped), on a directory standing for
    Grafana's volume: the password file it leaves."""
    script = SERVICES["grafana-password"]["command"][0].replace("$$", "$").replace("/var/lib/grafana", str(data))
    subprocess.run(["sh", "-c", script], env={"PATH": "/usr/bin:/bin", **env}, check=True, timeout=10)
    return (data / "admin-password").read_text()


def test_grafana_gets_a_password_no_one_typed_unless_one_is_set(tmp_path):
    grafana, once = SERVICES["grafana"], SERVICES["grafana-password"]
    assert "GF_SECURITY_ADMIN_PASSWORD" not in grafana["environment"], "no password in the compose file"
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/var/lib/grafana/admin-password"
    assert grafana["depends_on"]["grafana-password"] == {"condition": "service_completed_successfully"}
    assert once["environment"]["GRAFANA_ADMIN_PASSWORD"] == "${GRAFANA_ADMIN_PASSWORD:-}"
    assert "grafana-data:/var/lib/grafana" in once["volumes"] and "grafana-data:/var/lib/grafana" in grafana["volumes"]

    made = run_password_script(tmp_path, {"GRAFANA_ADMIN_PASSWORD": ""})
    assert len(made) >= 20 and made.isalnum(), "made at random when none is set"
    assert (tmp_path / "admin-password").stat().st_mode & 0o077 == 0, "readable by its owner only"
    assert run_password_script(tmp_path, {}) == made, "kept across restarts"
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    assert run_password_script(fresh, {}) != made, "each volume its own"
    assert run_password_script(tmp_path, {"GRAFANA_ADMIN_PASSWORD": "s3cret pass"}) == "s3cret pass", "set wins"
