"""The suite's topology, read from docker-compose.yml: the one place it is written down.

`make up` runs exactly what compose would run (same commands, same environment), with each
`service:container-port` address rewritten to `127.0.0.1:host-port`. The Prometheus config for
`make up` is the compose one with the same rewriting, so the three cannot drift apart. So is the
one for Kubernetes, with each job's targets found among the pods instead (`--write` writes both).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
PROMETHEUS_COMPOSE_CONFIG = ROOT / "monitoring" / "prometheus" / "prometheus.yml"
PROMETHEUS_LOCAL_CONFIG = ROOT / "monitoring" / "prometheus" / "prometheus.local.yml"
PROMETHEUS_KUBERNETES_CONFIG = ROOT / "monitoring" / "prometheus" / "prometheus.kubernetes.yml"
LOOPBACK = "127.0.0.1"
# Where `make up` keeps what compose keeps in named volumes: one folder per volume.
LOCAL_VOLUMES = ROOT / ".run" / "volumes"


@dataclass(frozen=True)
class LocalService:
    name: str
    command: list[str]
    env: dict[str, str]
    port: int
    health_url: str
    depends_on: list[str] = field(default_factory=list)
    data_dirs: list[Path] = field(default_factory=list)  # to create before it starts


def load_compose(path: Path = COMPOSE_FILE) -> dict:
    return yaml.safe_load(path.read_text())


@functools.cache
def _compose() -> dict:
    return load_compose()


def local_redis(port_offset: int = 0) -> tuple[list[str], int] | None:
    """What `make up` runs for compose's Redis: its command, on loopback at its port; None without one."""
    service = _compose()["services"].get("redis")
    if service is None:
        return None
    port = int(service["expose"][0]) + port_offset
    return [*service["command"], "--port", str(port), "--bind", "127.0.0.1", "--protected-mode", "yes"], port


def command_of_target(target: str) -> list[str]:
    """The command compose runs for the services built from one Dockerfile target (substation, balancer,
    gateway): what every process of that kind runs, whoever starts it."""
    for service in _compose()["services"].values():
        if service.get("build", {}).get("target") == target:
            return list(service["command"])
    raise KeyError(f"no service in {COMPOSE_FILE.name} is built from target {target!r}")


def wsgi_command(wsgi_app: str) -> list[str]:
    """The suite's gunicorn command, serving another WSGI app (`module:app`)."""
    command = command_of_target("gateway")
    return [*command[:-1], wsgi_app]


def published_ports(compose: dict) -> dict[tuple[str, int], int]:
    """(service, container port) -> host port, from every service's `ports`.

    A range (`"6000-6009:6000"`, so that `--scale` can give each replica a port) maps to its first port,
    which the only replica `make up` runs uses. A port only exposed to the other containers (`expose`) is
    where `make up` runs that service on loopback.
    """
    mapping = {}
    for name, service in compose["services"].items():
        for entry in service.get("ports", []):
            host_ports, container_port = str(entry).rsplit(":", 2)[-2:]
            mapping[(name, int(container_port))] = int(host_ports.split("-")[0])
        for entry in service.get("expose", []):
            mapping[(name, int(entry))] = int(entry)
    return mapping


DNS_SD_BLOCK = re.compile(
    r"(?P<indent> *)dns_sd_configs:\n\s*- names: \[(?P<name>[\w-]+)\]\n\s*type: A\n\s*port: (?P<port>\d+)\n"
    r"(?:\s*refresh_interval: \S+\n)?"
)


def localize_discovery(config: str, ports: dict[tuple[str, int], int]) -> str:
    """Compose finds replicas by DNS; `make up` has one of each, at a known loopback port."""

    def static(match: re.Match) -> str:
        indent, target = match.group("indent"), localize(f"{match.group('name')}:{match.group('port')}", ports)
        return f'{indent}static_configs:\n{indent}  - targets: ["{target}"]\n'

    return DNS_SD_BLOCK.sub(static, config)


def localize(value: str, ports: dict[tuple[str, int], int]) -> str:
    """Rewrite every `service:port` address in `value` to its loopback `127.0.0.1:host-port`."""

    def replace(match: re.Match) -> str:
        key = (match.group(1), int(match.group(2)))
        return f"{LOOPBACK}:{ports[key]}" if key in ports else match.group(0)

    return re.sub(r"\b([A-Za-z][A-Za-z0-9_-]*):(\d+)\b", replace, value)


def volume_mounts(service: dict, compose: dict, volumes_root: Path) -> dict[str, Path]:
    """Container path -> local folder, for each named volume the service mounts."""
    named = set(compose.get("volumes") or {})
    mounts = {}
    for entry in service.get("volumes", []):
        volume, _, container_path = str(entry).partition(":")
        if volume in named:
            mounts[container_path.split(":")[0]] = volumes_root / volume
    return mounts


def localize_paths(value: str, mounts: dict[str, Path]) -> str:
    """A path inside a mounted volume (`/data/sessions.sqlite3`) becomes the same file in its local folder."""
    for container_path, folder in mounts.items():
        if value == container_path or value.startswith(container_path.rstrip("/") + "/"):
            return str(folder / value[len(container_path) :].lstrip("/"))
    return value


def _container_port(bind: str) -> int:
    return int(bind.rsplit(":", 1)[1])


