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
from load_tester.report import report, write_json
from load_tester.run import run, watch_tail
from load_tester.sampler import SAMPLE_INTERVAL_S, Sampler
from load_tester.stats import summarise


def parse_args(argv: list[str] | None, prog: str | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Send charging requests to the gateway and summarise the outcomes.",
        epilog="Example: python load_tester/test.py -n 200 -c 8 -q --json summary.json",
    )
    parser.add_argument("--url", default="http://localhost:6000", help="gateway base URL (default: %(default)s)")
    parser.add_argument(
        "-n", "--requests", type=int, default=16, help="number of requests to send (default: %(default)s)"
    )
    parser.add_argument(
        "-c", "--concurrency", type=int, default=1, help="requests in flight at once (default: %(default)s)"
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
        "over time to FILE.png (needs matplotlib)",
    )
    parser.add_argument(
        "--sample-interval",
        type=float,
        metavar="S",
        help=f"seconds between samples, with --plot (default: {SAMPLE_INTERVAL_S})",
    )
    parser.add_argument(
        "--plot-tail",
        type=float,
        metavar="S",
        help="with --plot, sample on this many seconds after the last request, to watch sessions end (default: 0)",
    )
    args = parser.parse_args(argv)
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
    if args.plot is None and (args.sample_interval is not None or args.plot_tail is not None):
        parser.error("--sample-interval and --plot-tail only apply with --plot")
    args.sample_interval = SAMPLE_INTERVAL_S if args.sample_interval is None else args.sample_interval
    args.plot_tail = 0.0 if args.plot_tail is None else args.plot_tail
    if not (args.sample_interval > 0 and math.isfinite(args.sample_interval)):
        parser.error("--sample-interval must be more than 0")
    if not (args.plot_tail >= 0 and math.isfinite(args.plot_tail)):
        parser.error("--plot-tail must be 0 or more")
    return args


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = parse_args(argv, prog)
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
        problem = write_json(args.json, summary)
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
