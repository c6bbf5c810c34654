from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from grid_common.settings import EnvReader, is_http_url
from load_balancer.strategies import STRATEGIES

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,63}$")


def parse_substations(value: str, errors: list[str]) -> list[tuple[str, str]]:
    """`name=url,name=url` -> [(name, url)], with every malformed entry reported."""
    substations: list[tuple[str, str]] = []
    for entry in filter(None, (part.strip() for part in value.split(","))):
        name, sep, url = entry.partition("=")
        name, url = name.strip(), url.strip().rstrip("/")
        if not sep or not NAME_PATTERN.match(name) or not is_http_url(url):
            errors.append(f"SUBSTATIONS entry {entry!r} must be name=http://host:port (name: letters, digits, _ or -)")
        elif any(name == existing for existing, _ in substations):
            errors.append(f"SUBSTATIONS names {name!r} twice")
        else:
            substations.append((name, url))
    return substations


@dataclass(frozen=True)
class BalancerConfig:
    substations: tuple[tuple[str, str], ...]
    strategy: str = "least_utilization"
    poll_interval_s: float = 1.0
    poll_timeout_s: float = 0.5
    unhealthy_after_failures: int = 2
    connect_timeout_s: float = 0.5
    admission_timeout_s: float = 2.0
    # The whole assignment, every retry included, ends within this; the gateway waits a little longer.
    assign_deadline_s: float = 4.0
    start_poller: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BalancerConfig:
        env = EnvReader(environ)
        raw = env.string("SUBSTATIONS", required=True)
        substations = parse_substations(raw, env.errors) if raw else []
        if raw and not substations and not env.errors:
            env.errors.append("SUBSTATIONS lists no substation")
        config = cls(
            substations=tuple(substations),
            strategy=env.choice("STRATEGY", cls.strategy, tuple(STRATEGIES)),
            poll_interval_s=env.number("POLL_INTERVAL_S", cls.poll_interval_s, minimum=0.05, maximum=60),
            poll_timeout_s=env.number("POLL_TIMEOUT_S", cls.poll_timeout_s, minimum=0.01, maximum=30),
            unhealthy_after_failures=env.integer("UNHEALTHY_AFTER_FAILURES", cls.unhealthy_after_failures, minimum=1),
            connect_timeout_s=env.number("CONNECT_TIMEOUT_S", cls.connect_timeout_s, minimum=0.01, maximum=30),
            admission_timeout_s=env.number("ADMISSION_TIMEOUT_S", cls.admission_timeout_s, minimum=0.01, maximum=60),
            assign_deadline_s=env.number("ASSIGN_DEADLINE_S", cls.assign_deadline_s, minimum=0.01, maximum=120),
        )
        env.check("load_balancer")
        return config
