"""The bench's arithmetic: medians over rounds, and ratios taken within a round, then their median."""

from __future__ import annotations

import statistics

from bench.measure import STRATEGIES


def summarise(rounds: list[dict], sizes: list[int]) -> dict:
    """Medians over rounds; ratios are taken within each round, then their median."""
    runs = []
    for size in sizes:
        for strategy in STRATEGIES:
            samples = [r["suite"][(strategy, size)] for r in rounds]
            runs.append(
                {
                    "strategy": strategy,
                    "substations": size,
                    "rps": round(statistics.median(s["rps"] for s in samples), 1),
                    "p50_ms": round(statistics.median(s["p50_ms"] for s in samples), 2),
                    "p99_ms": round(statistics.median(s["p99_ms"] for s in samples), 2),
                    "errors": sum(s["errors"] for s in samples),
                    # The worst round, not a typical one: fairness must hold every time.
                    "spread_sessions": max(s["spread_sessions"] for s in samples),
                    "cpu_ms_per_request": {
                        part: round(statistics.median(s["cpu_ms_per_request"][part] for s in samples), 3)
                        for part in samples[0]["cpu_ms_per_request"]
                    },
                    "rps_rounds": [s["rps"] for s in samples],
                }
            )
    smallest, largest = min(sizes), max(sizes)
    reference = (STRATEGIES[0], smallest)
    return {
        "runs": runs,
        "rounds": len(rounds),
        "floor_rps": round(statistics.median(r["floor"]["rps"] for r in rounds), 1),
        "floor": {
            "rps_rounds": [r["floor"]["rps"] for r in rounds],
            "p50_ms": round(statistics.median(r["floor"]["p50_ms"] for r in rounds), 2),
            "p99_ms": round(statistics.median(r["floor"]["p99_ms"] for r in rounds), 2),
            "errors": sum(r["floor"]["errors"] for r in rounds),
        },
        "efficiency": round(statistics.median(r["suite"][reference]["rps"] / r["floor"]["rps"] for r in rounds), 3),
        "efficiency_of": {"strategy": reference[0], "substations": reference[1]},
        "scaling": {
            "substations": [smallest, largest],
            "rps_ratio": round(
                statistics.median(
                    r["suite"][(STRATEGIES[0], largest)]["rps"] / r["suite"][reference]["rps"] for r in rounds
                ),
                3,
            ),
        },
    }
