"""The bench's arithmetic: medians over rounds, and ratios taken within a round, then their median.

A round is a dict of measurements keyed by what was measured ("floor/<N>", "<setup>/<allocation>/<strategy>/<N>")
plus "idle_poll_cpu". A ratio of medians would let a fast round's floor meet a slow round's suite; the
median of within-round ratios never does. A suite run measured between two slices of its floor carries
their mean as `floor_rps`, and is compared with that rather than with the floor's figure for the round.
"""

from __future__ import annotations

import statistics

from bench.measure import BALANCING, STRATEGIES

HEADLINE = STRATEGIES[0]  # the smart-charging default

# Targets of issue 14 (2 cores): what `summarise` checks the figures against.
EFFICIENCY_TARGET = 0.75
SINGLE_SCALING_TARGET = 0.9
SPREAD_TARGET = 1
IDLE_POLL_TARGET = 0.10
FAIR_VS_FIXED_TARGET = 0.9  # issue 11: sharing costs admission throughput at most 10 %


def suite_key(setup: str, allocation: str, strategy: str, size: int) -> str:
    return f"{setup}/{allocation}/{strategy}/{size}"


def floor_key(last_hops: int) -> str:
    return f"floor/{last_hops}"


def floor_of(key: str) -> str:
    """A deployment's floor has as many last hops as it has substation processes; one process simulating them
    all is compared with a chain of one."""
    setup, _, _, size = key.split("/")
    return floor_key(int(size) if setup == "deployment" else 1)


def median_ratio(rounds: list[dict], numerator: str, denominator: str) -> float:
    return round(statistics.median(r[numerator]["rps"] / r[denominator]["rps"] for r in rounds), 3)


def median_vs_floor(rounds: list[dict], key: str) -> float:
    """A run against the floor measured around it (`floor_rps`), else against its floor's figure for the round."""
    return round(statistics.median(r[key]["rps"] / r[key].get("floor_rps", r[floor_of(key)]["rps"]) for r in rounds), 3)


def median_figures(samples: list[dict]) -> dict:
    """Several measurements of one setup as one: rates, times and CPU as medians, errors as a sum."""
    figures = {
        "rps": round(statistics.median(s["rps"] for s in samples), 1),
        "p50_ms": round(statistics.median(s["p50_ms"] for s in samples), 2),
        "p99_ms": round(statistics.median(s["p99_ms"] for s in samples), 2),
        "errors": sum(s["errors"] for s in samples),
    }
    if "cpu_ms_per_request" in samples[0]:
        figures["cpu_ms_per_request"] = {
            part: round(statistics.median(s["cpu_ms_per_request"][part] for s in samples), 3)
            for part in samples[0]["cpu_ms_per_request"]
        }
    return figures


def floor_of_slices(slices: list[dict]) -> dict:
    """One figure for a floor measured in several slices within a round."""
    return {
        **median_figures(slices),
        "requests": sum(s["requests"] for s in slices),
        "slices_rps": [s["rps"] for s in slices],
    }


def medians(key: str, rounds: list[dict]) -> dict:
    samples = [r[key] for r in rounds]
    figures = {**median_figures(samples), "rps_rounds": [s["rps"] for s in samples]}
    if "spread_sessions" in samples[0]:
        # The worst round, not a typical one: fairness must hold every time.
        figures["spread_sessions"] = max(s["spread_sessions"] for s in samples)
    return figures


def summarise(rounds: list[dict], sizes: list[int]) -> dict:
    """Every measurement's medians, the within-round ratios the targets are about, and each target met or
    not; sizes are string keys, as JSON keeps them."""
    smallest, largest = min(sizes), max(sizes)
    ends = sorted({smallest, largest})  # one size given: one row, not the same row twice
    keys = [key for key in rounds[0] if key != "idle_poll_cpu"]
    runs = {key: medians(key, rounds) for key in keys}

    def deployment(strategy: str, size: int, allocation: str = "fair") -> str:
        return suite_key("deployment", allocation, strategy, size)

    def single(size: int) -> str:
        return suite_key("single", "fair", HEADLINE, size)

    for key, run in runs.items():
        if not key.startswith("floor/"):
            run["vs_floor"] = median_vs_floor(rounds, key)
    efficiency = {
        "deployment": {str(size): runs[deployment(HEADLINE, size)]["vs_floor"] for size in sizes},
        "single": {str(size): runs[single(size)]["vs_floor"] for size in sizes},
    }
    single_scaling = median_ratio(rounds, single(largest), single(smallest))
    fair_vs_fixed = {
        str(size): median_ratio(rounds, deployment(HEADLINE, size), deployment(HEADLINE, size, "fixed"))
        for size in ends
    }
    spread = {
        strategy: {str(size): runs[deployment(strategy, size)]["spread_sessions"] for size in sizes}
        for strategy in STRATEGIES
    }
    idle_poll = round(statistics.median(r["idle_poll_cpu"] for r in rounds), 4)
    targets = [
        *(
            target(f"deployment at N = {size} / floor", efficiency["deployment"][str(size)], ">=", EFFICIENCY_TARGET)
            for size in ends
        ),
        *(
            [target(f"single process: N = {largest} / N = {smallest}", single_scaling, ">=", SINGLE_SCALING_TARGET)]
            if largest != smallest
            else []
        ),
        *(
            target(f"spread, {strategy}, N = {size} (sessions)", spread[strategy][str(size)], "<=", SPREAD_TARGET)
            for strategy in BALANCING
            for size in sizes
        ),
        *(
            target(f"fair / fixed at N = {size}, deployment", fair_vs_fixed[str(size)], ">=", FAIR_VS_FIXED_TARGET)
            for size in ends
        ),
        target(f"idle polling of {largest} substations (share of a core)", idle_poll, "<", IDLE_POLL_TARGET),
    ]
    return {
        "rounds": len(rounds),
        "sizes": sizes,
        "runs": runs,
        "efficiency": efficiency,
        "single_scaling": single_scaling,
        "fair_vs_fixed": fair_vs_fixed,
        "spread": spread,
        "idle_poll_cpu": idle_poll,
        "targets": targets,
    }


def target(name: str, measured: float, relation: str, bound: float) -> dict:
    met = {">=": measured >= bound, "<=": measured <= bound, "<": measured < bound}[relation]
    return {"name": name, "measured": measured, "target": f"{relation} {bound:g}", "met": met}
