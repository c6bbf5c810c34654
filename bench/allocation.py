"""How long a reallocation takes at 100, 1 000 and 10 000 sessions on one substation, and at 100 and 1 000 on
one with three phases and a three-level tree of circuits, and at 100 and 1 000 cars with departures planned.

    python -m bench.allocation [--steps 200] [--sizes 100 1000 10000] [--tree-sizes 100 1000]
                               [--planned-sizes 100 1000]

A substation in fair mode whose sessions want more than its headroom, so every step does the whole
work: the minimums that fit, max-min fair shares per priority, energy settled and completion times of
every session whose power changed. The background rises and falls through the day, so each step's
headroom differs. Each size: the sessions are admitted, then `--steps` allocation steps are timed one
by one; the figures are percentiles of those times.

`plain`: every car on three phases, on no circuit (one limit binds: water-filling). `phases and circuits`: a
third of the cars on one phase (spread by their chargers' wiring), every car on a charger hanging on one of
16 circuits (current a phase or power, in turn) under 4 feeders (current a phase) under the substation:
shared under the substation's total, its three phases and every circuit's limits at once (progressive filling),
with the circuits' sums walked at every step. `planned`: the plain grid under ALLOCATION=planned, every car
with a departure 2 to 14 simulated hours away (a plan is made at most once a quarter of a simulated hour, or
when a car it did not plan charges). Written to bench/results/allocation.json.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, datetime

from bench.stamp import write_results
from grid_common.protocol import GRID_PHASES, Allocation, ChargeRequest, ChargerLink
from grid_common.simulated_time import DailyProfile, SimulatedClock
from substation_service.background import BackgroundDemand
from substation_service.circuits import Circuit, CircuitTree
from substation_service.substation import Substation

TIME_SCALE = 360.0
STEP_S = 1.0
# Targets the project set for a reallocation's p99 (issue 11; with phases and circuits, issue 29), by sessions.
TARGETS_MS = {100: 1.0, 1_000: 10.0, 10_000: 100.0}
TREE_TARGETS_MS = {1_000: 10.0}
FEEDERS, CIRCUITS_PER_FEEDER = 4, 4
MIN_KW = 1.4
VOLTAGE_V = 230.0


def circuit_tree(sessions: int) -> CircuitTree:
    """Feeders with a current limit a phase, each over circuits with a current or a power limit, in turn: each
    circuit holds its share of the sessions' minimums twice over, each feeder less than its circuits together."""
    per_circuit_kw = sessions / (FEEDERS * CIRCUITS_PER_FEEDER) * MIN_KW * 2
    circuits = []
    for feeder in range(1, FEEDERS + 1):
        feeder_kw = per_circuit_kw * CIRCUITS_PER_FEEDER * 0.8
        circuits.append(Circuit(f"f{feeder}", max_current_a=feeder_kw / 3 * 1000 / VOLTAGE_V))
        for number in range(1, CIRCUITS_PER_FEEDER + 1):
            name = f"f{feeder}c{number}"
            if number % 2:
                circuits.append(Circuit(name, f"f{feeder}", max_current_a=per_circuit_kw / 3 * 1000 / VOLTAGE_V))
            else:
                circuits.append(Circuit(name, f"f{feeder}", max_power_kw=per_circuit_kw))
    return CircuitTree(circuits, VOLTAGE_V)


def loaded_substation(sessions: int, seed: int = 1, *, tree: bool = False, planned: bool = False) -> Substation:
    """`sessions` of mixed maxima and priorities, on a substation with room for their minimums only twice over;
    with `tree`, a third of them on one phase and all of them on circuits (circuit_tree)."""
    rng = random.Random(seed)
    capacity = sessions * MIN_KW * 2.5
    background = BackgroundDemand(capacity * 0.2, DailyProfile(), SimulatedClock(TIME_SCALE))
    circuits = circuit_tree(sessions) if tree else None
    # Admit with room for every maximum (each admission is then cheap), then give it its real capacity.
    substation = Substation(
        "bench", capacity * 100, 22.0, TIME_SCALE, background, step_s=STEP_S, circuits=circuits, now=0.0,
        allocation=Allocation.PLANNED if planned else Allocation.FAIR,
    )  # fmt: skip
    for n in range(sessions):
        one_phase = tree and n % 3 == 0
        max_kw = rng.choice((3.7, 7.4)) if one_phase else rng.choice((7.4, 11.0, 22.0))
        leaves = datetime.fromtimestamp(rng.uniform(2, 14) * 3600 / TIME_SCALE, UTC) if planned else None
        request = ChargeRequest(
            f"EV-{n}", 250.0, max_kw, MIN_KW, rng.choice((0, 0, 0, 1, 2)), phases=1 if one_phase else 3,
            departure_time=leaves,
        )  # fmt: skip
        link = None
        if tree:
            circuit = f"f{n % FEEDERS + 1}c{n // FEEDERS % CIRCUITS_PER_FEEDER + 1}"
            link = ChargerLink(f"cp{n}", str(n), 0.0, GRID_PHASES[n // 3 % 3], circuit)
        substation.admit(request, now=0.0, charger=link)
    substation.capacity_kw = capacity
    substation.advance(STEP_S)  # the first step at the real capacity shares for the first time
    return substation


def reallocation_ms(sessions: int, steps: int, *, tree: bool = False, planned: bool = False) -> list[float]:
    substation = loaded_substation(sessions, tree=tree, planned=planned)
    timings = []
    moment = STEP_S
    for _ in range(steps):
        moment += STEP_S
        began = time.perf_counter()
        substation.advance(moment)
        timings.append((time.perf_counter() - began) * 1000)
    return timings


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered)) - 1))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="allocation steps timed per size (default 200)")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(TARGETS_MS), help="sessions per substation")
    parser.add_argument(
        "--tree-sizes", type=int, nargs="*", default=[100, 1000], help="sessions, with phases and circuits"
    )
    parser.add_argument(
        "--planned-sizes", type=int, nargs="*", default=[100, 1000], help="sessions with departures, planned"
    )
    args = parser.parse_args(argv)
    figures: dict[str, dict] = {"plain": {}, "phases_and_circuits": {}, "planned": {}}
    print(f"{'grid':>20} {'sessions':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'target p99':>10}")
    runs = [("plain", size, TARGETS_MS) for size in args.sizes]
    runs += [("phases_and_circuits", size, TREE_TARGETS_MS) for size in args.tree_sizes]
    runs += [("planned", size, {}) for size in args.planned_sizes]
    for layout, size, targets in runs:
        timings = reallocation_ms(size, args.steps, tree=layout == "phases_and_circuits", planned=layout == "planned")
        row = {
            "p50_ms": round(statistics.median(timings), 3),
            "p99_ms": round(percentile(timings, 99), 3),
            "max_ms": round(max(timings), 3),
            "target_p99_ms": targets.get(size),
        }
        figures[layout][str(size)] = row
        target = "-" if row["target_p99_ms"] is None else f"< {row['target_p99_ms']:g}"
        print(f"{layout:>20} {size:>9} {row['p50_ms']:>8.3f} {row['p99_ms']:>8.3f} {row['max_ms']:>8.3f} {target:>10}",
              flush=True)  # fmt: skip
    path = write_results("allocation", argv, vars(args), figures)
    print(f"written: {path.relative_to(path.parents[2])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
