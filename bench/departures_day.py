"""Departures over HTTP: the load tester's day, every driver with a departure, fair against planned, written
down as a results file.

    python -m bench.departures_day [--day-seconds 240] [--seed 1]

It runs the load tester's own comparison with departures (`load_tester/test.py --scenario day --compare
--departures`: the same Poisson arrivals, 3x oversubscribed at the evening peak, each driver staying as the hour
they come says, on two fresh grids of the compose shape, ALLOCATION=fair then planned, every request through the
gateway and every session stopped through it as its driver leaves) and keeps each grid's figures in
bench/results/departures_day.json, with the issue's targets checked: planning leaves more drivers with their
energy, about the same energy delivered, no overload. The chart goes to bench/results/departures_day.png.
`bench.departures` plays the same cars in process over several days; this is the same on the real services.
"""

from __future__ import annotations

import argparse
import sys

from bench.day import play_compare, show_written
from bench.report import Table
from bench.stamp import RESULTS, write_results

# "The same energy delivered": within this share of fair's.
SAME_ENERGY = 0.05
KEPT = (
    "allocation", "arrivals", "departures", "satisfied", "satisfied_share", "promised", "energy_delivered_kwh",
    "energy_allowed_kwh", "delivered_share", "overload_instants", "overload_counter_s", "oversubscription",
)  # fmt: skip


def summarise(report: dict) -> dict:
    """Each grid's figures, and the targets met or not."""
    grids = {run["allocation"]: {key: run[key] for key in KEPT} for run in report["runs"]}
    fair, planned = grids["fair"], grids["planned"]
    more = planned["satisfied"] - fair["satisfied"]
    energy = (planned["energy_delivered_kwh"] or 0.0) / max(1e-9, fair["energy_delivered_kwh"] or 0.0)
    overloads = [grid["overload_instants"] + (grid["overload_counter_s"] or 0) for grid in grids.values()]
    targets = [
        {"name": "drivers who left with their energy, planned - fair", "target": "> 0", "measured": more,
         "met": more > 0},
        {"name": "energy delivered, planned / fair", "target": f"within {SAME_ENERGY:.0%} of 1",
         "measured": round(energy, 3), "met": abs(energy - 1) <= SAME_ENERGY},
        {"name": "overload instants, both grids (sampled + counted seconds)", "target": "== 0",
         "measured": max(overloads), "met": max(overloads) == 0},
    ]  # fmt: skip
    return {"grids": grids, "more_satisfied": more, "targets": targets}


def departures_day_table(figures: dict) -> Table:
    def cell(value: float | None, form: str) -> str:
        return "-" if value is None else format(value, form)

    rows = [
        [allocation, f"{grid['departures']:,}", f"{grid['satisfied']:,}", cell(grid["satisfied_share"], ".1%"),
         f"{grid['promised']:,}", cell(grid["energy_delivered_kwh"], ",.0f"), cell(grid["delivered_share"], ".1%"),
         str(grid["overload_instants"])]
        for allocation, grid in figures["grids"].items()
    ]  # fmt: skip
    header = ["allocation", "drivers", "left with their energy", "share", "promised at request", "energy kWh",
              "of allowed", "overload instants"]  # fmt: skip
    return header, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--day-seconds", type=float, default=240.0,
                        help="wall seconds of the day (default 240: compose's TIME_SCALE 360)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=1, help="seed of the arrivals and stays (default 1)")
    args = parser.parse_args(argv)
    chart = RESULTS / "departures_day.png"
    report = play_compare(args.day_seconds, args.seed, chart, "--departures")
    if report is None:
        return 1
    figures = summarise(report)
    settings = {"day_seconds": args.day_seconds, "seed": args.seed, "grid": "compose shape", "departures": True}
    path = write_results("departures_day", argv, settings, figures)
    show_written(departures_day_table(figures), figures, path, chart)
    return 0


if __name__ == "__main__":
    sys.exit(main())
