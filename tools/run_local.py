"""`make up`: the compose topology as local processes on loopback, with logs prefixed by service.

A service that exits is started again, as compose's restart policy does; Ctrl-C (or SIGTERM) stops every
process gracefully and leaves none behind.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TypedDict

from tools.processes import ROOT, ServiceProcess, port_in_use
from tools.stack import Stack
from tools.topology import (
    LOCAL_VOLUMES,
    PROMETHEUS_LOCAL_CONFIG,
    local_prometheus_config,
    local_redis,
    local_services,
)

COLORS = itertools.cycle(["\033[36m", "\033[33m", "\033[35m", "\033[32m", "\033[34m", "\033[31m"])
RESET = "\033[0m"
PROMETHEUS_PORT = 9090
_print_lock = threading.Lock()


def make_printer(width: int):
    colors: dict[str, str] = {}
    use_color = sys.stdout.isatty()

    def emit(name: str, line: str) -> None:
        color = colors.setdefault(name, next(COLORS)) if use_color else ""
        with _print_lock:
            print(f"{color}{name:<{width}} |{RESET if use_color else ''} {line}", flush=True)

    return emit


def prometheus_ui_url(page: str, port: int = PROMETHEUS_PORT) -> str:
    """Where a page of Prometheus's web UI is: Debian's package serves only the classic UI, under /classic/
    (its / redirects there), release builds and the compose image their own UI at the root."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/")
        location = connection.getresponse().getheader("Location", "")
    except OSError:
        location = ""
    finally:
        connection.close()
    prefix = "/classic" if location.startswith("/classic/") else ""
    return f"http://127.0.0.1:{port}{prefix}/{page}"


def prometheus_command(emit, run_dir: Path) -> tuple[list[str], str] | None:
    """Prometheus's command line and readiness URL, or None when there is no prometheus to run."""
    binary = shutil.which("prometheus")
    if binary is None:
        emit(
            "runner",
            "prometheus is not on PATH, so it is not started. Install it (Debian/Ubuntu: "
            "`sudo apt-get install prometheus`, or a release from prometheus.io) and run `make up` again.",
        )
        return None
    if PROMETHEUS_LOCAL_CONFIG.read_text() != local_prometheus_config():
        emit("runner", "warning: prometheus.local.yml is out of date; run `python -m tools.topology --write`")
    command = [
        binary,
        f"--config.file={PROMETHEUS_LOCAL_CONFIG}",
        f"--storage.tsdb.path={run_dir / 'prometheus'}",
        f"--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}",
    ]
    return command, f"http://127.0.0.1:{PROMETHEUS_PORT}/-/ready"


def redis_process(emit, services, port_offset: int) -> list[tuple]:
    """Debian's redis-server for the gateway's Idempotency-Keys, as compose runs Redis; without one, the
    gateway keeps its keys in its own memory (one gateway here, so nothing is lost but sharing)."""
    redis = local_redis(port_offset)
    if redis is None:
        return []
    command, port = redis
    if shutil.which(command[0]) is None:
        emit("runner", "redis-server is not on PATH: the gateway keeps its Idempotency-Keys in memory "
                       "(`sudo apt-get install redis-server` to run it as compose does)")  # fmt: skip
        for service in services:
            service.env.pop("IDEMPOTENCY_REDIS_URL", None)
        return []
    return [("redis", command, {}, f"tcp://127.0.0.1:{port}")]


class Watched(TypedDict):
    """One process under the supervisor: the pause before its next start, when it last started, and when it
    is due to start again (None while it runs, or until its exit has been seen)."""

    process: ServiceProcess
    pause: float
    since: float
    due: float | None


