"""deploy/kubernetes renders with kustomize and every resource is valid for a pinned Kubernetes version.

Rendered by `kubectl kustomize`: the one on PATH, or Debian's kubernetes-client, which .ci/run installs
when there is none (kubectl 1.20 with kustomize 2.0.3: the kustomizations use only fields it reads, and
render the same with kustomize 5). Validated offline by kubernetes-validate against the API schemas of
KUBERNETES_VERSION, and checked against compose: the same images, commands and valid configuration.
"""

from __future__ import annotations

import subprocess

import kubernetes_validate
import pytest
import yaml

from charge_request_service.config import GatewayConfig
from load_balancer.config import BalancerConfig
from substation_service.config import SubstationConfig
from tools.topology import ROOT, load_compose

KUBERNETES_VERSION = "1.31.0"
DEPLOY = ROOT / "deploy" / "kubernetes"
CONFIG_OF = {"substation": SubstationConfig, "balancer": BalancerConfig, "gateway": GatewayConfig}
COMPOSE = load_compose()["services"]


def render(path) -> list[dict]:
    output = subprocess.run(["kubectl", "kustomize", str(path)], capture_output=True, text=True, check=True).stdout
    return [doc for doc in yaml.safe_load_all(output) if doc]


@pytest.fixture(scope="module", params=["base", "overlays/example", "overlays/prometheus-operator"])
def rendered(request) -> dict[tuple[str, str], dict]:
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in render(DEPLOY / request.param)}


def test_every_resource_is_valid_for_the_pinned_kubernetes(rendered):
    for (kind, name), resource in rendered.items():
        assert resource["metadata"]["labels"]["app.kubernetes.io/part-of"] == "smart-grid-load-balancer", (kind, name)
        if kind == "ServiceMonitor":
            continue  # a CRD, whose schema Kubernetes does not ship: checked below
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)  # raises on the first error


def test_the_prometheus_operator_overlay_adds_a_service_monitor_for_every_service():
    rendered = {(doc["kind"], doc["metadata"]["name"]): doc for doc in render(DEPLOY / "overlays/prometheus-operator")}
    monitor = rendered[("ServiceMonitor", "smart-grid-load-balancer")]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    services = {name: r for (kind, name), r in rendered.items() if kind == "Service"}
    (selected,) = monitor["spec"]["selector"]["matchExpressions"]
    assert set(selected["values"]) == {s["metadata"]["labels"][selected["key"]] for s in services.values()}
    for service in services.values():
        assert service["metadata"]["namespace"] == monitor["metadata"]["namespace"]
        assert [p["name"] for p in service["spec"]["ports"]] == [monitor["spec"]["endpoints"][0]["port"]]
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


def workloads(rendered):
    return [r for (kind, _), r in rendered.items() if kind in ("Deployment", "StatefulSet")]


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
        assert container["image"].rsplit("/", 1)[-1] == compose["image"].rsplit("/", 1)[-1]
        env = {k: v for k, v in env_of(workload).items() if v is not None}
        if service == "substation":
            env["SUBSTATION_NAME"] = "substation-0"  # from the pod's name
            env["SESSION_DB"] = str(tmp_path / "sessions.sqlite3")  # the volume, here
        CONFIG_OF[service].from_env(env)
