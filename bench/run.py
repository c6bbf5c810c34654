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

Why rounds: these machines are noisy (the same run a minute apart differs by a third), so every ratio is taken
within a round, between runs made next to each other, and the median of those ratios is reported; odd
rounds run in reverse order, so a machine that speeds up or slows down favours no setup.

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
from bench.measure import BALANCING, STRATEGIES, measure_floor, measure_polling, measure_suite
from bench.report import chart, console_report
from bench.stamp import RESULTS, write_results
from bench.summary import summarise
from bench.wrk import CONNECTIONS, require_wrk, session_seconds

CHART = RESULTS / "run.png"


def plan(sizes: list[int]) -> list[tuple[str, ...]]:
    """Every measurement of a round, in order, the ones compared kept next to each other."""
    smallest, largest = min(sizes), max(sizes)
    steps: list[tuple[str, ...]] = []
    for size in sizes:
        steps.append(("floor", str(size)))
        steps += [("deployment", "fair", strategy, str(size)) for strategy in STRATEGIES]
        if size in (smallest, largest):
            steps.append(("deployment", "fixed", STRATEGIES[0], str(size)))
    steps.append(("floor", "1"))
    steps += [("single", "fair", STRATEGIES[0], str(size)) for size in sizes]
    return steps


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
            steps = plan(sizes)
            for number in range(args.rounds):
                print(f"round {number + 1}/{args.rounds} ({time.monotonic() - started:.0f} s so far)", flush=True)
                measured: dict[str, dict] = {}
                for step in steps if number % 2 == 0 else reversed(steps):
                    key = "/".join(step)
                    if step[0] == "floor":
                        run = measured[key] = measure_floor(log_dir, args.duration, int(step[1]))
                        print(f"  {key:<36} {run['rps']:>7.0f} req/s  p99 {run['p99_ms']:.1f} ms", flush=True)
                        continue
                    setup, allocation, strategy, size = step
                    substations = grids[f"{setup}/{allocation}"]
                    run = measured[key] = measure_suite(
                        substations.urls[: int(size)], substations, strategy, log_dir, args.duration
                    )
                    print(f"  {key:<36} {run['rps']:>7.0f} req/s  p99 {run['p99_ms']:.1f} ms  "
                          f"spread {run['spread_sessions']}", flush=True)  # fmt: skip
                measured["idle_poll_cpu"] = measure_polling(grids["deployment/fair"].urls, log_dir)
                print(f"  idle balancer polling {largest}: {measured['idle_poll_cpu'] * 100:.1f} % of a core")
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
