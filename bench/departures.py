"""Departures, fair against planned: the load tester's day of arrivals, every car with a departure, on one
substation of the compose grid run in this process (the domain, no HTTP), once under ALLOCATION=fair and once
under ALLOCATION=planned. A driver leaves at the departure (the session is stopped then) or when the energy is
all there; satisfied when it is.

    python -m bench.departures [--seed 1] [--oversubscription 1.5]

Departures are the load tester's (load_tester/day/arrivals.py, stay_hours): work, visits, an evening out, home
overnight. Every draw is seeded: both runs see the same cars.

Prints and writes bench/results/departures.json: drivers satisfied under each, the energy delivered over the
headroom's energy (capacity less background, over the played window), the substation's overload seconds, and
one promised car's plan against what it got.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import UTC, datetime

from bench.stamp import write_results
from grid_common.protocol import Allocation, ChargeRequest
from grid_common.simulated_time import DailyProfile, SimulatedClock
from load_tester.day.arrivals import COMPOSE_GRID, PEAK_HOUR, Arrival, arrival_power_kw, headroom_kw, schedule
from load_tester.day.stats import DONE_KWH
from substation_service.background import BackgroundDemand
from substation_service.substation import Substation

TIME_SCALE = 360.0  # the substations' default: a simulated hour in 10 wall seconds
HOUR_S = 3600.0 / TIME_SCALE
DAY_S = 24 * HOUR_S
STEP_S = 0.5  # 3 simulated minutes
START_HOUR = 12.0  # the day's arrivals from noon to noon
SHAPE = COMPOSE_GRID[0]  # substation1: 150 kW, a background of 30 % of it at its evening peak


@dataclass(frozen=True)
class Car:
    arrival: Arrival
    arrives: float  # wall seconds of the played day
    leaves: float


def cars(seed: int, oversubscription: float) -> list[Car]:
    """The day's cars: the load tester's arrivals at the rate that asks `oversubscription` times the
    substation's headroom at the evening peak, each with its stay."""
    peak_rate = oversubscription * headroom_kw(PEAK_HOUR, (SHAPE,)) / arrival_power_kw(1.0, DAY_S)
    day = schedule(seed, DAY_S, peak_rate, START_HOUR, departures=True)
    return [Car(a, a.at_s, a.leaves_s(DAY_S) or a.at_s) for a in day]


def substation(allocation: str) -> Substation:
    """substation1 of the compose grid, its clock at START_HOUR at wall second 0."""
    clock = SimulatedClock(TIME_SCALE, SimulatedClock(TIME_SCALE).phase_for(START_HOUR, 0.0))
    background = BackgroundDemand(SHAPE.capacity_kw * SHAPE.background_peak_fraction, DailyProfile(), clock)
    return Substation(
        "s1", SHAPE.capacity_kw, SHAPE.charger_max_power_kw, TIME_SCALE, background,
        allocation=Allocation(allocation), step_s=STEP_S, queue_limit=1000, now=0.0,
    )  # fmt: skip


def request(car: Car) -> ChargeRequest:
    body = car.arrival.body
    return ChargeRequest(
        body["vehicle_id"], body["energy_kwh"], body["max_power_kw"], body["min_power_kw"], body["priority"],
        wait=True, departure_time=datetime.fromtimestamp(car.leaves, UTC),
    )  # fmt: skip


def play(allocation: str, day: list[Car]) -> dict:
    """The day on a fresh substation: each car admitted as it comes and stopped as it leaves, in order."""
    grid = substation(allocation)
    events = sorted([(car.arrives, 0, index) for index, car in enumerate(day)] +
                    [(car.leaves, 1, index) for index, car in enumerate(day)])  # fmt: skip
    ids: dict[int, str] = {}
    promised: dict[int, tuple[bool | None, float | None]] = {}
    delivered: dict[int, float] = {}
    moment = 0.0
    for at, kind, index in events:
        while moment + STEP_S < at:  # every step between, as the ticker would
            moment += STEP_S
            grid.advance(moment)
        car = day[index]
        if kind == 0:
            answer = grid.admit(request(car), at)
            session = getattr(answer, "session", None)  # a refusal has none: the car leaves with nothing
            if session is not None:
                ids[index] = session.session_id
                promised[index] = (session.promised, session.energy_expected_kwh)
        elif index in ids:
            ended = grid.stop(ids[index], at) or grid.session(ids[index], at)
            delivered[index] = 0.0 if ended is None else ended.energy_delivered_kwh
    asked = {index: car.arrival.body["energy_kwh"] for index, car in enumerate(day)}
    satisfied = [index for index in delivered if delivered[index] >= asked[index] - DONE_KWH]
    window_end = max(car.leaves for car in day)
    headroom_kwh = sum(
        max(0.0, grid.capacity_kw - grid.background.at(t * STEP_S)) * STEP_S * TIME_SCALE / 3600
        for t in range(int(window_end / STEP_S))
    )
    sample = next((index for index in sorted(promised) if promised[index][0] is True and asked[index] >= 20), None)
    return {
        "cars": len(day),
        "satisfied": len(satisfied),
        "satisfied_share": round(len(satisfied) / len(day), 4),
        "energy_asked_kwh": round(sum(asked.values()), 1),
        "energy_delivered_kwh": round(sum(delivered.values()), 1),
        "headroom_energy_kwh": round(headroom_kwh, 1),
        "delivered_over_headroom": round(sum(delivered.values()) / headroom_kwh, 4),
        "overload_seconds": grid.counters.overload_seconds,
        "promised_car": None
        if sample is None
        else {
            "vehicle": day[sample].arrival.body["vehicle_id"],
            "arrives_hour": round(day[sample].arrival.hour, 2),
            "stays_hours": round((day[sample].leaves - day[sample].arrives) / HOUR_S, 2),
            "asked_kwh": asked[sample],
            "promised": promised[sample][0],
            "expected_kwh": rounded(promised[sample][1]),
            "delivered_kwh": round(delivered.get(sample, 0.0), 3),
        },
    }


