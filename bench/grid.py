"""The bench's grid: substations, balancers and gateways started through the suite's own runner
(tools/stack.py), and what the bench reads from them."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

from tools.stack import RunningService, Stack

QUIET = {"ACCESS_LOG": "false", "LOG_LEVEL": "warning"}
# Capacity large enough that nothing fills during a run.
BENCH_DEFAULTS = {
    "substation": {"CAPACITY_KW": "10000000", "BACKGROUND_PEAK_FRACTION": "0", **QUIET},
    "balancer": QUIET,
    "gateway": QUIET,
}
SESSION_HOURS = 1.0  # bench/post.lua asks for 11 kWh at 11 kW


def bench_stack(log_dir: Path) -> Stack:
    return Stack(log_dir, defaults=BENCH_DEFAULTS)


def pid(service: RunningService) -> int:
    return service.process.process.pid


class Substations:
    """The bench's substations: simulated in one process (SUBSTATION_COUNT), or one process each."""

    def __init__(self, size: int, log_dir: Path, session_s: float, *, process_each: bool) -> None:
        self.stack = bench_stack(log_dir)
        self.process_each = process_each
        env = {"TIME_SCALE": f"{SESSION_HOURS * 3600 / session_s:g}"}
        try:
            if process_each:
                self.services = [
                    self.stack.service(f"substation{n}", "substation", {**env, "SUBSTATION_NAME": f"s{n}"}, wait=False)
                    for n in range(1, size + 1)
                ]
                self.urls = [service.url for service in self.services]
            else:
                host = self.stack.service(
                    "substations", "substation", {**env, "SUBSTATION_NAME": "s", "SUBSTATION_COUNT": str(size)}
                )
                self.services = [host]
                self.urls = [f"{host.url}/s{n}" for n in range(1, size + 1)]
            self.stack.wait_healthy(timeout_s=180)
        except Exception:
            self.stack.stop_all()
            raise

    def pids(self, size: int) -> list[int]:
        """The processes that serve the first `size` substations."""
        return [pid(service) for service in self.services[:size]] if self.process_each else [pid(self.services[0])]

    def stop(self) -> None:
        self.stack.stop_all(timeout_s=10)


def balancer_env(urls: list[str], strategy: str) -> dict[str, str]:
    listing = ",".join(f"s{n}={url}" for n, url in enumerate(urls, start=1))
    return {"SUBSTATIONS": listing, "STRATEGY": strategy}


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def wait_all_healthy(balancer: str, size: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = get_json(f"{balancer}/substations")["substations"]
        if sum(s["healthy"] for s in listed) == size:
            return
        time.sleep(0.2)
    raise TimeoutError(f"the balancer did not see all {size} substations healthy within {timeout:.0f} s")


def active_sessions(urls: list[str]) -> list[int]:
    return [get_json(f"{url}/load")["active_sessions"] for url in urls]


def settled_sessions(urls: list[str]) -> list[int]:
    """Active sessions per substation once the requests still in flight when wrk stopped have landed."""
    previous = None
    for _ in range(50):
        current = active_sessions(urls)
        if current == previous:
            return current
        previous = current
        time.sleep(0.2)
    return current


def wait_idle(urls: list[str], timeout: float) -> None:
    """Every session of the previous run has ended: each run starts on an empty grid."""
    deadline = time.monotonic() + timeout
    while any(active_sessions(urls)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"sessions of the previous run did not end within {timeout:.0f} s")
        time.sleep(0.5)
