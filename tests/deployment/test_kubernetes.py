"""deploy/kubernetes renders with kustomize and every resource is valid for a pinned Kubernetes version.

Rendered by `kubectl kustomize`: the one on PATH, or Debian's kubernetes-client, which .ci/run installs
when there is none (kubectl 1.20 with kustomize 2.0.3: the kustomizations use only fields it reads, and
render the same with kustomize 5 but for generated ConfigMaps' hash suffixes). Validated offline by
kubernetes-validate against the API schemas of KUBERNETES_VERSION, and checked against compose: the same
images, commands and valid configuration, and Prometheus and Grafana given the very files compose mounts.
"""

from __future__ import annotations

import subprocess

import kubernetes_validate
import pytest
import yaml

from charge_request_service.config import GatewayConfig
from grid_common import __version__
from load_balancer.config import BalancerConfig
from ocpp_service.config import OcppConfig
from substation_service.config import SubstationConfig
from tools.topology import PROMETHEUS_KUBERNETES_CONFIG, ROOT, load_compose

KUBERNETES_VERSION = "1.31.0"
DEPLOY = ROOT / "deploy" / "kubernetes"
CONFIG_OF = {
    "substation": SubstationConfig,
    "balancer": BalancerConfig,
    "gateway": GatewayConfig,
    "ocpp": OcppConfig,
}
COMPOSE = load_compose()["services"]
GRID = ("gateway", "balancer", "substation", "ocpp")


def render(path) -> list[dict]:
    output = subprocess.run(["kubectl", "kustomize", str(path)], capture_output=True, text=True, check=True).stdout
    return [doc for doc in yaml.safe_load_all(output) if doc]


def by_kind_and_name(documents: list[dict]) -> dict[tuple[str, str], dict]:
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in documents}


@pytest.fixture(scope="module")
def example() -> dict[tuple[str, str], dict]:
    return by_kind_and_name(render(DEPLOY / "overlays/example"))


@pytest.fixture(scope="module", params=["base", "overlays/example", "overlays/prometheus-operator"])
def rendered(request) -> dict[tuple[str, str], dict]:
    """Each kustomization that deploys the grid."""
    return by_kind_and_name(render(DEPLOY / request.param))


@pytest.mark.parametrize("kustomization", ["base", "monitoring", "overlays/example", "overlays/prometheus-operator"])
def test_every_resource_is_valid_for_the_pinned_kubernetes(kustomization):
    for (kind, name), resource in by_kind_and_name(render(DEPLOY / kustomization)).items():
        assert resource["metadata"]["labels"]["app.kubernetes.io/part-of"] == "smart-grid-load-balancer", (kind, name)
        if kind == "ServiceMonitor":
            continue  # a CRD, whose schema Kubernetes does not ship: checked below
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)  # raises on the first error


def test_the_prometheus_operator_overlay_adds_a_service_monitor_for_every_service():
    rendered = by_kind_and_name(render(DEPLOY / "overlays/prometheus-operator"))
    monitor = rendered[("ServiceMonitor", "smart-grid-load-balancer")]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    services = {name: r for (kind, name), r in rendered.items() if kind == "Service" and name in GRID}
    (selected,) = monitor["spec"]["selector"]["matchExpressions"]
    assert set(selected["values"]) == {s["metadata"]["labels"][selected["key"]] for s in services.values()}
    picked = {
        name
        for (kind, name), r in rendered.items()
        if kind == "Service" and r["metadata"]["labels"].get(selected["key"]) in selected["values"]
    }
    assert picked == set(GRID), "each pod scraped once: not through the metrics Services as well"
    for service in services.values():
        assert service["metadata"]["namespace"] == monitor["metadata"]["namespace"]
        # Metrics on the port named http; the OCPP service's API (api) is another port of the same Service.
        assert service["spec"]["ports"][0]["name"] == monitor["spec"]["endpoints"][0]["port"]
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"


