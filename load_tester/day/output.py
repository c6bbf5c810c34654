"""How a played day scenario ends, in either mode: the report and its warnings, the JSON of --json, the chart
of --plot, and the exit code."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from load_tester.day.arrivals import Arrival
from load_tester.day.chart import write_day_chart
from load_tester.day.play import PlayedDay
from load_tester.day.report import day_report
from load_tester.day.stats import DayResult
from load_tester.report import write_json


def finish(
    args: argparse.Namespace, played: list[PlayedDay], results: list[DayResult], title: str, arrivals: list[Arrival]
) -> int:
    """Report, warn, write the JSON and the chart; the exit code."""
    print(day_report(results, title))
    for result in results:
        for warning in result.warnings:
            print(f"WARNING ({result.label}): {warning}", file=sys.stderr)
    if args.json:
        problem = write_json(args.json, day_json(args, played, results, arrivals))
        if problem:
            print(problem, file=sys.stderr)
    if args.plot:
        problem = write_day_chart(args.plot, played, results)
        if problem:
            print(problem, file=sys.stderr)
        else:
            print(f"chart written to {args.plot}")
    answered = [o for day in played for o in day.outcomes]
    return 0 if not answered or any(o.ok for o in answered) else 1


def day_json(
    args: argparse.Namespace, played: list[PlayedDay], results: list[DayResult], arrivals: list[Arrival]
) -> dict[str, Any]:
    return {
        "scenario": "day",
        "day_seconds": args.day_seconds,
        "seed": args.seed,
        "arrivals": [
            {"index": a.index, "at_s": round(a.at_s, 3), "hour": round(a.hour, 3), **a.body}
            | ({} if a.stay_hours is None else {"stay_hours": round(a.stay_hours, 4)})
            for a in arrivals
        ],
        "runs": [
            {
                **result.as_json(),
                "replies": [outcome.as_json() for outcome in day.outcomes],
                "samples": [sample.as_json() for sample in day.sampler.samples],
            }
            for day, result in zip(played, results, strict=True)
        ],
    }
