"""`make up`: the compose topology as local processes on loopback, with logs prefixed by service.

Ctrl-C (or SIGTERM) stops every process gracefully and leaves none behind.
"""

from __future__ import annotations

import http.client
import itertools
import shutil
import signal
import sys
import threading
from pathlib import Path

from tools.processes import ROOT, port_in_use
from tools.stack import Stack
from tools.topology import PROMETHEUS_LOCAL_CONFIG, local_prometheus_config, local_services

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


def main() -> int:
    services = local_services()
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
    prometheus = prometheus_command(emit, run_dir)
    if prometheus and not port_in_use(PROMETHEUS_PORT):
        processes.append(("prometheus", *prometheus[0:1], {}, prometheus[1]))
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stack = Stack(output=emit)
    return_code = 0
    try:
        for name, command, env, health_url in processes:
            if stop.is_set():
                break
            stack.run(name, command, env, health_url, timeout_s=60)
        if not stop.is_set():
            emit("runner", "all services are up:")
            for line in (
                "gateway     http://127.0.0.1:6000  (POST /initiate_energy_transfer)",
                "balancer    http://127.0.0.1:7000/substations",
                "substations http://127.0.0.1:5001/load  :5002  :5003",
                f"prometheus  {prometheus_ui_url('targets')}" if prometheus else "prometheus  not started",
                "load        python load_tester/test.py -n 200 -c 8",
                "Ctrl-C stops everything.",
            ):
                emit("runner", "  " + line)
        while not stop.is_set():
            if any(not p.running for p in stack.started):
                dead = [p.name for p in stack.started if not p.running]
                emit("runner", f"{', '.join(dead)} exited; stopping the suite")
                return_code = 1
                break
            stop.wait(0.5)
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
