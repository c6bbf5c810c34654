"""`make bench`: throughput, latency and fairness of the suite, against the floor of its own stack.

It starts max(N) substations once and keeps them for the whole run: capacity large enough that nothing
fills, and sessions that last 4 s longer than a run, so that nothing ends during a run and every run
starts on an empty grid. By default one process simulates them all (SUBSTATION_COUNT), each at its own
URL; `--process-per-substation` gives each its own process, as in compose. Then, for each round, it
measures the floor (a trivial 3-hop Flask chain with the same server and client settings) and, for each
strategy and each N in (2, 8, 64), a fresh balancer over the first N substations and a fresh gateway,
driven by wrk (a compiled load generator) at 32 connections. Then the decision microbenchmark and the
CPU cost of an idle balancer polling max(N) substations.

Why rounds: these machines are noisy (the same run a minute apart differs by 20 %), so every figure is
the median of several rounds, and every ratio is taken within a round, between runs made next to each
other, then its median is reported.

    make bench                      # or: .venv/bin/python -m bench.run [--duration 5] [--rounds 5] [--sizes 2 8 64]
    make bench ARGS=--process-per-substation

Figures go to stdout as tables, and to bench/results.json and bench/results.png.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench import decision
from bench.grid import Substations
from bench.measure import STRATEGIES, measure_floor, measure_polling, measure_suite
from bench.report import chart, table
from bench.summary import summarise
from bench.wrk import CONNECTIONS, WARM_UP_S
from tools.processes import ROOT

RESULTS = ROOT / "bench" / "results.json"
CHART = ROOT / "bench" / "results.png"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of load per run (default 5)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of every measurement (default 5)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[2, 8, 64], help="numbers of substations")
    parser.add_argument(
        "--process-per-substation",
        action="store_true",
        help="run every substation in a process of its own (default: one process simulates them all)",
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is missing: `apt-get install wrk` (Debian/Ubuntu)", file=sys.stderr)
        return 2
    sizes = sorted(set(args.sizes))
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-") as logs:
        log_dir = Path(logs)
        mode = "one process each" if args.process_per_substation else "simulated in one process"
        print(f"starting {max(sizes)} substations ({mode})...", flush=True)
        # Sessions outlast the warm-up and the run by 4 s, then end before the next run's warm-up.
        substations = Substations(
            max(sizes), log_dir, WARM_UP_S + args.duration + 4, process_each=args.process_per_substation
        )
        urls = substations.urls
        try:
            print(f"idle balancer polling {max(sizes)} substations for 10 s...", flush=True)
            poll_cpu = measure_polling(urls, log_dir)
            print(f"  {poll_cpu * 100:.1f} % of one core", flush=True)
            rounds = []
            # The figures that are compared sit next to each other: the floor beside least_utilization at
            # the smallest N, and each strategy's sizes in a row. Odd rounds run in reverse, so a machine
            # that speeds up or slows down during the run favours no size.
            order = [("floor", 0)] + [(strategy, size) for strategy in STRATEGIES for size in sizes]
            for number in range(args.rounds):
                print(f"round {number + 1}/{args.rounds} ({time.monotonic() - started:.0f} s so far)", flush=True)
                measured = {}
                for strategy, size in order if number % 2 == 0 else reversed(order):
                    if strategy == "floor":
                        run = measured["floor"] = measure_floor(log_dir, args.duration)
                        print(f"  {'floor (3-hop chain)':<24} {run['rps']:>7.0f} req/s  p99 {run['p99_ms']:.1f} ms")
                        continue
                    run = measured[(strategy, size)] = measure_suite(
                        urls[:size], substations, strategy, log_dir, args.duration
                    )
                    print(
                        f"  {strategy:<18} N={size:<3} {run['rps']:>7.0f} req/s  p99 {run['p99_ms']:.1f} ms  "
                        f"spread {run['spread_sessions']}",
                        flush=True,
                    )
                rounds.append({"floor": measured.pop("floor"), "suite": measured})
        finally:
            substations.stop()
    print("decision microbenchmark...", flush=True)
    results = {
        **summarise(rounds, sizes),
        "decision_us": decision.measure(),
        "poll_cpu_fraction_64": poll_cpu if max(sizes) == 64 else None,
        "command": "make bench" + (" ARGS=--process-per-substation" if args.process_per_substation else ""),
        "substation_processes": max(sizes) if args.process_per_substation else 1,
        "duration_s": args.duration,
        "connections": CONNECTIONS,
    }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    chart(results, CHART)

    print()
    print(f"medians of {args.rounds} rounds of {args.duration:g} s at {CONNECTIONS} connections; spread: worst round")
    print(table(results["runs"], results["floor_rps"]))
    print()
    floor = results["floor"]
    print(f"floor (trivial 3-hop chain): {results['floor_rps']:.0f} req/s, p50 {floor['p50_ms']:.1f} ms, ", end="")
    print(f"p99 {floor['p99_ms']:.1f} ms")
    print(f"efficiency (least_utilization, N={min(sizes)}, over the floor): {results['efficiency']:.2f}")
    scaling = results["scaling"]
    print(f"throughput N={max(sizes)} / N={min(sizes)} (least_utilization): {scaling['rps_ratio']:.2f}")
    print("decision: " + ", ".join(f"N={n}: {us} us" for n, us in results["decision_us"].items()))
    print(f"balancer polling {max(sizes)} substations, idle: {poll_cpu * 100:.1f} % of one core")
    print(f"written: {RESULTS.relative_to(ROOT)}, {CHART.relative_to(ROOT)} ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
