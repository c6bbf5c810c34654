from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from grid_common.settings import EnvReader, is_http_url


@dataclass(frozen=True)
class GatewayConfig:
    balancer_url: str
    connect_timeout_s: float = 1.0
    # Longer than the balancer's own ASSIGN_DEADLINE_S, so the balancer's 503 arrives before we give up.
    balancer_timeout_s: float = 5.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GatewayConfig:
        env = EnvReader(environ)
        url = env.string("BALANCER_URL", required=True).rstrip("/")
        if url and not is_http_url(url):
            env.errors.append(f"BALANCER_URL must be an http(s) URL, got {url!r}")
        config = cls(
            balancer_url=url,
            connect_timeout_s=env.number("CONNECT_TIMEOUT_S", cls.connect_timeout_s, minimum=0.01, maximum=30),
            balancer_timeout_s=env.number("BALANCER_TIMEOUT_S", cls.balancer_timeout_s, minimum=0.01, maximum=120),
        )
        env.check("charge_request_service")
        return config
