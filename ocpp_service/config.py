"""The OCPP service's settings, from environment variables, checked at start with every error named at once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from grid_common.settings import EnvReader
from grid_common.substation_urls import parse_substations


class Authentication(StrEnum):
    NONE = "none"  # any registered charger may connect: the default local set-up
    BASIC = "basic"  # OCPP security profile 1: HTTP Basic, a password per charger (from the registry)


@dataclass(frozen=True)
class OcppConfig:
    substations: tuple[tuple[str, str], ...]  # (name, base URL)
    # host:port of its one port: chargers' WebSockets and its HTTP (as BIND is for every service of the suite).
    bind: str = "0.0.0.0:9000"
    # host:port of its API for the balancer (remote starts, and the chargers as on BIND). Not for the public:
    # whoever reaches it can start any charger.
    api_bind: str = "0.0.0.0:9001"
    # A JSON file of chargers (registry.py); empty: ten public and three fleet chargers per substation.
    registry: str = ""
    chargers_per_substation: int = 10
    fleet_chargers_per_substation: int = 3
    authentication: Authentication = Authentication.NONE
    # Wall seconds a TxProfile stays valid unless renewed: how long a charger that hears nothing more keeps its
    # last limit before it falls back to its safe default.
    profile_validity_s: float = 60.0
    # How long a substation holds a read of its feed of changed sessions that has nothing new (long polling): a
    # change is answered at once. 0: no holding; the feed is then read every FEED_INTERVAL_S.
    feed_wait_s: float = 10.0
    # The pause between reads when they are not held, and after a failed read.
    feed_interval_s: float = 0.25
    # How often meter readings are sent on to the substations, batched.
    meter_flush_s: float = 1.0
    # The energy a car that says nothing of its needs asks for (OCPP 1.6 never says): it charges until unplugged.
    session_energy_kwh: float = 80.0
    http_timeout_s: float = 2.0
    # How long a charger that accepted a remote start has to start its transaction (a driver to plug in, as
    # OCPP's ConnectionTimeOut): within it, the transaction under the start's id tag is the client's session.
    remote_start_timeout_s: float = 60.0
    voltage_v: float = 230.0
    # After SIGTERM: seconds of answering /readyz 503 (so that a load balancer stops sending new chargers here)
    # before the connections close; chargers then reconnect, to another replica if there is one.
    shutdown_drain_s: float = 0.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OcppConfig:
        env = EnvReader(environ)
        substations = parse_substations(env.string("SUBSTATIONS", required=True), env.errors)
        config = cls(
            substations=tuple(substations),
            bind=env.string("BIND", cls.bind),
            api_bind=env.string("API_BIND", cls.api_bind),
            registry=env.string("CHARGER_REGISTRY", cls.registry),
            chargers_per_substation=env.integer("CHARGERS_PER_SUBSTATION", cls.chargers_per_substation, minimum=0),
            fleet_chargers_per_substation=env.integer(
                "FLEET_CHARGERS_PER_SUBSTATION", cls.fleet_chargers_per_substation, minimum=0
            ),
            authentication=Authentication(
                env.choice("OCPP_AUTH", cls.authentication, tuple(kind.value for kind in Authentication))
            ),
            profile_validity_s=env.number("PROFILE_VALIDITY_S", cls.profile_validity_s, minimum=5, maximum=86400),
            feed_wait_s=env.number("FEED_WAIT_S", cls.feed_wait_s, minimum=0, maximum=30),
            feed_interval_s=env.number("FEED_INTERVAL_S", cls.feed_interval_s, minimum=0.05, maximum=10),
            meter_flush_s=env.number("METER_FLUSH_S", cls.meter_flush_s, minimum=0.05, maximum=60),
            session_energy_kwh=env.number("SESSION_ENERGY_KWH", cls.session_energy_kwh, minimum=0.1, maximum=250),
            http_timeout_s=env.number("HTTP_TIMEOUT_S", cls.http_timeout_s, minimum=0.1, maximum=60),
            remote_start_timeout_s=env.number(
                "REMOTE_START_TIMEOUT_S", cls.remote_start_timeout_s, minimum=1, maximum=3600
            ),
            voltage_v=env.voltage(),
            shutdown_drain_s=env.number("SHUTDOWN_DRAIN_S", cls.shutdown_drain_s, minimum=0, maximum=300),
        )
        for name, bind in (("BIND", config.bind), ("API_BIND", config.api_bind)):
            host, _, port = bind.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                env.errors.append(f"{name} must be host:port, got {bind!r}")
        if config.bind == config.api_bind:
            env.errors.append("API_BIND must differ from BIND: chargers and the balancer each have their port")
        if config.registry and not Path(config.registry).is_file():
            env.errors.append(f"CHARGER_REGISTRY {config.registry!r}: no such file")
        if not substations and not env.errors:
            env.errors.append("SUBSTATIONS must name at least one substation: name=http://host:port,...")
        env.check("ocpp_service")
        return config

    @property
    def host(self) -> str:
        return self.bind.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.bind.rpartition(":")[2])

    @property
    def api_host(self) -> str:
        return self.api_bind.rpartition(":")[0].strip("[]")

    @property
    def api_port(self) -> int:
        return int(self.api_bind.rpartition(":")[2])
