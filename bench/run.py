"""`make bench`: throughput, latency and fairness of the suite as compose runs it, against floors measured
in the same round.

The headline is deployment-shaped: a process per substation, every admission journaled (SESSION_DB),
background demand on, smart charging on (ALLOCATION=fair), as docker-compose.yml runs them. Its floor, for
N substations, is a trivial 3-hop Flask chain (the same gunicorn settings and HTTP client, no logic)
whose last hop is N do-nothing processes: a ratio to it is the suite's own cost, not the machine's cost of
N processes. Beside it: the same substations with ALLOCATION=fixed (what sharing costs at admission), and
one process simulating every substation (SUBSTATION_COUNT) against the one-process chain.

Substations are started once and kept: capacity large enough that nothing fills, sessions that outlast a
run by 4 s, so every run starts on an empty grid. Each run starts its own balancer and gateway, and wrk
(a compiled load generator) drives them at 32 connections.

Why rounds, and floors on both sides: these machines are noisy (the same floor a few minutes apart can cost
far more CPU per request), so each floor stays up through its block of suite runs and is measured before
the first and after each; a run's ratio is taken against the mean of the floor just before and just after
it, which cancels a steady drift, and the median of those ratios over the rounds is reported. Odd rounds run
in reverse order, so a machine that speeds up or slows down favours no setup. The headline strategy, whose
ratios the targets are about, runs first and last in each deployment block: its ratio in a round is the mean
of its two, and no place in the block is always its own.

    make bench                      # or: .venv/bin/python -m bench.run [--rounds 5] [--duration 5] [--sizes 2 8 64]

Figures go to stdout as tables, and to bench/results/run.json (stamped with the commit) and
bench/results/run.png; docs/benchmarks.md's tables are made from the results files (python -m bench.doc).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from bench.grid import Substations, substation_settings
from bench.measure import BALANCING, STRATEGIES, Floor, measure_polling, measure_suite
from bench.report import chart, console_report
from bench.stamp import RESULTS, write_results
from bench.summary import AGAIN, HEADLINE, floor_key, floor_of_slices, summarise
from bench.wrk import CONNECTIONS, require_wrk, session_seconds

CHART = RESULTS / "run.png"


def plan(sizes: list[int]) -> list[tuple[int, list[tuple[str, ...]]]]:
    """Every measurement of a round, in blocks: a floor's number of last hops, and the suite's runs it is
    measured around (before the first, and after each). The headline opens and closes each deployment block."""
    smallest, largest = min(sizes), max(sizes)
    blocks: list[tuple[int, list[tuple[str, ...]]]] = []
    for size in sizes:
        headline = ("deployment", "fair", HEADLINE, str(size))
        others = [("deployment", "fair", strategy, str(size)) for strategy in STRATEGIES if strategy != HEADLINE]
        fixed = [("deployment", "fixed", HEADLINE, str(size))] if size in (smallest, largest) else []
        blocks.append((size, [headline, *others, *fixed, headline]))
    blocks.append((1, [("single", "fair", HEADLINE, str(size)) for size in sizes]))
    return blocks


def measure_block(
    last_hops: int, steps: list[tuple[str, ...]], grids: dict[str, Substations], log_dir: Path, duration: float
) -> dict[str, dict]:
    """The suite's runs of one block, each between two slices of its floor, and the floor's own figures.
    Each run keeps the mean of the slices on either side as `floor_rps`: its ratio is taken against that."""
    measured: dict[str, dict] = {floor_key(last_hops): {}}  # the floor's row first in the tables
    floor = Floor(log_dir, last_hops)
    try:
        slices = [floor.measure(duration)]
        print(f"  {floor_key(last_hops):<36} {slices[0]['rps']:>7.0f} req/s", flush=True)
        for step in steps:
            setup, allocation, strategy, size = step
            substations = grids[f"{setup}/{allocation}"]
            run = measure_suite(substations.urls[: int(size)], substations, strategy, log_dir, duration)
            slices.append(floor.measure(duration))
            run["floor_rps"] = round((slices[-2]["rps"] + slices[-1]["rps"]) / 2, 1)
            key = "/".join(step)
            if key in measured:  # the headline's second run of the block
                measured[key][AGAIN] = run
            else:
                measured[key] = run
            print(f"  {key:<36} {run['rps']:>7.0f} req/s  p99 {run['p99_ms']:.1f} ms  "
                  f"spread {run['spread_sessions']}  floor after {slices[-1]['rps']:.0f}", flush=True)  # fmt: skip
    finally:
        floor.stop()
    measured[floor_key(last_hops)] = floor_of_slices(slices)
    return measured


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of load per run (default 5)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of every measurement (default 5)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[2, 8, 64], help="numbers of substations")
    args = parser.parse_args(argv)
    if not require_wrk():
        return 2
    sizes = sorted(set(args.sizes))
    largest = max(sizes)
    started = time.monotonic()
    session_s = session_seconds(args.duration)
    with tempfile.TemporaryDirectory(prefix="bench-") as logs:
        log_dir = Path(logs)
        print(f"starting substations: 2 x {largest} processes (fair, fixed), 1 simulating {largest}", flush=True)
        grids = {
            "deployment/fair": Substations(largest, log_dir, session_s, process_each=True, allocation="fair"),
            "deployment/fixed": Substations(largest, log_dir, session_s, process_each=True, allocation="fixed"),
            "single/fair": Substations(largest, log_dir, session_s, process_each=False, allocation="fair"),
        }
        rounds = []
        try:
            blocks = plan(sizes)
            for number in range(args.rounds):
                print(f"round {number + 1}/{args.rounds} ({time.monotonic() - started:.0f} s so far)", flush=True)
                measured: dict[str, dict | float] = {}  # each run's figures, and the idle polling's share of a core
                backwards = number % 2 == 1
                for last_hops, steps in reversed(blocks) if backwards else blocks:
                    ordered = list(reversed(steps)) if backwards else steps
                    measured |= measure_block(last_hops, ordered, grids, log_dir, args.duration)
                idle_poll_cpu = measure_polling(grids["deployment/fair"].urls, log_dir)
                measured["idle_poll_cpu"] = idle_poll_cpu
                print(f"  idle balancer polling {largest}: {idle_poll_cpu * 100:.1f} % of a core")
                rounds.append(measured)
        finally:
            for substations in grids.values():
                substations.stop()
    figures = summarise(rounds, sizes)
    settings = {
        "rounds": args.rounds,
        "duration_s": args.duration,
        "sizes": sizes,
        "connections": CONNECTIONS,
        "strategies": list(STRATEGIES),
        "balancing": list(BALANCING),
        "substations": substation_settings(),
        "floor": "measured before and after every run; each ratio is against the mean of the two",
        "headline": f"{HEADLINE} runs first and last in each deployment block; a round's ratio is the mean of the two",
    }
    path = write_results("run", argv, settings, {**figures, "rounds": rounds})
    chart(figures, CHART)
    print()
    print(console_report(figures))
    print(f"written: {path.relative_to(path.parents[2])}, {CHART.relative_to(CHART.parents[2])} "
          f"({time.monotonic() - started:.0f} s)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