def local_services(
    compose: dict | None = None, volumes_root: Path = LOCAL_VOLUMES, port_offset: int = 0
) -> list[LocalService]:
    """The Python services compose builds, as loopback processes, in dependency order (every port moved by
    `port_offset`, so that a second copy can run beside the first)."""
    compose = compose or load_compose()
    ports = {key: port + port_offset for key, port in published_ports(compose).items()}
    services = []
    for name, service in compose["services"].items():
        if "build" not in service:
            continue  # Prometheus and Grafana images: the runner handles Prometheus itself
        env = {key: str(value) for key, value in service.get("environment", {}).items()}
        host_port = ports[(name, _container_port(env["BIND"]))]
        mounts = volume_mounts(service, compose, volumes_root)
        local_env = {key: localize_paths(localize(value, ports), mounts) for key, value in env.items()}
        local_env["BIND"] = f"{LOOPBACK}:{host_port}"
        for key in env.keys() - {"BIND"}:
            if key.endswith("_BIND"):  # another port of the same service (the OCPP service's API)
                local_env[key] = f"{LOOPBACK}:{ports[(name, _container_port(env[key]))]}"
        health_url = service["healthcheck"]["test"][-1]
        services.append(
            LocalService(
                name=name,
                command=list(service["command"]),
                env=local_env,
                port=host_port,
                health_url=re.sub(r"//127\.0\.0\.1:\d+", f"//{LOOPBACK}:{host_port}", health_url),
                depends_on=list(service.get("depends_on", {})),
                data_dirs=sorted(mounts.values()),
            )
        )
    return _in_dependency_order(services)


def _in_dependency_order(services: list[LocalService]) -> list[LocalService]:
    by_name = {s.name: s for s in services}
    ordered: list[LocalService] = []

    def visit(service: LocalService, path: tuple[str, ...]) -> None:
        if service in ordered:
            return
        if service.name in path:
            raise ValueError(f"dependency cycle: {' -> '.join((*path, service.name))}")
        for dependency in service.depends_on:
            if dependency in by_name:
                visit(by_name[dependency], (*path, service.name))
        ordered.append(service)

    for service in services:
        visit(service, ())
    return ordered


def local_prometheus_config(compose: dict | None = None) -> str:
    """The compose Prometheus config with every target rewritten to loopback."""
    compose = compose or load_compose()
    ports = published_ports(compose)
    header = (
        "# Generated from prometheus.yml by `python -m tools.topology --write`: do not edit.\n"
        "# The same scrape jobs as compose, with each service:port rewritten to 127.0.0.1:host-port.\n"
    )
    body = PROMETHEUS_COMPOSE_CONFIG.read_text()
    return header + localize(localize_discovery(body, ports), ports)


def job_targets(job: dict) -> list[tuple[str, int]]:
    """(compose service, port) of every target a scrape job names, statically or by DNS."""
    addresses = [t for static in job.get("static_configs", []) for t in static["targets"]]
    addresses += [f"{name}:{sd['port']}" for sd in job.get("dns_sd_configs", []) for name in sd["names"]]
    return [(host, int(port)) for host, port in (address.rsplit(":", 1) for address in addresses)]


def kubernetes_app(service: str) -> str:
    """The `app.kubernetes.io/name` of a compose service's pods: compose's substation1, substation2, ...
    are the pods of one StatefulSet, `substation`."""
    return re.sub(r"\d+$", "", service)


def kubernetes_scrape_service(app: str) -> str:
    """The headless Service (deploy/kubernetes/monitoring) whose DNS name lists every pod of `app`, ready or not."""
    return f"{app}-metrics"


def kubernetes_scrape_job(job: dict) -> dict:
    """A compose scrape job, its targets found by DNS: every pod of its service, in Prometheus's namespace."""
    ((app, port),) = {(kubernetes_app(service), port) for service, port in job_targets(job)}
    kept = {key: value for key, value in job.items() if key not in ("static_configs", "dns_sd_configs")}
    discovery = {"names": [kubernetes_scrape_service(app)], "type": "A", "port": port, "refresh_interval": "5s"}
    return {**kept, "dns_sd_configs": [discovery]}


def kubernetes_prometheus_config() -> str:
    """The compose Prometheus config, each job scraping every pod of its service on Kubernetes."""
    config = yaml.safe_load(PROMETHEUS_COMPOSE_CONFIG.read_text())
    config["scrape_configs"] = [kubernetes_scrape_job(job) for job in config["scrape_configs"]]
    header = (
        "# Generated from prometheus.yml by `python -m tools.topology --write`: do not edit.\n"
        "# The same jobs, rules and intervals as compose. Each job finds its pods through a headless Service\n"
        "# that lists not-ready pods too, so a crashed substation is a target that is down (`up` 0, and\n"
        "# SubstationDown fires), not one that vanished: deploy/kubernetes/monitoring/scrape-targets.yaml.\n"
    )
    return header + yaml.safe_dump(config, sort_keys=False, width=120, default_flow_style=None)


GENERATED_CONFIGS = {
    PROMETHEUS_LOCAL_CONFIG: local_prometheus_config,
    PROMETHEUS_KUBERNETES_CONFIG: kubernetes_prometheus_config,
}


def main() -> None:
    import sys

    if "--write" in sys.argv:
        for path, generate in GENERATED_CONFIGS.items():
            path.write_text(generate())
            print(f"wrote {path.relative_to(ROOT)}")
    for service in local_services():
        print(f"{service.name:12} {service.port:5}  {' '.join(service.command)}")


if __name__ == "__main__":
    main()
