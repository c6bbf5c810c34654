"""The one process runner: services of the suite started as real gunicorn processes with the commands
docker-compose.yml gives them, on loopback ports, stopped together. `make up` (tools/run_local.py), the
tests (the `services` fixture) and the benchmarks (bench/) all start processes through a Stack.
"""

from __future__ import annotations

import json
import signal
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tools.processes import ServiceProcess, free_port
from tools.topology import command_of_target, wsgi_command

# What each kind of service gets unless a caller says otherwise.
Defaults = dict[str, dict[str, str]]
QUIET = {"ACCESS_LOG": "false"}


@dataclass
class RunningService:
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
class OcppService(RunningService):
    api_port: int = 0

    @property
    def api_url(self) -> str:
        """Its API for the balancer (API_BIND): remote starts."""
        return f"http://127.0.0.1:{self.api_port}"


@dataclass
class Grid:
    substations: dict[str, RunningService]
    balancer: RunningService
    gateway: RunningService


class Stack:
    """Processes started together and stopped together.

    `defaults` maps a kind of service (substation, balancer, gateway) to environment it gets unless a call
    says otherwise; `log_dir` keeps each process's output in `<name>.log`, `output` receives it line by line.
    """

    def __init__(
        self,
        log_dir: Path | None = None,
        *,
        defaults: Defaults | None = None,
        output: Callable[[str, str], None] | None = None,
    ) -> None:
        self.log_dir = log_dir
        self.defaults = defaults or {}
        self.output = output
        self.started: list[ServiceProcess] = []

    # --- any process ------------------------------------------------------------------------------------
    def run(
        self,
        name: str,
        command: list[str],
        env: dict[str, str],
        health_url: str,
        *,
        wait: bool = True,
        timeout_s: float = 30.0,
    ) -> ServiceProcess:
        process = ServiceProcess(
            name,
            command,
            env,
            health_url,
            output=self.output,
            log_path=None if self.log_dir is None else self.log_dir / f"{name}.log",
        )
        self.started.append(process.start())
        if wait:
            process.wait_healthy(timeout=timeout_s)
        return process

    def service(
        self,
        name: str,
        target: str,
        env: dict[str, str],
        *,
        port: int | None = None,
        wait: bool = True,
        timeout_s: float = 30.0,
        health_path: str = "/healthz",
    ) -> RunningService:
        """A suite service of one build target (substation, balancer, gateway) with compose's command."""
        env = {**self.defaults.get(target, {}), **env}
        return self._gunicorn(name, command_of_target(target), env, port, wait, timeout_s, health_path)

    def app(self, name: str, wsgi_app: str, env: dict[str, str], *, wait: bool = True) -> RunningService:
        """Another WSGI app served exactly as the suite's are (the benchmark's floor): same gunicorn config."""
        return self._gunicorn(name, wsgi_command(wsgi_app), env, None, wait, 30.0, "/healthz")

    def _gunicorn(self, name, command, env, port, wait, timeout_s, health_path) -> RunningService:
        port = port or free_port()
        env = {**QUIET, **env, "BIND": f"127.0.0.1:{port}"}
        process = self.run(name, command, env, f"http://127.0.0.1:{port}{health_path}", wait=wait, timeout_s=timeout_s)
        return RunningService(name, port, process)

    # --- the suite's services, with the environment tests and benchmarks vary ---------------------------
    def substation(
        self, name: str, capacity_kw: float = 150, *, port: int | None = None, wait: bool = True, **env: str
    ) -> RunningService:
        settings = {"SUBSTATION_NAME": name, "CAPACITY_KW": str(capacity_kw), "BACKGROUND_PEAK_FRACTION": "0"}
        return self.service(
            name, "substation", {**settings, **{k: str(v) for k, v in env.items()}}, port=port, wait=wait
        )

    def balancer(
        self, substations: dict[str, RunningService | str], name: str = "balancer", **env: str
    ) -> RunningService:
        """A balancer over the given substations, each a started service or a base URL."""
        listing = ",".join(f"{key}={s if isinstance(s, str) else s.url}" for key, s in substations.items())
        return self.service(name, "balancer", {"SUBSTATIONS": listing, **{k: str(v) for k, v in env.items()}})

    def gateway(self, balancer_url: str, name: str = "gateway", *, wait: bool = True, **env: str) -> RunningService:
        settings = {"BALANCER_URL": balancer_url, **{k: str(v) for k, v in env.items()}}
        return self.service(name, "gateway", settings, wait=wait)

    def grid(
        self,
        capacities: dict[str, float] | None = None,
        *,
        substation_env: dict | None = None,
        balancer_env: dict | None = None,
        gateway_env: dict | None = None,
    ) -> Grid:
        """Substations, a balancer that sees them all healthy, and a gateway in front."""
        capacities = capacities or {"substation1": 150, "substation2": 150, "substation3": 300}
        substations = {}
        for name, capacity in capacities.items():
            substations[name] = self.substation(name, capacity, **(substation_env or {}))
        balancer = self.service(
            "balancer",
            "balancer",
            {
                "SUBSTATIONS": ",".join(f"{n}={s.url}" for n, s in substations.items()),
                **{k: str(v) for k, v in (balancer_env or {}).items()},
            },
        )
        wait_for(lambda: balancer_sees_all_healthy(balancer.url), 10, "the balancer sees every substation")
        return Grid(substations, balancer, self.gateway(balancer.url, **(gateway_env or {})))

    def ocpp(self, substations: dict[str, RunningService | str], name: str = "ocpp", *, port: int | None = None,
             wait: bool = True, **env: str) -> OcppService:  # fmt: skip
        """The OCPP service (asyncio, not gunicorn) for the given substations, on a loopback port."""
        port = port or free_port()
        api_port = free_port()
        listing = ",".join(f"{key}={s if isinstance(s, str) else s.url}" for key, s in substations.items())
        settings = {"SUBSTATIONS": listing, "BIND": f"127.0.0.1:{port}", "API_BIND": f"127.0.0.1:{api_port}",
                    **self.defaults.get("ocpp", {}), **{k: str(v) for k, v in env.items()}}  # fmt: skip
        process = self.run(name, [sys.executable, "-m", "ocpp_service"], settings,
                           f"http://127.0.0.1:{port}/healthz", wait=wait)  # fmt: skip
        return OcppService(name, port, process, api_port)

    def wait_healthy(self, timeout_s: float = 30.0) -> None:
        for process in self.started:
            process.wait_healthy(timeout=timeout_s)

    def stop_all(self, timeout_s: float = 5.0) -> None:
        """SIGTERM to every process at once, so each one's clients go away together; then wait for each."""
        for process in self.started:
            process.signal(signal.SIGTERM)
        for process in reversed(self.started):
            process.stop(timeout=timeout_s)
        self.started.clear()

    def kill_all(self) -> None:
        """SIGKILL to every process at once: what a test's end needs, where nothing is left to finish (a
        graceful stop waits up to a second per gunicorn master for its workers' next heartbeat)."""
        for process in reversed(self.started):
            process.stop(timeout=0)
        self.started.clear()


def balancer_sees_all_healthy(balancer_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{balancer_url}/substations", timeout=2) as response:
            listed = json.load(response)["substations"]
    except (OSError, ValueError, KeyError):
        return False
    return all(substation["healthy"] for substation in listed)


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout_s:g} s")
        time.sleep(0.05)


def redis_server(stack: Stack, name: str = "redis") -> str:
    """A throw-away Redis (Debian's redis-server) on a free loopback port; its redis:// URL."""
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    stack.run(name, command, {}, f"tcp://127.0.0.1:{port}")
    return f"redis://127.0.0.1:{port}/0"
