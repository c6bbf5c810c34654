"""The balancer's decision alone, at N substations, in the worst case: most substations full.

    python -m bench.decision            # microseconds per decision for N = 10, 1 000, 10 000

A decision as the assigner makes it: under the grid view's lock, pick (most_power: the choice, and the
admission condition, which rests on the runner-up), and reserve; the reservation is released 32 decisions later,
as under the benchmark's load. 99 % of the substations have no room for any car (full), the rest are
partly loaded: a strategy that walked the rankings would pass every full one each time. Full substations
wait outside the rankings (load_balancer/grid_view.py), so they cost nothing here. Written to
bench/results/decision.json.
"""

from __future__ import annotations

import random
import sys
import time

from bench.stamp import write_results
from grid_common.protocol import ChargeRequest, LoadReport
from load_balancer.grid_view import GridView
from load_balancer.strategies import NOTHING_EXCLUDED, MostPower

SIZES = (10, 1_000, 10_000)
FULL_SHARE = 0.99
TARGET_US = 50.0
REQUEST = ChargeRequest("EV-1", 11.0, 11.0)


def worst_case_grid(size: int, rng: random.Random) -> GridView:
    """N sharing substations of a few capacity classes, 99 % of them full, the rest partly loaded."""
    grid = GridView([(f"substation{i}", f"http://substation{i}") for i in range(size)])
    for i in range(size):
        capacity = rng.choice((150.0, 300.0, 500.0, 1000.0))
        full = i >= 2 and rng.random() < FULL_SHARE  # two at least have room
        committed = capacity if full else capacity * rng.uniform(0.1, 0.8)
        charging = max(1, int(committed / 11))
        report = LoadReport.of(
            name=f"substation{i}", capacity_kw=capacity, ev_power_kw=committed, background_kw=0.0,
            active_sessions=charging, charger_max_power_kw=22.0, epoch="bench", sequence=1,
            others_ev_power_kw=0.0, others_sessions=0, allocation="fair", headroom_kw=capacity,
            admission_headroom_kw=capacity, committed_kw=committed if full else charging * 1.4,
            shareable_kw=(capacity - charging * 1.4,) * 4, sharing_sessions=(charging,) * 4, queue_limit=100,
        )  # fmt: skip
        grid.apply_report(f"substation{i}", report, now=0)
    return grid


def decision_us(size: int, decisions: int = 20_000, seed: int = 1) -> float:
    """Mean microseconds of one decision: pick (choice and condition) and reserve under the lock, release later."""
    grid = worst_case_grid(size, random.Random(seed))
    strategy = MostPower()
    in_flight: list[str] = []
    started = time.perf_counter()
    for _ in range(decisions):
        with grid.lock:
            picked = strategy.pick(grid, REQUEST, NOTHING_EXCLUDED, conditional=True)
            assert picked is not None  # two substations at least have room for far more than 32 in flight
            choice, _ = picked
            grid.reserve(choice.name, 11.0, 1.4)
        in_flight.append(choice.name)
        if len(in_flight) > 32:  # 32 requests in flight, as under the benchmark's load
            grid.release(in_flight.pop(0), 11.0, 1.4)
    return (time.perf_counter() - started) / decisions * 1e6


def measure() -> dict[str, float]:
    return {str(size): round(min(decision_us(size) for _ in range(3)), 2) for size in SIZES}


def main() -> int:
    figures = measure()
    for size, micros in figures.items():
        print(f"N = {int(size):>6}: {micros:7.2f} us per decision (target < {TARGET_US:g} us)")
    settings = {"full_share": FULL_SHARE, "strategy": "most_power", "in_flight": 32, "decisions": 20_000}
    path = write_results("decision", [], settings, {"decision_us": figures})
    print(f"written: {path.relative_to(path.parents[2])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
