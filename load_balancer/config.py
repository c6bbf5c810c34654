from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from grid_common.protocol import NOMINAL_VOLTAGE_V, InvalidRequest, is_substation_name
from grid_common.settings import MIN_TOKEN_LENGTH, EnvReader, is_http_url
from grid_common.substation_urls import parse_substations
from load_balancer.strategies import STRATEGIES
from load_balancer.substation_urls import SubstationUrls

# The most substations one balancer knows of: registrations beyond it are refused.
MAX_SUBSTATIONS = 10_000


def parse_registration(body: object, urls: SubstationUrls) -> tuple[str, str]:
    """`{"name": ..., "url": ...}` of POST /substations; InvalidRequest names each field that is wrong, and
    a URL the balancer must not call (see substation_urls.py)."""
    if not isinstance(body, dict):
        raise InvalidRequest([{"field": "body", "message": 'must be {"name": ..., "url": ...}'}])
    errors = [{"field": key, "message": "unknown field"} for key in body if key not in ("name", "url")]
    name, url = body.get("name"), body.get("url")
    if not is_substation_name(name):
        errors.append({"field": "name", "message": "1-63 letters, digits, _ or -"})
    problem = (
        urls.problem(url.rstrip("/")) if isinstance(url, str) else "an http(s) URL such as http://substation4:5000"
    )
    if problem is not None:
        errors.append({"field": "url", "message": problem})
    if errors:
        raise InvalidRequest(errors)
    assert isinstance(name, str) and isinstance(url, str)  # each was checked above, and named in errors if not
    return name, url.rstrip("/")


def is_plain_http_url(url: str) -> bool:
    """http(s)://host[:port][/path], with no credentials, query or fragment."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return False
    plain = parts.username is None and parts.password is None and not parts.query and not parts.fragment
    return is_http_url(url) and plain and port != 0


@dataclass(frozen=True)
class BalancerConfig:
    substations: tuple[tuple[str, str], ...]
    strategy: str = "most_power"
    poll_interval_s: float = 1.0
    poll_timeout_s: float = 0.5
    unhealthy_after_failures: int = 2
    connect_timeout_s: float = 0.5
    admission_timeout_s: float = 2.0
    # The whole assignment, every retry included, ends within this; the gateway waits a little longer.
    assign_deadline_s: float = 4.0
    start_poller: bool = True
    # Bearer token for POST /substations and DELETE /substations/<name>; empty: those endpoints are off.
    topology_token: str = field(default="", repr=False)
    # `host:port` whose DNS name lists every substation (a headless Service); empty: SUBSTATIONS only.
    substations_dns: str = ""
    discovery_interval_s: float = 5.0
    # Networks a registered substation may be on (CIDRs); empty: those the configured topology is on.
    substation_networks: tuple[str, ...] = ()
    # Base URL of the OCPP service's API (its API_BIND): the chargers the live page shows (GET /grid/chargers),
    # and remote starts of a charger a request names (charger_id); empty: no chargers here.
    ocpp_url: str = ""
    # Currents in a request become powers at this voltage (NOMINAL_VOLTAGE_V, as every service reads it).
    nominal_voltage_v: float = NOMINAL_VOLTAGE_V

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BalancerConfig:
        env = EnvReader(environ)
        dns = env.string("SUBSTATIONS_DNS", "")
        raw = env.string("SUBSTATIONS", required=not dns)
        substations = parse_substations(raw, env.errors) if raw else []
        if raw and not substations and not env.errors:
            env.errors.append("SUBSTATIONS lists no substation")
        host, _, port = dns.rpartition(":")
        if dns and not (host and port.isdigit() and 0 < int(port) < 65536):
            env.errors.append(f"SUBSTATIONS_DNS must be host:port, such as substation.grid.svc:5000, got {dns!r}")
        config = cls(
            substations=tuple(substations),
            strategy=env.choice("STRATEGY", cls.strategy, tuple(STRATEGIES)),
            poll_interval_s=env.number("POLL_INTERVAL_S", cls.poll_interval_s, minimum=0.05, maximum=60),
            poll_timeout_s=env.number("POLL_TIMEOUT_S", cls.poll_timeout_s, minimum=0.01, maximum=30),
            unhealthy_after_failures=env.integer("UNHEALTHY_AFTER_FAILURES", cls.unhealthy_after_failures, minimum=1),
            connect_timeout_s=env.number("CONNECT_TIMEOUT_S", cls.connect_timeout_s, minimum=0.01, maximum=30),
            admission_timeout_s=env.number("ADMISSION_TIMEOUT_S", cls.admission_timeout_s, minimum=0.01, maximum=60),
            assign_deadline_s=env.number("ASSIGN_DEADLINE_S", cls.assign_deadline_s, minimum=0.01, maximum=120),
            topology_token=env.string("TOPOLOGY_TOKEN", ""),
            substations_dns=dns,
            discovery_interval_s=env.number(
                "DISCOVERY_INTERVAL_S", cls.discovery_interval_s, minimum=0.05, maximum=3600
            ),
            substation_networks=tuple(n.strip() for n in env.string("SUBSTATION_NETWORKS", "").split(",") if n.strip()),
            ocpp_url=env.string("OCPP_URL", "").rstrip("/"),
            nominal_voltage_v=env.voltage(),
        )
        if config.ocpp_url and not is_plain_http_url(config.ocpp_url):
            # The value itself is never printed: it may hold credentials.
            env.errors.append("OCPP_URL must be the OCPP service's http(s)://host:port, with no credentials or query")
        for network in config.substation_networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                env.errors.append(f"SUBSTATION_NETWORKS must be networks such as 10.0.0.0/8, got {network!r}")
        if config.topology_token and len(config.topology_token) < MIN_TOKEN_LENGTH:
            # The value itself is never printed: it may be a real secret with a typo.
            env.errors.append(f"TOPOLOGY_TOKEN must be at least {MIN_TOKEN_LENGTH} characters")
        workers = env.integer("WEB_CONCURRENCY", 1)
        if config.topology_token and workers > 1:
            env.errors.append(
                f"TOPOLOGY_TOKEN needs WEB_CONCURRENCY=1, got {workers}: a change would reach one worker's view only"
            )
        env.check("load_balancer")
        return config
