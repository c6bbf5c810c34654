"""A day of arrivals, fixed against fair sharing, written down as a results file.

    python -m bench.day [--day-seconds 120] [--seed 1]

It runs the load tester's own comparison (`load_tester/test.py --scenario day --compare`: the same Poisson
arrivals, 3x oversubscribed at the evening peak, on two fresh grids of the compose shape, ALLOCATION=fixed
then fair) and keeps each grid's summary in bench/results/day.json, with the targets of issue 11 checked:
no overload instant in either, fair delivering at least 95 % of the energy the headroom allowed, and fair
starting at least twice as many sessions at once (201, not queued and not refused) as fixed. The chart
goes to bench/results/day.png.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.report import Table
from bench.report import text as render
from bench.stamp import RESULTS, write_results
from tools.processes import ROOT

DELIVERED_SHARE_TARGET = 0.95
STARTS_RATIO_TARGET = 2.0
KEPT = (
    "allocation", "arrivals", "outcomes", "queued_started", "started_without_refusal", "energy_delivered_kwh",
    "energy_allowed_kwh", "delivered_share", "wait_p50_min", "wait_p95_min", "overload_instants",
    "overload_counter_s", "jain_lowest", "peak_waiting", "oversubscription",
)  # fmt: skip


def summarise_day(report: dict) -> dict:
    """Each grid's figures, and the targets met or not."""
    grids = {run["allocation"]: {key: run[key] for key in KEPT} for run in report["runs"]}
    fixed, fair = grids["fixed"], grids["fair"]
    at_once = fair["outcomes"]["started"] / max(1, fixed["outcomes"]["started"])
    within_day = fair["started_without_refusal"] / max(1, fixed["started_without_refusal"])
    overloads = [grid["overload_instants"] + (grid["overload_counter_s"] or 0) for grid in grids.values()]
    targets = [
        {"name": "overload instants, both grids (sampled + counted seconds)", "target": "== 0",
         "measured": max(overloads), "met": max(overloads) == 0},
        {"name": "fair: energy delivered / energy the headroom allowed", "target": f">= {DELIVERED_SHARE_TARGET:g}",
         "measured": round(fair["delivered_share"] or 0.0, 3),
         "met": (fair["delivered_share"] or 0.0) >= DELIVERED_SHARE_TARGET},
        {"name": "sessions started at once (201), fair / fixed", "target": f">= {STARTS_RATIO_TARGET:g}",
         "measured": round(at_once, 2), "met": at_once >= STARTS_RATIO_TARGET},
    ]  # fmt: skip
    return {"grids": grids, "started_within_day_fair_over_fixed": round(within_day, 2), "targets": targets}


def day_table(figures: dict) -> Table:
    def cell(value: float | None, form: str) -> str:
        return "-" if value is None else format(value, form)

    rows = []
    for allocation, grid in figures["grids"].items():
        outcomes = grid["outcomes"]
        rows.append([
            allocation, str(grid["arrivals"]), str(outcomes["started"]), str(outcomes["queued"]),
            str(grid["queued_started"]), str(outcomes["refused"]), cell(grid["energy_delivered_kwh"], ".0f"),
            cell(grid["delivered_share"], ".3f"), cell(grid["wait_p50_min"], ".0f"), cell(grid["wait_p95_min"], ".0f"),
            str(grid["overload_instants"]), cell(grid["jain_lowest"], ".3f"),
        ])  # fmt: skip
    header = ["allocation", "arrivals", "started (201)", "queued (202)", "queued, then started", "refused (503)",
              "energy kWh", "of allowed", "wait p50 min", "wait p95 min", "overloads", "lowest Jain"]  # fmt: skip
    return header, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--day-seconds", type=float, default=120.0, help="wall seconds of the day (default 120)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the arrivals (default 1)")
    args = parser.parse_args(argv)
    chart = RESULTS / "day.png"
    report = play_compare(args.day_seconds, args.seed, chart)
    if report is None:
        return 1
    figures = summarise_day(report)
    settings = {"day_seconds": args.day_seconds, "seed": args.seed, "grid": "compose shape", "wait": True}
    show_written(day_table(figures), figures, write_results("day", argv, settings, figures), chart)
    return 0


def play_compare(day_seconds: float, seed: int, chart: Path, *more: str) -> dict | None:
    """The report (--json) of the load tester's own `--scenario day --compare` (with `more` of its options), its
    chart to `chart`; None, said on stderr, when the day did not play out."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-day-") as scratch:
        report_path = Path(scratch) / "day.json"
        command = [sys.executable, "load_tester/test.py", "--scenario", "day", "--compare", *more, "-q",
                   "--day-seconds", f"{day_seconds:g}", "--seed", str(seed),
                   "--json", str(report_path), "--plot", str(chart)]  # fmt: skip
        played = subprocess.run(command, cwd=ROOT, check=False)
        if played.returncode != 0 or not report_path.exists():
            print(f"the day did not play out (exit {played.returncode})", file=sys.stderr)
            return None
        return json.loads(report_path.read_text())


def show_written(table: Table, figures: dict, path: Path, chart: Path) -> None:
    """The table, each target met or missed, and where the results and the chart went."""
    print(render(table))
    for target in figures["targets"]:
        print(f"{target['name']}: {target['measured']} ({target['target']}: {'met' if target['met'] else 'MISSED'})")
    print(f"written: {path.relative_to(ROOT)}, {chart.relative_to(ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
