from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from grid_common.protocol import NOMINAL_VOLTAGE_V
from grid_common.settings import EnvReader, is_http_url

CLIENT_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# A bearer token (RFC 6750's token68 characters), long enough not to be guessed.
CLIENT_TOKEN = re.compile(r"[A-Za-z0-9._~+/-]{16,256}=*")


def parse_client_tokens(raw: str, errors: list[str]) -> tuple[tuple[str, str], ...]:
    """`name=token,name=token`: who may use the gateway, each with its bearer token."""
    clients: list[tuple[str, str]] = []
    for entry in (part.strip() for part in raw.split(",") if part.strip()):
        name, _, token = entry.partition("=")
        if not CLIENT_NAME.fullmatch(name) or not CLIENT_TOKEN.fullmatch(token):
            errors.append(
                "CLIENT_TOKENS must be name=token pairs separated by commas: a name of 1-64 letters, digits, "
                f"'.', '_' or '-', a token of 16 or more letters, digits or '._~+/-'; got an entry for {name!r}"
            )
        elif any(name == known or token == secret for known, secret in clients):
            errors.append(f"CLIENT_TOKENS names {name!r} twice, or gives two clients one token")
        else:
            clients.append((name, token))
    return tuple(clients)


@dataclass(frozen=True)
class GatewayConfig:
    # One or more balancer replicas: requests spread over them, and one that cannot be reached is skipped.
    balancer_urls: tuple[str, ...]
    connect_timeout_s: float = 1.0
    # Longer than the balancer's own ASSIGN_DEADLINE_S, so the balancer's 503 arrives before we give up.
    balancer_timeout_s: float = 5.0
    # Where Idempotency-Keys are kept: a SQLite file shared by every worker on the host, or this process only.
    idempotency_db: str = ":memory:"
    # A day, as payment APIs do: long enough for any client's retries, short enough to stay small.
    idempotency_ttl_s: float = 86_400.0
    # How often a call to the balancer that could not connect is tried again (it was never sent).
    connect_retries: int = 2
    # Keys shared by every gateway replica, in Redis (redis://host:6379/0); empty: IDEMPOTENCY_DB.
    idempotency_redis_url: str = ""
    # The most keys kept in IDEMPOTENCY_DB (about 1.3 KB each): the oldest answers make room for new keys.
    idempotency_max_keys: int = 20_000
    # Connections to Redis one gateway process opens at most; a request waits for a free one.
    idempotency_redis_max_connections: int = 64
    # Who may use the gateway, with their bearer tokens; empty: anyone, as one client.
    client_tokens: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    # Currents in a request become powers at this voltage (NOMINAL_VOLTAGE_V, as every service reads it).
    nominal_voltage_v: float = NOMINAL_VOLTAGE_V

    @property
    def lease_s(self) -> float:
        """How long a request holds its Idempotency-Key: its attempt, a look-up, and a second for clocks."""
        return self.balancer_timeout_s * 2 + 1

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GatewayConfig:
        env = EnvReader(environ)
        raw = env.string("BALANCER_URL", required=True)
        urls = tuple(url.strip().rstrip("/") for url in raw.split(",") if url.strip())
        for url in urls:
            if not is_http_url(url):
                env.errors.append(f"BALANCER_URL must be http(s) URLs separated by commas, got {url!r}")
        if raw and not urls:
            env.errors.append("BALANCER_URL lists no URL")
        config = cls(
            balancer_urls=urls,
            connect_timeout_s=env.number("CONNECT_TIMEOUT_S", cls.connect_timeout_s, minimum=0.01, maximum=30),
            balancer_timeout_s=env.number("BALANCER_TIMEOUT_S", cls.balancer_timeout_s, minimum=0.01, maximum=120),
            idempotency_db=env.string("IDEMPOTENCY_DB", cls.idempotency_db),
            idempotency_ttl_s=env.number("IDEMPOTENCY_TTL_S", cls.idempotency_ttl_s, minimum=1, maximum=30 * 86_400),
            connect_retries=env.integer("CONNECT_RETRIES", cls.connect_retries, minimum=0, maximum=5),
            idempotency_redis_url=env.string("IDEMPOTENCY_REDIS_URL", ""),
            idempotency_max_keys=env.integer(
                "IDEMPOTENCY_MAX_KEYS", cls.idempotency_max_keys, minimum=100, maximum=10_000_000
            ),
            idempotency_redis_max_connections=env.integer(
                "IDEMPOTENCY_REDIS_MAX_CONNECTIONS", cls.idempotency_redis_max_connections, minimum=1, maximum=10_000
            ),
            client_tokens=parse_client_tokens(env.string("CLIENT_TOKENS", ""), env.errors),
            nominal_voltage_v=env.voltage(),
        )
        redis_url = config.idempotency_redis_url
        if redis_url and urlsplit(redis_url).scheme not in ("redis", "rediss", "unix"):
            env.errors.append("IDEMPOTENCY_REDIS_URL must be redis://host:port/db (or rediss://, unix://)")
        workers = env.integer("WEB_CONCURRENCY", 1)
        if workers > 1 and config.idempotency_db == ":memory:" and not redis_url:
            env.errors.append(
                f"IDEMPOTENCY_DB must be a file path with WEB_CONCURRENCY={workers}: "
                "each worker would otherwise keep its own Idempotency-Keys"
            )
        env.check("charge_request_service")
        return config
