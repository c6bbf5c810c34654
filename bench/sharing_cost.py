"""What fair sharing costs at admission: `python -m bench.sharing_cost`.

The same deployment-shaped suite as `make bench` (a process per substation, journal and background on,
most_power), over substations with ALLOCATION=fair and over substations with ALLOCATION=fixed, in pairs:
each pair measures one right after the other (the order alternating from pair to pair), and the figure is
the median of the pairs' ratios. `make bench` measures fixed beside fair once per round, among a dozen
setups; on a machine whose speed drifts by a fifth from one run to the next, a single ratio per round
cannot tell a 10 % cost from noise, and pairs can.

    .venv/bin/python -m bench.sharing_cost [--pairs 5] [--duration 5] [--sizes 2 64]

Writes bench/results/sharing_cost.json; docs/benchmarks.md's table is made from it (python -m bench.doc).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TypedDict

from bench.grid import Substations, substation_settings
from bench.measure import STRATEGIES, measure_suite
from bench.report import Table, targets_table, text
from bench.stamp import write_results
from bench.summary import FAIR_VS_FIXED_TARGET, target
from bench.wrk import CONNECTIONS, require_wrk, session_seconds

ALLOCATIONS = ("fair", "fixed")


class PairedRuns(TypedDict):
    """One N: each pair's req/s per allocation, its fair / fixed ratio, and their median."""

    pairs: list[dict[str, float]]
    ratios: list[float]
    median: float


def summarise(pairs: dict[str, list[dict[str, float]]]) -> dict:
    """Per N, each pair's req/s and fair / fixed ratio, their median, and the target."""
    sizes: dict[str, PairedRuns] = {}
    for size, measured in pairs.items():
        ratios = [round(pair["fair"] / pair["fixed"], 3) for pair in measured]
        sizes[size] = {"pairs": measured, "ratios": ratios, "median": round(statistics.median(ratios), 3)}
    targets = [
        target(f"fair / fixed at N = {size}, median of pairs", row["median"], ">=", FAIR_VS_FIXED_TARGET)
        for size, row in sizes.items()
    ]
    return {"sizes": sizes, "targets": targets}


def sharing_cost_table(figures: dict) -> Table:
    rows = [
        [f"N = {size}", ", ".join(f"{ratio:.2f}" for ratio in row["ratios"]), f"{row['median']:.2f}"]
        for size, row in figures["sizes"].items()
    ]
    return ["deployment, most_power", "fair / fixed, each pair", "median"], rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5, help="pairs of runs per N (default 5)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of load per run (default 5)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[2, 64], help="numbers of substations")
    args = parser.parse_args(argv)
    if not require_wrk():
        return 2
    sizes = sorted(set(args.sizes))
    session_s = session_seconds(args.duration)
    started = time.monotonic()
    pairs: dict[str, list[dict[str, float]]] = {str(size): [] for size in sizes}
    with tempfile.TemporaryDirectory(prefix="bench-") as logs:
        log_dir = Path(logs)
        print(f"starting substations: 2 x {max(sizes)} processes (fair, fixed)", flush=True)
        grids = {
            allocation: Substations(max(sizes), log_dir, session_s, process_each=True, allocation=allocation)
            for allocation in ALLOCATIONS
        }
        try:
            for size in sizes:
                for number in range(args.pairs):
                    order = ALLOCATIONS if number % 2 == 0 else ALLOCATIONS[::-1]
                    pair = {}
                    for allocation in order:
                        substations = grids[allocation]
                        run = measure_suite(substations.urls[:size], substations, STRATEGIES[0], log_dir, args.duration)
                        pair[allocation] = run["rps"]
                    pairs[str(size)].append(pair)
                    print(f"  N = {size:<3} pair {number + 1}/{args.pairs}: fair {pair['fair']:.0f}, "
                          f"fixed {pair['fixed']:.0f} req/s, ratio {pair['fair'] / pair['fixed']:.2f} "
                          f"({time.monotonic() - started:.0f} s so far)", flush=True)  # fmt: skip
        finally:
            for substations in grids.values():
                substations.stop()
    figures = summarise(pairs)
    settings = {
        "pairs": args.pairs,
        "duration_s": args.duration,
        "sizes": sizes,
        "connections": CONNECTIONS,
        "strategy": STRATEGIES[0],
        "substations": "a process each, " + substation_settings(),
    }
    path = write_results("sharing_cost", argv, settings, figures)
    print()
    print(text(sharing_cost_table(figures)))
    print()
    print(text(targets_table(figures["targets"])))
    print(f"written: {path.relative_to(path.parents[2])} ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
