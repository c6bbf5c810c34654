"""`--scenario day --compare`: the same arrivals against ALLOCATION=fixed, then ALLOCATION=fair (with
--departures: fair, then planned), each on a fresh grid of the compose shape started through the project's
process runner (tools/stack.py), side by side.

Each grid's clock is set so that the played day is its day: TIME_SCALE = 86400 / day_seconds, and
BACKGROUND_PHASE_HOURS chosen so that its hour 00:00 falls a moment after it is started (STARTUP_ALLOWANCE_S),
when the day begins. Only this mode imports tools/ (and so needs the project's requirements).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

from grid_common.simulated_time import SimulatedClock
from load_tester.day.arrivals import COMPOSE_GRID, schedule, time_scale_for
from load_tester.day.grid_sampler import GridSampler
from load_tester.day.output import finish
from load_tester.day.play import PlayedDay, play
from load_tester.day.report import scenario_header
from load_tester.day.stats import DayResult, summarise_day

ALLOCATIONS = ("fixed", "fair")
# With departures, what planning does for drivers against fair sharing.
DEPARTURE_ALLOCATIONS = ("fair", "planned")
# docker-compose.yml's balancer (tests/unit/test_load_tester_day.py checks that they agree).
COMPOSE_BALANCER = {"STRATEGY": "most_power", "POLL_INTERVAL_S": "1"}
# Time to start the substations (the balancer and the gateway are up already) and for the balancer to see them
# before the day begins; if it takes longer, the day waits for the grid's next midnight.
STARTUP_ALLOWANCE_S = 4.0
LOG_TAIL_LINES = 15


class GridNotStarted(Exception):
    """A grid of the comparison did not start (its services' last log lines were printed)."""


def phase_for_midnight_at(wall_seconds: float, time_scale: float) -> float:
    """The BACKGROUND_PHASE_HOURS under which a substation's hour of day is 0 at `wall_seconds`."""
    return SimulatedClock(time_scale).phase_for(0.0, wall_seconds)


def substation_env(allocation: str, time_scale: float, phase_hours: float) -> dict[str, dict[str, str]]:
    """Each substation's environment: its compose shape, and the day's clock."""
    return {
        s.name: {
            "CHARGER_MAX_POWER_KW": repr(s.charger_max_power_kw),
            "BACKGROUND_PEAK_FRACTION": repr(s.background_peak_fraction),
            "BACKGROUND_PHASE_HOURS": repr((phase_hours + s.background_phase_hours) % 24.0),
            "TIME_SCALE": repr(time_scale),
            "ALLOCATION": allocation,
        }
        for s in COMPOSE_GRID
    }


def start_grid(stack, allocation: str, time_scale: float) -> tuple[str, dict[str, str], float]:
    """Substations of the compose shape, its balancer and a gateway: (gateway URL, each substation's URL, the
    moment the grid's day begins). The substations start last, all at once, so that as little as can be
    comes between setting their clocks and the day."""
    from tools.processes import free_port
    from tools.stack import balancer_sees_all_healthy, wait_for

    ports = {s.name: free_port() for s in COMPOSE_GRID}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    balancer = stack.balancer(urls, **COMPOSE_BALANCER)
    gateway = stack.gateway(balancer.url)
    midnight = time.time() + STARTUP_ALLOWANCE_S
    envs = substation_env(allocation, time_scale, phase_for_midnight_at(midnight, time_scale))
    for s in COMPOSE_GRID:  # on the ports the balancer knows already
        stack.substation(s.name, s.capacity_kw, port=ports[s.name], wait=False, **envs[s.name])
    stack.wait_healthy()
    wait_for(lambda: balancer_sees_all_healthy(balancer.url), 10, "the balancer sees every substation")
    return gateway.url, urls, midnight


def print_log_tails(log_dir: Path) -> None:
    for log in sorted(log_dir.glob("*.log")):
        lines = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        print(f"--- {log.name} (last lines)", *lines, sep="\n", file=sys.stderr)


def wait_for_midnight(midnight: float, day_seconds: float) -> float:
    """Sleep until the grid's day begins; if it began already, until its next one. When it begins."""
    late = time.time() - midnight
    if late > 0:
        days = math.ceil(late / day_seconds)
        midnight += days * day_seconds
        print(f"the grid took {late:.1f} s too long to start: waiting for its next midnight", file=sys.stderr)
    time.sleep(max(0.0, midnight - time.time()))
    return midnight


def play_on_fresh_grid(args: argparse.Namespace, allocation: str, arrivals, time_scale: float) -> PlayedDay:
    from tools.stack import Stack

    with tempfile.TemporaryDirectory(prefix=f"load-tester-{allocation}-") as logs:
        stack = Stack(Path(logs))
        try:
            print(f"starting a grid with ALLOCATION={allocation}", file=sys.stderr, flush=True)
            try:
                gateway_url, urls, midnight = start_grid(stack, allocation, time_scale)
            except (OSError, RuntimeError, TimeoutError) as error:
                print_log_tails(Path(logs))
                raise GridNotStarted(f"the {allocation} grid did not start: {error}") from error
            wait_for_midnight(midnight, args.day_seconds)
            return play(
                gateway_url,
                arrivals,
                GridSampler(urls, args.sample_interval),
                day_seconds=args.day_seconds,
                start_hour=0.0,
                time_scale=time_scale,
                timeout=args.timeout,
                label=allocation,
            )
        finally:
            stack.stop_all()


def run_compare(args: argparse.Namespace, peak_rate: float) -> int:
    try:
        import tools.stack  # noqa: F401 - only to say early what is missing
    except ImportError as error:
        print(f"--compare starts the services, and needs the project's requirements: {error}", file=sys.stderr)
        return 1
    time_scale = time_scale_for(args.day_seconds)
    arrivals = schedule(args.seed, args.day_seconds, peak_rate, 0.0, args.vehicle_prefix, departures=args.departures)
    allocations = DEPARTURE_ALLOCATIONS if args.departures else ALLOCATIONS
    print("\n".join(scenario_header(arrivals, args.day_seconds, peak_rate, 0.0, args.seed, time_scale)), flush=True)
    played: list[PlayedDay] = []
    results: list[DayResult] = []
    for allocation in allocations:
        try:
            day = play_on_fresh_grid(args, allocation, arrivals, time_scale)
        except GridNotStarted as error:
            print(error, file=sys.stderr)
            return 1
        result = summarise_day(day, peak_rate)
        played.append(day)
        results.append(result)
        outcomes = ", ".join(f"{kind} {n}" for kind, n in result.outcomes.items())
        print(f"{allocation}: {len(arrivals)} arrivals: {outcomes}", file=sys.stderr, flush=True)
    title = " vs ".join(allocations).capitalize() + ": the same arrivals on fresh grids"
    return finish(args, played, results, title, arrivals)
