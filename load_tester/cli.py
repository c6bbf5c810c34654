"""The command line: options, the requests' bodies, and the entry point that runs it all."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import NoReturn

from load_tester.chart import write_chart
from load_tester.client import fetch_balancer_view
from load_tester.day.grid_sampler import DAY_SAMPLE_INTERVAL_S
from load_tester.report import report, write_json
from load_tester.run import run, watch_tail
from load_tester.sampler import SAMPLE_INTERVAL_S, Sampler
from load_tester.stats import summarise

DEFAULT_REQUESTS = 16
DEFAULT_CONCURRENCY = 1
SCENARIOS = ("requests", "day")
DAY_SECONDS = 120.0  # default of --day-seconds
DEFAULT_SEED = 1
MAX_TIME_SCALE = 1e7  # what a substation accepts as TIME_SCALE
DEFAULT_PEAK_RATE_TEXT = "12.4"  # load_tester.day.arrivals.default_peak_rate(DAY_SECONDS), as the tests check


def parse_args(argv: list[str] | None, prog: str | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Send charging requests to the gateway and summarise the outcomes.",
        epilog="Examples: python load_tester/test.py -n 200 -c 8 -q --json summary.json; "
        "python load_tester/test.py --scenario day --compare --plot day.png",
    )
    parser.add_argument("--url", default="http://localhost:6000", help="gateway base URL (default: %(default)s)")
    # -n and -c default to None so that the day scenario can tell them given; parse_args fills 16 and 1.
    parser.add_argument("-n", "--requests", type=int, help=f"number of requests to send (default: {DEFAULT_REQUESTS})")
    parser.add_argument(
        "-c", "--concurrency", type=int, help=f"requests in flight at once (default: {DEFAULT_CONCURRENCY})"
    )
    parser.add_argument("--body", help="JSON object sent as the body of every request (default: body-less POST)")
    parser.add_argument("--energy-kwh", type=float, help="build a body asking for this much energy")
    parser.add_argument("--max-power-kw", type=float, help="build a body asking for at most this power")
    parser.add_argument(
        "--vehicle-prefix", default="EV-", help="vehicle_id prefix when a body is built (default: %(default)s)"
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request (default: %(default)s)")
    parser.add_argument("-q", "--quiet", action="store_true", help="do not print each reply")
    parser.add_argument("--json", metavar="FILE", help="also write the summary as JSON to FILE")
    parser.add_argument(
        "--balancer-url",
        default="http://localhost:7000",
        help="balancer base URL, read after the run (default: %(default)s)",
    )
    parser.add_argument(
        "--plot",
        metavar="FILE.png",
        help="sample the balancer's /substations during the run and chart utilization and sessions "
        "over time to FILE.png (needs matplotlib); in the day scenario, chart the day",
    )
    parser.add_argument(
        "--sample-interval",
        type=float,
        metavar="S",
        help=f"seconds between samples, with --plot (default: {SAMPLE_INTERVAL_S}; "
        f"{DAY_SAMPLE_INTERVAL_S} in the day scenario, which always samples)",
    )
    parser.add_argument(
        "--plot-tail",
        type=float,
        metavar="S",
        help="with --plot, sample on this many seconds after the last request, to watch sessions end (default: 0)",
    )
    day = parser.add_argument_group(
        "a day of arrivals",
        "--scenario day plays one simulated day of EV arrivals (a Poisson process following a daily curve with an "
        "evening peak, see load_tester/day/arrivals.py), each a request with wait: true, against the grid at --url "
        "and --balancer-url, whose substations should run TIME_SCALE = 86400 / --day-seconds; or, with --compare, "
        "against two fresh grids it starts itself (ALLOCATION=fixed, then fair). It samples every substation's "
        "/load and /metrics, and reports outcomes, energy, waits, overload and fairness.",
    )
    day.add_argument(
        "--scenario",
        choices=SCENARIOS,
        default="requests",
        help="requests: -n requests, -c at a time (the default); day: a day of arrivals",
    )
    day.add_argument(
        "--day-seconds",
        type=float,
        metavar="S",
        help=f"wall seconds the simulated day lasts (default: {DAY_SECONDS:g})",
    )
    day.add_argument(
        "--peak-rate",
        type=float,
        metavar="R",
        help="arrivals per wall second at the evening peak (default: what makes the evening peak "
        f"3x oversubscribed on the compose grid, printed as the day starts: about {DEFAULT_PEAK_RATE_TEXT} "
        f"for a {DAY_SECONDS:g} s day)",
    )
    day.add_argument("--seed", type=int, help=f"seed of the arrivals and their bodies (default: {DEFAULT_SEED})")
    day.add_argument(
        "--compare",
        action="store_true",
        help="play the same arrivals on a fresh grid of the compose shape with ALLOCATION=fixed, then on one with "
        "ALLOCATION=fair, started here (needs the project's requirements), and report them side by side",
    )
    day.add_argument(
        "--departures",
        action="store_true",
        help="give every driver a departure (a stay drawn by the hour of arrival: work, a visit, an evening out, "
        "home overnight; load_tester/day/arrivals.py) as departure_time, and stop each session as its driver "
        "leaves; report how many left with their energy. With --compare: ALLOCATION=fair against planned",
    )
    fleet = parser.add_argument_group(
        "a fleet of OCPP chargers",
        "--chargers N runs N simulated OCPP chargers (1.6J and 2.0.1, alternating) with cars against the OCPP "
        "service for 60 s, instead of sending requests (needs the project's requirements); for all its options: "
        "python -m load_tester.fleet --help, docs/fleet.md",
    )
    fleet.add_argument("--chargers", type=int, metavar="N", help="run N simulated chargers")
    fleet.add_argument(
        "--ocpp-url",
        default="ws://127.0.0.1:9000/ocpp",
        help="with --chargers, the OCPP service's base URL (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.chargers is not None and args.chargers < 1:
        parser.error("--chargers must be 1 or more")
    check_scenario(parser, args)
    if args.requests < 0:
        parser.error("-n/--requests must be 0 or more")
    if args.concurrency < 1:
        parser.error("-c/--concurrency must be 1 or more")
    if args.timeout <= 0:
        parser.error("--timeout must be more than 0")
    if args.body is not None:
        try:
            args.body = json.loads(args.body)
        except ValueError as error:
            parser.error(f"--body is not valid JSON: {error}")
        if not isinstance(args.body, dict):
            parser.error("--body must be a JSON object")
    day_scenario = args.scenario == "day"
    if args.plot is None and not day_scenario and (args.sample_interval is not None or args.plot_tail is not None):
        parser.error("--sample-interval and --plot-tail only apply with --plot")
    if args.sample_interval is None:
        args.sample_interval = DAY_SAMPLE_INTERVAL_S if day_scenario else SAMPLE_INTERVAL_S
    args.plot_tail = 0.0 if args.plot_tail is None else args.plot_tail
    if not (args.sample_interval > 0 and math.isfinite(args.sample_interval)):
        parser.error("--sample-interval must be more than 0")
    if not (args.plot_tail >= 0 and math.isfinite(args.plot_tail)):
        parser.error("--plot-tail must be 0 or more")
    return args


def check_scenario(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Options of one scenario are refused in the other; the defaults of both are filled in."""
    day_only = {"--day-seconds": args.day_seconds, "--peak-rate": args.peak_rate, "--seed": args.seed}
    requests_only = {
        "-n/--requests": args.requests,
        "-c/--concurrency": args.concurrency,
        "--body": args.body,
        "--energy-kwh": args.energy_kwh,
        "--max-power-kw": args.max_power_kw,
        "--plot-tail": args.plot_tail,
    }
    if args.scenario == "day":
        given = [name for name, value in requests_only.items() if value is not None]
        if given:
            parser.error(f"{', '.join(given)}: not with --scenario day (each arrival's body is drawn from --seed)")
    else:
        given = [name for name, value in day_only.items() if value is not None] + ["--compare"] * args.compare
        if given:
            parser.error(f"{', '.join(given)}: only with --scenario day")
    args.requests = DEFAULT_REQUESTS if args.requests is None else args.requests
    args.concurrency = DEFAULT_CONCURRENCY if args.concurrency is None else args.concurrency
    args.day_seconds = DAY_SECONDS if args.day_seconds is None else args.day_seconds
    args.seed = DEFAULT_SEED if args.seed is None else args.seed
    if not (args.day_seconds > 0 and math.isfinite(args.day_seconds)):
        parser.error("--day-seconds must be more than 0")
    if args.day_seconds < 86400 / MAX_TIME_SCALE:
        parser.error(f"--day-seconds must be at least {86400 / MAX_TIME_SCALE:g}: substations run TIME_SCALE up to 1e7")
    if args.peak_rate is not None and not (args.peak_rate > 0 and math.isfinite(args.peak_rate)):
        parser.error("--peak-rate must be more than 0")


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = parse_args(argv, prog)
    if args.chargers is not None:
        from load_tester.fleet.cli import main as run_fleet  # needs the ocpp library: imported for a fleet only

        return run_fleet(["--url", args.ocpp_url, "--chargers", str(args.chargers)], prog)
    if args.scenario == "day":
        try:
            from load_tester.day.scenario import run_scenario  # the day's modules, imported only to play one

            return run_scenario(args)
        except KeyboardInterrupt:
            print("\ninterrupted", file=sys.stderr)
            return 130
    sampler = Sampler(args.balancer_url, args.sample_interval) if args.plot else None
    try:
        outcomes, duration = run(args, sampler)
        balancer, balancer_error = fetch_balancer_view(args.balancer_url, args.timeout)
        if sampler is not None:
            watch_tail(sampler, args.plot_tail)
            sampler.finish()
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        if sampler is not None:
            sampler.stop()
    summary = summarise(args, outcomes, duration, balancer, balancer_error, sampler)
    print(report(summary))
    if args.json:
        problem = write_json(args.json, summary.as_json())
        if problem:
            print(problem, file=sys.stderr)
    if sampler is not None:
        problem = write_chart(args.plot, args, summary, sampler)
        if problem:
            print(problem, file=sys.stderr)
        else:
            print(f"chart written to {args.plot}")
    if not outcomes or any(o.ok for o in outcomes):
        return 0
    return 1


def command(prog: str | None = None) -> NoReturn:
    """Run main() on the command line's arguments and exit with its code."""
    try:
        sys.exit(main(prog=prog))
    except BrokenPipeError:
        # Piped into `head` or a pager that quit: stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)
