"""The bench's grid: substations, balancers and gateways started through the suite's own runner
(tools/stack.py), and what the bench reads from them."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

from tools.stack import RunningService, Stack

QUIET = {"ACCESS_LOG": "false", "LOG_LEVEL": "warning"}
# Substations as compose runs them (background demand on, 30 % of capacity at its peak; every admission
# journaled), with capacity for every session of a run (about 10 000 of 11 kW). They run in real time
# (TIME_SCALE 1), so the background moves by about 2.5 kW a second at most: a fraction of one session
# between two reports. Sped up as compose runs it, a background this size would move by megawatts a
# second, and least_utilization would follow its noise instead of the sessions.
SESSION_POWER_KW = 11.0  # what bench/post.lua asks for
BENCH_DEFAULTS = {
    "substation": {"CAPACITY_KW": "200000", "BACKGROUND_PEAK_FRACTION": "0.3", "TIME_SCALE": "1", **QUIET},
    "balancer": QUIET,
    "gateway": QUIET,
}


def substation_settings() -> str:
    """What the bench's substations are, for the results files' settings."""
    substation = BENCH_DEFAULTS["substation"]
    capacity_mw = float(substation["CAPACITY_KW"]) / 1000
    background = float(substation["BACKGROUND_PEAK_FRACTION"]) * 100
    return f"capacity {capacity_mw:g} MW, background peak {background:g} %, journal on"


def bench_stack(log_dir: Path) -> Stack:
    return Stack(log_dir, defaults=BENCH_DEFAULTS)


def pid(service: RunningService) -> int:
    return service.process.pid


class Substations:
    """The bench's substations: one process each, as compose runs them, or simulated in one process
    (SUBSTATION_COUNT); each journals its sessions in a SQLite file of its own under `log_dir`. A request
    asking for `energy_kwh` at 11 kW charges for `session_s` seconds."""

    def __init__(
        self, size: int, log_dir: Path, session_s: float, *, process_each: bool, allocation: str = "fair"
    ) -> None:
        self.stack = bench_stack(log_dir)
        self.process_each = process_each
        journals = log_dir / f"journals-{allocation}-{'each' if process_each else 'one'}"
        journals.mkdir(exist_ok=True)
        self.energy_kwh = SESSION_POWER_KW * session_s / 3600
        env = {"ALLOCATION": allocation}
        try:
            if process_each:
                self.services = [
                    self.stack.service(
                        f"substation{n}",
                        "substation",
                        {**env, "SUBSTATION_NAME": f"s{n}", "SESSION_DB": str(journals / f"s{n}.sqlite3")},
                        wait=False,
                    )
                    for n in range(1, size + 1)
                ]
                self.urls = [service.url for service in self.services]
            else:
                host = self.stack.service(
                    "substations",
                    "substation",
                    {
                        **env,
                        "SUBSTATION_NAME": "s",
                        "SUBSTATION_COUNT": str(size),
                        "SESSION_DB": str(journals / "sessions.sqlite3"),
                    },
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
