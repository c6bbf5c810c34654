"""Driving load with wrk (a compiled load generator) and reading its figures."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from tools.processes import ROOT

CONNECTIONS = 32
WARM_UP_S = 1.0
SCRIPT = "bench/post.lua"


def body_env(energy_kwh: float) -> dict[str, str]:
    """What bench/post.lua reads: the energy each request asks for, at 11 kW."""
    return {**os.environ, "BENCH_ENERGY_KWH": f"{energy_kwh:.6f}"}


def require_wrk() -> bool:
    """wrk is installed; else says how to install it."""
    if shutil.which("wrk") is None:
        print("wrk is missing: `apt-get install wrk` (Debian/Ubuntu)", file=sys.stderr)
        return False
    return True


def session_seconds(duration: float) -> float:
    """A session that outlasts a run (its warm-up included), then ends before the next run's."""
    return WARM_UP_S + duration + 4


def wrk(url: str, duration: float, energy_kwh: float = 11.0, connections: int = CONNECTIONS) -> dict:
    """Requests per second, latency percentiles and errors of `duration` seconds of POSTs to `url`."""
    command = ["wrk", "-t2", f"-c{connections}", f"-d{duration:g}s", "--timeout", "5s", "-s", SCRIPT, url]
    env = body_env(energy_kwh)
    output = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=duration + 60).stdout
    line = next(line for line in output.splitlines() if line.startswith("BENCH_JSON "))
    stats = json.loads(line.removeprefix("BENCH_JSON "))
    errors = sum(stats[key] for key in ("connect", "read", "write", "status", "timeout"))
    return {
        "rps": round(stats["requests"] / (stats["duration_us"] / 1e6), 1),
        "p50_ms": round(stats["p50_us"] / 1000, 2),
        "p99_ms": round(stats["p99_us"] / 1000, 2),
        "errors": errors,
        "requests": stats["requests"],
    }


def warm_up(url: str, energy_kwh: float = 11.0) -> None:
    command = ["wrk", "-t1", "-c4", f"-d{WARM_UP_S:g}s", "-s", SCRIPT, url]
    subprocess.run(command, cwd=ROOT, env=body_env(energy_kwh), capture_output=True, timeout=30)
