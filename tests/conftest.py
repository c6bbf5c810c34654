"""Fixtures that start the real services as gunicorn processes on free loopback ports."""

from __future__ import annotations

import signal
from dataclasses import dataclass, field

import pytest

from tools.processes import ServiceProcess, free_port
from tools.topology import load_compose

_COMPOSE = load_compose()


def compose_command(service: str) -> list[str]:
    """Tests run exactly the command compose runs."""
    return list(_COMPOSE["services"][service]["command"])


@dataclass
class Service:
    name: str
    port: int
    process: ServiceProcess

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def restart(self) -> None:
        self.process.stop()
        self.process.start().wait_healthy()


@dataclass
class Grid:
    substations: dict[str, Service] = field(default_factory=dict)
    balancer: Service | None = None
    gateway: Service | None = None


class GridFactory:
    def __init__(self, log_dir) -> None:
        self.log_dir = log_dir
        self.started: list[ServiceProcess] = []

    def _start(self, name: str, service: str, env: dict[str, str], port: int | None = None, wait=True) -> Service:
        port = port or free_port()
        env = {"BIND": f"127.0.0.1:{port}", "ACCESS_LOG": "false", **env}
        process = ServiceProcess(
            name,
            compose_command(service),
            env,
            f"http://127.0.0.1:{port}/healthz",
            log_path=self.log_dir / f"{name}.log",
        )
        self.started.append(process.start())
        if wait:
            process.wait_healthy()
        return Service(name, port, process)

    def substation(self, name: str, capacity_kw: float = 150, **env: str) -> Service:
        settings = {
            "SUBSTATION_NAME": name,
            "CAPACITY_KW": str(capacity_kw),
            "BACKGROUND_PEAK_FRACTION": "0",
            **{k: str(v) for k, v in env.items()},
        }
        return self._start(name, "substation1", settings)

    def balancer(self, substations: dict[str, Service | str], name: str = "balancer", **env: str) -> Service:
        """A balancer over the given substations, each a started Service or a base URL."""
        listing = ",".join(f"{key}={s if isinstance(s, str) else s.url}" for key, s in substations.items())
        settings = {"SUBSTATIONS": listing, "POLL_INTERVAL_S": "0.2", **{k: str(v) for k, v in env.items()}}
        return self._start(name, "balancer", settings)

    def gateway(self, balancer_url: str, **env: str) -> Service:
        settings = {"BALANCER_URL": balancer_url, **{k: str(v) for k, v in env.items()}}
        return self._start("gateway", "gateway", settings)

    def grid(
        self,
        capacities: dict[str, float] | None = None,
        *,
        substation_env: dict | None = None,
        balancer_env: dict | None = None,
        gateway_env: dict | None = None,
    ) -> Grid:
        capacities = capacities or {"substation1": 150, "substation2": 150, "substation3": 300}
        grid = Grid()
        for name, capacity in capacities.items():
            grid.substations[name] = self.substation(name, capacity, **(substation_env or {}))
        grid.balancer = self.balancer(grid.substations, **(balancer_env or {}))
        wait_until(lambda: balancer_sees_all_healthy(grid), timeout=10)
        grid.gateway = self.gateway(grid.balancer.url, **(gateway_env or {}))
        return grid

    def stop_all(self) -> None:
        from tests.http import close_connections

        # gunicorn's gevent worker lets idle keep-alive connections run out before it exits: close ours,
        # and stop every process at once so each one's clients go away together.
        close_connections()
        for process in self.started:
            process.signal(signal.SIGTERM)
        for process in reversed(self.started):
            process.stop(timeout=5)


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05):
    """Poll a condition instead of sleeping a fixed time; fail with a clear message if it never holds."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s: {getattr(predicate, '__name__', predicate)}")


def balancer_sees_all_healthy(grid: Grid) -> bool:
    from tests.http import call

    reply = call("GET", f"{grid.balancer.url}/substations")
    return reply.status == 200 and all(s["healthy"] for s in reply.body["substations"])


def view_of(grid_or_balancer: Grid | Service, name: str) -> dict:
    """One substation as the balancer (of the grid) sees it."""
    from tests.http import call

    balancer = grid_or_balancer.balancer if isinstance(grid_or_balancer, Grid) else grid_or_balancer
    listed = call("GET", f"{balancer.url}/substations").body["substations"]
    return next(s for s in listed if s["name"] == name)


@pytest.fixture
def services(tmp_path):
    factory = GridFactory(tmp_path)
    yield factory
    factory.stop_all()