def test_stateless_replicas_and_a_stateful_grid(rendered):
    assert rendered[("Deployment", "gateway")]["spec"]["replicas"] == 2
    assert rendered[("Deployment", "balancer")]["spec"]["replicas"] == 2
    hpa = rendered[("HorizontalPodAutoscaler", "gateway")]["spec"]
    assert hpa["scaleTargetRef"]["name"] == "gateway" and hpa["minReplicas"] >= 2
    for name in ("gateway", "balancer", "substation"):
        assert ("PodDisruptionBudget", name) in rendered
    substations = rendered[("StatefulSet", "substation")]["spec"]
    headless = rendered[("Service", "substation")]["spec"]
    assert substations["serviceName"] == "substation" and headless["clusterIP"] == "None"
    assert substations["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    balancer_env = env_of(rendered[("Deployment", "balancer")])
    assert balancer_env["SUBSTATIONS_DNS"] == f"substation:{headless['ports'][0]['port']}", "found by DNS"
    assert "SUBSTATIONS" not in balancer_env, "no hand-written list: scaling the StatefulSet adds substations"


def workloads(rendered, names=GRID):
    return [r for (kind, name), r in rendered.items() if kind in ("Deployment", "StatefulSet") and name in names]


def env_of(workload) -> dict:
    container = workload["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def test_probes_resources_security_and_scraping(rendered):
    for workload in workloads(rendered):
        pod = workload["spec"]["template"]
        container = pod["spec"]["containers"][0]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert set(container["resources"]) == {"requests", "limits"}
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
        drain = float(env_of(workload)["SHUTDOWN_DRAIN_S"])
        assert drain < 10 <= pod["spec"]["terminationGracePeriodSeconds"], "drain, then the graceful stop, in time"


def test_the_same_images_commands_and_valid_configuration_as_compose(rendered, tmp_path):
    for workload in workloads(rendered):
        service = workload["metadata"]["name"]
        container = workload["spec"]["template"]["spec"]["containers"][0]
        compose = COMPOSE["substation1" if service == "substation" else service]
        assert container["command"] == compose["command"]
        image, _, tag = container["image"].rpartition(":")
        assert image.rsplit("/", 1)[-1] == compose["image"].rsplit("/", 1)[-1] and tag == __version__
        env = {k: v for k, v in env_of(workload).items() if v is not None}
        if service == "substation":
            env["SUBSTATION_NAME"] = "substation-0"  # from the pod's name
            env["SESSION_DB"] = str(tmp_path / "sessions.sqlite3")  # the volume, here
        CONFIG_OF[service].from_env(env)


def test_every_pod_meets_the_restricted_pod_security_standard(example):
    """The example namespace enforces `restricted`: a pod that breaks it would never be created."""
    assert (
        example[("Namespace", "smart-grid")]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    )
    everything = [r for (kind, _), r in example.items() if kind in ("Deployment", "StatefulSet")]
    assert {w["metadata"]["name"] for w in everything} == {*GRID, "redis", "prometheus", "grafana"}
    for workload in everything:
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] > 0
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert set(container["resources"]) == {"requests", "limits"}
            probe = container["readinessProbe"]
            assert probe.get("httpGet", {}).get("port") == "http" or probe["exec"]["command"] == ["redis-cli", "ping"]


def pod_files(rendered, workload) -> dict[str, str]:
    """Every file a workload's container sees from a ConfigMap: mount path -> content."""
    pod = workload["spec"]["template"]["spec"]
    config_maps = {name: r["data"] for (kind, name), r in rendered.items() if kind == "ConfigMap"}

    def files_of(source: dict) -> dict[str, str]:
        data = config_maps[source["name"]]
        items = source.get("items") or [{"key": key, "path": key} for key in data]
        return {item["path"]: data[item["key"]] for item in items}

    volumes = {}
    for volume in pod["volumes"]:
        if "configMap" in volume:
            volumes[volume["name"]] = files_of(volume["configMap"])
        elif "projected" in volume:
            volumes[volume["name"]] = {
                path: content
                for source in volume["projected"]["sources"]
                for path, content in files_of(source["configMap"]).items()
            }
    (container,) = pod["containers"]
    return {
        f"{mount['mountPath']}/{path}": content
        for mount in container["volumeMounts"]
        if mount["name"] in volumes
        for path, content in volumes[mount["name"]].items()
    }


def compose_mounts(service: str) -> tuple[dict[str, str], set[str]]:
    """A compose service's bind mounts (container path -> host folder) and named volumes' container paths."""
    binds, named = {}, set()
    for entry in COMPOSE[service]["volumes"]:
        source, target = entry.split(":")[:2]
        if source.startswith("./"):
            binds[target] = source
        else:
            named.add(target)
    return binds, named


def test_grafana_runs_as_in_compose_with_the_same_files(example):
    grafana = example[("Deployment", "grafana")]
    (container,) = grafana["spec"]["template"]["spec"]["containers"]
    assert container["image"] == COMPOSE["grafana"]["image"]
    assert container["startupProbe"]["failureThreshold"] * container["startupProbe"]["periodSeconds"] >= 120, (
        "a first start migrates Grafana's database before it listens: liveness must not kill it meanwhile"
    )
    env = {e["name"]: e for e in container["env"]}
    assert set(env) == set(COMPOSE["grafana"]["environment"])
    for name, value in COMPOSE["grafana"]["environment"].items():
        assert env[name]["value"] == value, name
    # The password as compose makes it: the same one-shot command, before Grafana, on the same volume; the
    # Secret plays compose's GRAFANA_ADMIN_PASSWORD (optional: unset, a random one is made and kept).
    (once,) = grafana["spec"]["template"]["spec"]["initContainers"]
    compose_once = COMPOSE["grafana-password"]
    assert once["image"] == compose_once["image"]
    assert once["command"] + once["args"] == compose_once["entrypoint"] + compose_once["command"]
    (secret,) = once["env"]
    assert secret["name"] == "GRAFANA_ADMIN_PASSWORD"
    assert secret["valueFrom"]["secretKeyRef"] == {"name": "grafana-admin", "key": "password", "optional": True}
    assert {m["mountPath"] for m in once["volumeMounts"]} == {"/var/lib/grafana"}
    binds, named = compose_mounts("grafana")
    files = pod_files(example, grafana)
    for target, source in binds.items():
        on_disk = {
            path.relative_to(ROOT / source): path.read_text() for path in (ROOT / source).rglob("*") if path.is_file()
        }
        assert on_disk, source
        for relative, content in on_disk.items():
            assert files[f"{target}/{relative}"] == content, f"{source}/{relative}"
    mount_paths = {m["mountPath"] for m in container["volumeMounts"]}
    assert named <= mount_paths, "what compose keeps in a volume has a volume here too"


def test_prometheus_runs_as_in_compose_with_the_same_rules_and_jobs(example):
    prometheus = example[("Deployment", "prometheus")]
    (container,) = prometheus["spec"]["template"]["spec"]["containers"]
    assert container["image"] == COMPOSE["prometheus"]["image"]
    assert container["startupProbe"]["httpGet"]["path"] == "/-/ready", "a restart replays its WAL first"
    assert container["args"] == COMPOSE["prometheus"]["command"]
    binds, named = compose_mounts("prometheus")
    ((target, source),) = binds.items()
    rules = {f"{target}/rules/{p.name}": p.read_text() for p in (ROOT / source / "rules").glob("*.yml")}
    assert rules
    assert pod_files(example, prometheus) == {
        f"{target}/prometheus.yml": PROMETHEUS_KUBERNETES_CONFIG.read_text(),
        **rules,
    }
    assert named <= {m["mountPath"] for m in container["volumeMounts"]}
    compose_config = yaml.safe_load((ROOT / source / "prometheus.yml").read_text())
    config = yaml.safe_load(PROMETHEUS_KUBERNETES_CONFIG.read_text())
    assert config["global"] == compose_config["global"] and config["rule_files"] == compose_config["rule_files"]
    assert [j["job_name"] for j in config["scrape_configs"]] == [
        j["job_name"] for j in compose_config["scrape_configs"]
    ]


def test_prometheus_finds_every_pod_of_each_service_ready_or_not(example):
    """Each job's DNS name is a headless Service listing all pods of one grid service, at the port it scrapes."""
    config = yaml.safe_load(PROMETHEUS_KUBERNETES_CONFIG.read_text())
    scraped = set()
    for job in config["scrape_configs"]:
        ((discovery,),) = [job["dns_sd_configs"]]
        ((name,),) = [discovery["names"]]
        service = example[("Service", name)]["spec"]
        assert service["clusterIP"] == "None", "headless: its name resolves to each pod, not one virtual IP"
        assert service["publishNotReadyAddresses"] is True, "a crashed pod stays a target whose `up` is 0"
        (workload,) = [
            w
            for w in workloads(example)
            if service["selector"].items() <= w["spec"]["template"]["metadata"]["labels"].items()
        ]
        (container,) = workload["spec"]["template"]["spec"]["containers"]
        assert discovery["port"] in {p["containerPort"] for p in container["ports"]}
        assert workload["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == str(discovery["port"])
        scraped.add(workload["metadata"]["name"])
    assert scraped == set(GRID)


def test_grafana_reaches_prometheus_at_the_provisioned_url(example):
    provisioned = pod_files(example, example[("Deployment", "grafana")])
    (datasource,) = yaml.safe_load(provisioned["/etc/grafana/provisioning/datasources/prometheus.yml"])["datasources"]
    host, port = datasource["url"].removeprefix("http://").split(":")
    service = example[("Service", host)]["spec"]
    assert int(port) in {p["port"] for p in service["ports"]}
    (prometheus,) = workloads(example, names=(host,))
    assert service["selector"].items() <= prometheus["spec"]["template"]["metadata"]["labels"].items()


def test_redis_runs_as_compose_runs_it_and_the_gateways_use_it(rendered):
    redis = rendered[("Deployment", "redis")]["spec"]["template"]["spec"]["containers"][0]
    assert redis["image"] == COMPOSE["redis"]["image"] and redis["command"] == COMPOSE["redis"]["command"]
    assert env_of(rendered[("Deployment", "gateway")])["IDEMPOTENCY_REDIS_URL"] == "redis://redis:6379/0"
    assert rendered[("Service", "redis")]["spec"]["ports"][0]["port"] == 6379
