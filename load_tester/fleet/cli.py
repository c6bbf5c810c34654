"""The fleet's command line: `python -m load_tester.fleet --chargers 10 ...` (and `load_tester/test.py --chargers`).

Exit code 0 if every charger got in, 1 if any was refused (unknown id, wrong password) or never connected,
2 for bad options; the summary line says which.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import signal
import sys
from pathlib import Path

from grid_common.long_lived import freeze_after_full_collections
from grid_common.settings import ConfigError
from load_tester.fleet.fleet import DEFAULT_URL, PROTOCOLS, Fleet, FleetConfig, FleetResult
from load_tester.fleet.status import FleetEnvironment, serve_status


def parse_args(argv: list[str] | None, prog: str | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run simulated OCPP chargers (1.6J and 2.0.1) with cars against a CSMS.",
        epilog="Example: python -m load_tester.fleet --url ws://127.0.0.1:9000/ocpp --chargers 10 --duration 60",
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("OCPP_URL", DEFAULT_URL),
        help="the CSMS's base URL (default: $OCPP_URL, else %(default)s); chargers connect to URL/<id>",
    )
    parser.add_argument("--chargers", type=int, default=10, help="number of chargers (default: %(default)s)")
    parser.add_argument("--prefix", default="fleet-cp", help="ids are PREFIX1..PREFIXN (default: %(default)s)")
    parser.add_argument("--ids", help="comma-separated charger ids instead of --prefix/--chargers")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="mixed", help="mixed alternates 1.6 and 2.0.1")
    parser.add_argument("--password", help="HTTP Basic password of every charger (username: its id)")
    parser.add_argument(
        "--time-scale", type=float, default=1.0, help="the grid's clock runs this much faster (default: 1)"
    )
    parser.add_argument("--meter-interval", type=float, default=1.0, help="seconds between meter values")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds to run; 0: until stopped (SIGTERM)")
    parser.add_argument("--cycle", action="store_true", help="a new car some seconds after the last one left")
    parser.add_argument(
        "--cycle-pause", type=float, default=10.0, help="with --cycle, at most this many seconds between cars"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the cars drawn (default: %(default)s)")
    parser.add_argument(
        "--connect-rate", type=float, default=200.0, help="connections opened per second (default: %(default)s)"
    )
    parser.add_argument("--follow-delay", type=float, default=1.0, help="seconds a car takes to lower its draw")
    parser.add_argument("--no-cars", action="store_true", help="connect only; cars come by remote start")
    parser.add_argument(
        "--no-validate", action="store_true", help="skip the schema checks of what the chargers send (cheaper)"
    )
    parser.add_argument("--progress", type=float, default=5.0, help="seconds between progress lines; 0: none")
    parser.add_argument("--samples", type=int, default=60, help="samples kept per charger for --record")
    parser.add_argument("--record", metavar="FILE", help="write the JSON summary to FILE")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every OCPP message")
    args = parser.parse_args(argv)
    for name in ("time_scale", "meter_interval", "connect_rate"):
        value = getattr(args, name)
        if not (value > 0 and math.isfinite(value)):
            parser.error(f"--{name.replace('_', '-')} must be more than 0")
    if args.chargers < 1 and not args.ids:
        parser.error("--chargers must be 1 or more")
    if args.duration < 0 or args.follow_delay < 0 or args.cycle_pause < 0 or args.progress < 0:
        parser.error("--duration, --follow-delay, --cycle-pause and --progress must be 0 or more")
    return args


def config_from(args: argparse.Namespace) -> FleetConfig:
    ids = [part.strip() for part in args.ids.split(",") if part.strip()] if args.ids else None
    return FleetConfig(
        url=args.url,
        chargers=len(ids) if ids else args.chargers,
        prefix=args.prefix,
        ids=ids,
        protocol=args.protocol,
        password=args.password,
        time_scale=args.time_scale,
        meter_interval_s=args.meter_interval,
        duration_s=args.duration or None,
        cycle=args.cycle,
        cycle_pause_s=args.cycle_pause,
        seed=args.seed,
        connect_rate=args.connect_rate,
        plug=not args.no_cars,
        follow_delay_s=args.follow_delay,
        validate_messages=not args.no_validate,
        progress_interval_s=args.progress or None,
        sample_limit=args.samples,
    )


def summary_line(result: FleetResult) -> str:
    line = (
        f"fleet: {result.ever_connected}/{result.chargers} chargers connected, {result.transactions} transactions, "
        f"{result.energy_wh / 1000:.1f} kWh, {result.profiles_received} profiles "
        f"({result.profiles_rejected} rejected), {result.messages_sent} messages, {result.errors} errors, "
        f"{result.duration_s:.1f} s"
    )
    if result.refused:
        shown = "; ".join(f"{why}" for why in list(result.refused.values())[:5])
        line += f"\nrefused: {len(result.refused)} ({shown})"
    unrefused = [charger_id for charger_id in result.never_connected if charger_id not in result.refused]
    if unrefused:
        line += f"\nnever connected: {len(unrefused)} ({', '.join(unrefused[:5])})"
    return line


async def run(config: FleetConfig, status_bind: str | None = None) -> FleetResult:
    fleet = Fleet(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, fleet.stop_soon)  # stop cleanly: transactions end, sockets close
    status = None if not status_bind else await serve_status(status_bind, fleet.counts)
    async with fleet:
        await fleet.run()
    if status is not None:
        status.close()
    assert fleet.result is not None
    return fleet.result


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = parse_args(argv, prog)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if not args.verbose:
        logging.getLogger("load_tester.fleet.ocpp").setLevel(logging.WARNING)
    try:
        environment = FleetEnvironment.from_env()
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    freeze_after_full_collections()  # thousands of chargers' objects, walked by every full collection otherwise
    result = asyncio.run(run(config_from(args), environment.bind))
    print(summary_line(result))
    if args.record:
        try:
            Path(args.record).write_text(json.dumps(result.as_json(), indent=1) + "\n")
        except OSError as error:
            print(f"cannot write {args.record}: {error}", file=sys.stderr)
            return 1
        print(f"summary written to {args.record}")
    return 0 if result.ok else 1
