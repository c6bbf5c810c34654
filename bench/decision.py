"""Microbenchmark of the balancer's decision alone: choose, reserve and release, at N substations.

python -m bench.decision            # prints microseconds per decision for N = 10, 1 000, 10 000
"""

from __future__ import annotations

import random
import time

from grid_common.protocol import LoadReport
from load_balancer.grid_view import GridView
from load_balancer.strategies import LeastUtilization

SIZES = (10, 1_000, 10_000)


def loaded_grid(size: int, rng: random.Random) -> GridView:
    """N substations of a few capacity classes, each partly loaded, as after a busy hour."""
    grid = GridView([(f"substation{i}", f"http://substation{i}") for i in range(size)])
    for i in range(size):
        capacity = rng.choice((150.0, 300.0, 500.0, 1000.0))
        report = LoadReport(
            name=f"substation{i}",
            capacity_kw=capacity,
            ev_power_kw=capacity * rng.uniform(0.1, 0.8),
            background_kw=0.0,
            active_sessions=rng.randrange(40),
            charger_max_power_kw=22.0,
            epoch="bench",
            sequence=1,
        )
        grid.apply_report(f"substation{i}", report, now=0)
    return grid


def decision_us(size: int, decisions: int = 20_000, seed: int = 1) -> float:
    """Mean microseconds for one decision as the assigner makes it: pick under the lock, reserve, later release."""
    rng = random.Random(seed)
    grid = loaded_grid(size, rng)
    strategy = LeastUtilization()
    in_flight: list[tuple[str, float]] = []
    started = time.perf_counter()
    for _ in range(decisions):
        with grid.lock:
            choice = strategy.choose(grid, 11.0)
            grid.reserve(choice.name, 11.0)
        in_flight.append((choice.name, 11.0))
        if len(in_flight) > 32:  # 32 requests in flight, as under the benchmark's load
            grid.release(*in_flight.pop(0))
    return (time.perf_counter() - started) / decisions * 1e6


def measure() -> dict[str, float]:
    return {str(size): round(min(decision_us(size) for _ in range(3)), 2) for size in SIZES}


if __name__ == "__main__":
    for size, micros in measure().items():
        print(f"N = {size:>6}: {micros:7.2f} us per decision")
