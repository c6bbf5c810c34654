"""What every results file says of itself: the commit it measured, when, on what machine, by which command."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
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


def stamp(command: str, settings: dict) -> dict:
    return {
        "commit": commit(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cores": os.cpu_count(),
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