def rounded(kwh: float | None) -> float | None:
    return None if kwh is None else round(kwh, 3)


def totals(runs: list[dict]) -> dict:
    """Several days' figures as one: sums, and the shares of the sums."""
    cars = sum(run["cars"] for run in runs)
    satisfied = sum(run["satisfied"] for run in runs)
    delivered = sum(run["energy_delivered_kwh"] for run in runs)
    headroom = sum(run["headroom_energy_kwh"] for run in runs)
    return {
        "cars": cars,
        "satisfied": satisfied,
        "satisfied_share": round(satisfied / cars, 4),
        "energy_delivered_kwh": round(delivered, 1),
        "headroom_energy_kwh": round(headroom, 1),
        "delivered_over_headroom": round(delivered / headroom, 4),
        "overload_seconds": sum(run["overload_seconds"] for run in runs),
    }


def tables(figures: dict) -> list[tuple[list[str], list[list[str]]]]:
    """docs/benchmarks.md's tables: drivers satisfied under each, and the promised car."""
    rows = [
        [allocation, f"{row['cars']:,}", f"{row['satisfied']:,}", f"{row['satisfied_share']:.1%}",
         f"{row['energy_delivered_kwh']:,.1f}", f"{row['delivered_over_headroom']:.1%}", f"{row['overload_seconds']:g}"]
        for allocation, row in figures.items()
        if allocation in ("fair", "planned")
    ]  # fmt: skip
    satisfied = (["allocation", "cars", "left with their energy", "share", "kWh delivered", "of the headroom's",
                  "overload s"], rows)  # fmt: skip
    car = figures.get("promised_car")
    if car is None:
        return [satisfied]
    plan = (["car", "arrives", "stays h", "asked kWh", "promised", "expected kWh", "got kWh"],
            [[car["vehicle"], f"{car['arrives_hour']:.2f} h", f"{car['stays_hours']:.2f}", f"{car['asked_kwh']:g}",
              str(car["promised"]).lower(), f"{car['expected_kwh']:g}", f"{car['delivered_kwh']:g}"]])  # fmt: skip
    return [satisfied, plan]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5], help="one day each (default 1-5)")
    parser.add_argument("--oversubscription", type=float, default=3.0,
                        help="the energy asked per hour at the evening peak over the headroom then (default 3, as "
                             "the load tester's day)")  # fmt: skip
    args = parser.parse_args(argv)
    runs: dict[str, list[dict]] = {"fair": [], "planned": []}
    header = f"{'seed':>4} {'allocation':>10} {'cars':>5} {'satisfied':>10} {'share':>6} {'delivered/headroom':>19}"
    print(f"{header} {'overload s':>10}")
    for seed in args.seeds:
        day = cars(seed, args.oversubscription)
        for allocation, played in runs.items():
            row = play(allocation, day)
            played.append(row)
            print(f"{seed:>4} {allocation:>10} {row['cars']:>5} {row['satisfied']:>10} {row['satisfied_share']:>6.1%} "
                  f"{row['delivered_over_headroom']:>19.1%} {row['overload_seconds']:>10g}", flush=True)  # fmt: skip
    figures = {allocation: totals(played) for allocation, played in runs.items()}
    for allocation, row in figures.items():
        print(f"{'all':>4} {allocation:>10} {row['cars']:>5} {row['satisfied']:>10} {row['satisfied_share']:>6.1%} "
              f"{row['delivered_over_headroom']:>19.1%} {row['overload_seconds']:>10g}")  # fmt: skip
    figures["promised_car"] = runs["planned"][0]["promised_car"]
    print(f"a car promised under planned (seed {args.seeds[0]}): {figures['promised_car']}")
    path = write_results("departures", argv, vars(args), figures)
    print(f"written: {path.relative_to(path.parents[2])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
