"""Where a balancer's time goes under load: py-spy samples its worker while wrk drives the suite.

    .venv/bin/python -m bench.profile [--substations 64] [--duration 10] [--raw profile.txt]

It starts N substations, a most_power balancer and a gateway, like `make bench`, and prints the share of
the balancer's samples spent in each library (by the frame that was running) and the functions with the
largest inclusive share; bench/results/profile.json keeps them. `--raw` keeps py-spy's collapsed stacks
(flamegraph.pl input).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.grid import Substations, balancer_env, bench_stack, pid, wait_all_healthy
from bench.proc import children
from bench.report import Table
from bench.report import text as render
from bench.stamp import write_results
from bench.wrk import CONNECTIONS, SCRIPT, body_env, warm_up

STRATEGY = "most_power"
RATE_HZ = 250

# Where a frame's file lives decides its bucket; the first match wins.
BUCKETS = (
    ("load_balancer/", "balancer's own code"),
    ("grid_common/", "grid_common (shared code)"),
    ("urllib3/", "urllib3 (HTTP client)"),
    ("http/client", "http.client"),
    ("gevent/", "gevent (event loop, sockets)"),
    ("socket", "sockets"),
    ("werkzeug/", "werkzeug (HTTP server side)"),
    ("flask/", "flask"),
    ("gunicorn/", "gunicorn"),
    ("json/", "json"),
    ("prometheus_client/", "prometheus_client"),
    ("concurrent/", "poller's thread pool"),
    ("threading", "threading"),
)


def bucket_of(frame: str) -> str:
    return next((name for marker, name in BUCKETS if marker in frame), "other (stdlib, interpreter)")


def parse_collapsed(text: str) -> list[tuple[list[str], int]]:
    stacks = []
    for line in text.splitlines():
        frames, _, count = line.rpartition(" ")
        if frames and count.isdigit():
            stacks.append((frames.split(";"), int(count)))
    return stacks


def whole_seconds(seconds: float) -> str:
    """py-spy's --duration: whole seconds, at least one (it refuses a fraction)."""
    return str(max(1, round(seconds)))


def short(frame: str) -> str:
    """`assign (/…/load_balancer/assignment.py:71)` -> `assign (load_balancer/assignment.py)`."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(path).parts
    return f"{name} ({'/'.join(parts[-2:])})"


def shares(stacks: list[tuple[list[str], int]], top: int = 15) -> dict:
    """Percent of the samples per library (by the running frame) and the functions of largest inclusive share
    (a function counted once per stack, however deep it recurs)."""
    total = sum(count for _, count in stacks)
    by_bucket: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    for frames, count in stacks:
        by_bucket[bucket_of(frames[-1])] += count
        for frame in {short(f) for f in frames}:
            inclusive[frame] += count

    def percent(counter: collections.Counter[str], most: int | None) -> list[list]:
        return [[name, round(count / max(1, total) * 100, 1)] for name, count in counter.most_common(most)]

    return {"samples": total, "self_percent": percent(by_bucket, None), "inclusive_percent": percent(inclusive, top)}


def profile_tables(figures: dict) -> tuple[Table, Table]:
    """Self time by library, and the largest inclusive shares by function."""
    by_library = (["library (where the running frame was)", "% of samples"],
                  [[name, f"{share:.1f}"] for name, share in figures["self_percent"]])  # fmt: skip
    by_function = (["function (inclusive)", "% of samples"],
                   [[f"`{name}`", f"{share:.1f}"] for name, share in figures["inclusive_percent"]])  # fmt: skip
    return by_library, by_function


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--substations", type=int, default=64)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load and of sampling")
    parser.add_argument("--raw", type=Path, help="also keep py-spy's collapsed stacks here")
    parser.add_argument("--process-per-substation", action="store_true", help="as in `make bench`")
    args = parser.parse_args(argv)
    for tool, hint in (("wrk", "apt-get install wrk"), ("py-spy", "pip install py-spy")):
        if shutil.which(tool) is None and not (Path(sys.executable).parent / tool).exists():
            print(f"{tool} is missing: `{hint}`", file=sys.stderr)
            return 2
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    with tempfile.TemporaryDirectory(prefix="profile-") as logs:
        # Hour-long sessions: nothing ends during the run.
        substations = Substations(args.substations, Path(logs), 3600, process_each=args.process_per_substation)
        urls = substations.urls
        stack = bench_stack(Path(logs))
        try:
            balancer = stack.service("balancer", "balancer", balancer_env(urls, STRATEGY))
            wait_all_healthy(balancer.url, len(urls))
            gateway = stack.service("gateway", "gateway", {"BALANCER_URL": balancer.url})
            url = f"{gateway.url}/initiate_energy_transfer"
            warm_up(url, substations.energy_kwh)
            worker = children(pid(balancer))[0]
            raw = Path(logs) / "profile.txt"
            record = [
                "record",
                "--pid",
                str(worker),
                "--duration",
                whole_seconds(args.duration),
                "--rate",
                str(RATE_HZ),
            ]
            sampler = subprocess.Popen(
                [py_spy, *record, "--format", "raw", "--output", str(raw), "--nonblocking"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            wrk = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{args.duration:g}s", "-s", SCRIPT, url]
            env = body_env(substations.energy_kwh)
            load = subprocess.run(wrk, env=env, capture_output=True, text=True, timeout=args.duration + 60)
            sampler.wait(timeout=args.duration + 60)
        finally:
            stack.stop_all(timeout_s=10)
            substations.stop()
        text = raw.read_text()
        if args.raw:
            args.raw.write_text(text)
    rps = next((float(line.split()[-1]) for line in load.stdout.splitlines() if line.startswith("Requests/sec")), None)
    figures = {"rps": rps, **shares(parse_collapsed(text))}
    settings = {
        "substations": args.substations,
        "duration_s": args.duration,
        "connections": CONNECTIONS,
        "process_per_substation": args.process_per_substation,
        "strategy": STRATEGY,
        "rate_hz": RATE_HZ,
    }
    path = write_results("profile", argv, settings, figures)
    print(f"balancer worker, {args.substations} substations, {args.duration:g} s of wrk at {CONNECTIONS} connections:")
    print(f"{rps} requests/s, {figures['samples']} samples")
    for table in profile_tables(figures):
        print(render(table), end="\n\n")
    print(f"written: {path.relative_to(path.parents[2])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
