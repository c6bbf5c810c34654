"""`--scenario day`: a day of arrivals against a running grid, or (--compare) fixed against fair on fresh grids."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from grid_common.simulated_time import SimulatedClock
from load_tester.day.arrivals import Arrival, default_peak_rate, schedule, time_scale_for
from load_tester.day.chart import write_day_chart
from load_tester.day.grid_sampler import GridSampler, substation_urls
from load_tester.day.play import PlayedDay, play
from load_tester.day.report import day_report, scenario_header
from load_tester.day.stats import DayResult, summarise_day
from load_tester.report import write_json


def peak_rate_of(args: argparse.Namespace) -> float:
    return args.peak_rate if args.peak_rate is not None else default_peak_rate(args.day_seconds)


def run_scenario(args: argparse.Namespace) -> int:
    if args.compare:
        from load_tester.day.compare import run_compare  # starts processes: only this mode needs tools/

        return run_compare(args)
    return run_live(args)


def run_live(args: argparse.Namespace) -> int:
    """The day against the grid at --url and --balancer-url, played from the hour that grid has now."""
    time_scale = time_scale_for(args.day_seconds)
    peak_rate = peak_rate_of(args)
    urls, error = substation_urls(args.balancer_url, args.timeout)
    if urls is None:
        print(f"cannot list the substations of the balancer at {args.balancer_url}: {error}", file=sys.stderr)
        return 1
    start_hour = SimulatedClock(time_scale).hour_of_day(time.time())  # what the grid's substations have now
    arrivals = schedule(args.seed, args.day_seconds, peak_rate, start_hour, args.vehicle_prefix)
    print("\n".join(scenario_header(arrivals, args.day_seconds, peak_rate, start_hour, args.seed, time_scale)))
    print(
        f"  the day is the grid's if its substations run TIME_SCALE={time_scale:g} and BACKGROUND_PHASE_HOURS=0 "
        f"(compose runs TIME_SCALE=360: --day-seconds 240); checked after the run",
        flush=True,
    )
    sampler = GridSampler(urls, args.sample_interval)
    played = play(
        args.url,
        arrivals,
        sampler,
        day_seconds=args.day_seconds,
        start_hour=start_hour,
        time_scale=time_scale,
        timeout=args.timeout,
        label="day",
    )
    result = summarise_day(played, peak_rate)
    result.label = result.allocation or "grid"
    return finish(args, [played], [result], f"A day on the grid at {args.url}", arrivals)


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
            {"index": a.index, "at_s": round(a.at_s, 3), "hour": round(a.hour, 3), **a.body} for a in arrivals
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
