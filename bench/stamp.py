"""What every results file says of itself: the commit it measured, when, on what machine, by which command."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from tools.processes import ROOT

RESULTS = ROOT / "bench" / "results"


# What the benchmarks write themselves: `make bench-all` changes them as it goes, and they are not what it
# measures, so they do not make a tree dirty.
WRITTEN_BY_THE_BENCH = ("bench/results", "docs/benchmarks.md")


def commit(root: Path = ROOT) -> str:
    """The commit measured, with `+dirty` when the working tree differs from it (outside what the
    benchmarks write)."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False).stdout.strip()

    head = git("rev-parse", "--short=12", "HEAD") or "unknown"
    excluded = [f":(exclude){path}" for path in WRITTEN_BY_THE_BENCH]
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", *excluded)
    return f"{head}+dirty" if dirty else head


def cpu_model() -> str:
    """The processor's name as Linux gives it (the one line of /proc/cpuinfo that says it), else Python's."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def yardstick_ms(rounds: int = 20) -> float:
    """Milliseconds for one fixed piece of pure Python (JSON both ways, dicts and strings, as the services
    spend their time), the best of `rounds`: a machine's pace, so that results measured on different machines,
    or on different days, can be set side by side (twice the yardstick, about twice the CPU for the same work).
    The best of 20 because the machines are noisy: the best of 5 still varied widely from run to run."""
    records = [{"charger_id": f"s-cp{n}", "limit_a": n / 7, "phases": 3, "ok": n % 2 == 0} for n in range(2000)]
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(5):
            decoded = json.loads(json.dumps(records))
            totals: dict[str, float] = {}
            for record in decoded:
                key = record["charger_id"].rpartition("-")[0]
                totals[key] = totals.get(key, 0.0) + record["limit_a"] * record["phases"]
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)


def stamp(command: str, settings: dict) -> dict:
    return {
        "commit": commit(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cores": os.cpu_count(),
            "cpu": cpu_model(),
            "yardstick_ms": yardstick_ms(),
            "python": platform.python_version(),
            "system": f"{platform.system()} {platform.machine()}",
        },
        "command": command,
        "settings": settings,
    }


def write_results(name: str, argv: list[str] | None, settings: dict, figures: dict) -> Path:
    """bench/results/<name>.json: the stamp and the figures, as `python -m bench.<name> <argv>` measured them
    (argv None: this process's own arguments)."""
    command = " ".join(["python -m bench." + name, *(sys.argv[1:] if argv is None else argv)])
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({**stamp(command, settings), "figures": figures}, indent=2) + "\n")
    return path
