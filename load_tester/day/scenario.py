"""`--scenario day`: a day of arrivals against a running grid, or (--compare) fixed against fair on fresh grids."""

from __future__ import annotations

import argparse
import sys
import time

from grid_common.simulated_time import SimulatedClock
from load_tester.day.arrivals import default_peak_rate, schedule, time_scale_for
from load_tester.day.grid_sampler import GridSampler, substation_urls
from load_tester.day.output import finish
from load_tester.day.play import play
from load_tester.day.report import scenario_header
from load_tester.day.stats import summarise_day


def peak_rate_of(args: argparse.Namespace) -> float:
    return args.peak_rate if args.peak_rate is not None else default_peak_rate(args.day_seconds)


def run_scenario(args: argparse.Namespace) -> int:
    if args.compare:
        from load_tester.day.compare import run_compare  # starts processes: only this mode needs tools/

        return run_compare(args, peak_rate_of(args))
    return run_live(args, peak_rate_of(args))


def run_live(args: argparse.Namespace, peak_rate: float) -> int:
    """The day against the grid at --url and --balancer-url, played from the hour that grid has now."""
    time_scale = time_scale_for(args.day_seconds)
    urls, error = substation_urls(args.balancer_url, args.timeout)
    if urls is None:
        print(f"cannot list the substations of the balancer at {args.balancer_url}: {error}", file=sys.stderr)
        return 1
    start_hour = SimulatedClock(time_scale).hour_of_day(time.time())  # what the grid's substations have now
    arrivals = schedule(args.seed, args.day_seconds, peak_rate, start_hour, args.vehicle_prefix,
                        departures=args.departures)  # fmt: skip
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