class Supervisor:
    """What compose's `restart: unless-stopped` does: a service that exits is started again, after a pause
    that doubles each time it dies soon after a start (1 s, 2 s, 4 s ... 30 s), while the others go on."""

    FIRST_PAUSE_S = 1.0
    LONGEST_PAUSE_S = 30.0
    STABLE_AFTER_S = 60.0  # up this long, its next death starts the pauses over

    def __init__(self, processes: list[ServiceProcess], emit) -> None:
        self.emit = emit
        self.state: dict[str, Watched] = {
            p.name: {"process": p, "pause": self.FIRST_PAUSE_S, "since": time.monotonic(), "due": None}
            for p in processes
        }

    def check(self) -> None:
        now = time.monotonic()
        for name, state in self.state.items():
            process = state["process"]
            if process.running:
                if now - state["since"] >= self.STABLE_AFTER_S:
                    state["pause"] = self.FIRST_PAUSE_S
                continue
            if state["due"] is None:
                code = process.process.returncode if process.process else None
                state["due"] = now + state["pause"]
                self.emit("runner", f"{name} exited (code {code}); restarting it in {state['pause']:g} s")
            elif now >= state["due"]:
                process.start()
                self.emit("runner", f"{name} restarted (pid {process.pid})")
                state.update({"due": None, "since": now, "pause": min(state["pause"] * 2, self.LONGEST_PAUSE_S)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The compose topology as local processes (make up).")
    parser.add_argument("--port-offset", type=int, default=0, help="add this to every port (default 0)")
    parser.add_argument("--volumes", type=Path, default=LOCAL_VOLUMES, help="where named volumes' data goes")
    parser.add_argument("--no-prometheus", action="store_true", help="do not start Prometheus")
    args = parser.parse_args(argv)
    services = local_services(volumes_root=args.volumes, port_offset=args.port_offset)
    emit = make_printer(max(len(s.name) for s in services) + 1)
    busy = [s for s in services if port_in_use(s.port)]
    if busy:
        names = ", ".join(f"{s.name} (:{s.port})" for s in busy)
        emit("runner", f"ports already in use: {names}. Is the suite already running? Stop it and try again.")
        return 1
    run_dir = ROOT / ".run"
    run_dir.mkdir(exist_ok=True)
    for service in services:
        for folder in service.data_dirs:  # what compose keeps in named volumes survives restarts here too
            folder.mkdir(parents=True, exist_ok=True)
    processes = [(s.name, s.command, s.env, s.health_url) for s in services]
    processes[:0] = redis_process(emit, services, args.port_offset)
    prometheus = None if args.no_prometheus else prometheus_command(emit, run_dir)
    if prometheus and not port_in_use(PROMETHEUS_PORT):
        processes.append(("prometheus", *prometheus[0:1], {}, prometheus[1]))
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stack = Stack(output=emit)
    return_code = 0
    port = {s.name: s.port for s in services}
    try:
        for name, command, env, health_url in processes:
            if stop.is_set():
                break
            process = stack.run(name, command, env, health_url, timeout_s=60)
            emit("runner", f"{name} is up (pid {process.pid})")
        if not stop.is_set():
            emit("runner", "all services are up:")
            for line in (
                f"gateway     http://127.0.0.1:{port['gateway']}  (POST /initiate_energy_transfer)",
                f"balancer    http://127.0.0.1:{port['balancer']}/  (the live page; /substations the view)",
                f"substations http://127.0.0.1:{port['substation1']}/load  :{port['substation2']}  "
                f":{port['substation3']}",
                f"prometheus  {prometheus_ui_url('targets')}" if prometheus else "prometheus  not started",
                "load        python load_tester/test.py -n 200 -c 8",
                "A service that exits is started again; Ctrl-C stops everything.",
            ):
                emit("runner", "  " + line)
        supervisor = Supervisor(stack.started, emit)
        while not stop.is_set():
            supervisor.check()
            stop.wait(0.25)
    except (RuntimeError, TimeoutError) as error:
        emit("runner", f"start-up failed: {error}")
        return_code = 1
    finally:
        emit("runner", "stopping...")
        stack.stop_all(timeout_s=15)
        emit("runner", "stopped.")
    return return_code


if __name__ == "__main__":
    sys.exit(main())
