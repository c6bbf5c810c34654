"""The bench's arithmetic: medians over rounds, and ratios taken within a round, then their median.

A round is a dict of measurements keyed by what was measured ("floor/<N>", "<setup>/<allocation>/<strategy>/<N>")
plus "idle_poll_cpu". A ratio of medians would let a fast round's floor meet a slow round's suite; the
median of within-round ratios never does. A suite run measured between two slices of its floor carries
their mean as `floor_rps`, and is compared with that rather than with the floor's figure for the round.
A setup measured twice in a round keeps its second run under AGAIN, inside its first: the round's figure for
it is the mean of the two.
"""

from __future__ import annotations

import statistics

from bench.measure import BALANCING, STRATEGIES

HEADLINE = STRATEGIES[0]  # the smart-charging default
AGAIN = "again"  # a setup's second run in the same round

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


def runs_of(measured: dict, key: str) -> list[dict]:
    """A setup's runs in one round: one, or two when it was measured again."""
    run = measured[key]
    return [run, run[AGAIN]] if AGAIN in run else [run]


def round_rps(measured: dict, key: str) -> float:
    """A setup's throughput in one round: the mean of its runs'."""
    return statistics.fmean(run["rps"] for run in runs_of(measured, key))


def round_vs_floor(measured: dict, key: str) -> float:
    """A setup against its floor in one round: each run against the floor measured around it (`floor_rps`),
    else against its floor's figure for the round; the mean of its runs' ratios."""
    floor_rps = measured[floor_of(key)]["rps"]
    return statistics.fmean(run["rps"] / run.get("floor_rps", floor_rps) for run in runs_of(measured, key))


def ratios(rounds: list[dict], numerator: str, denominator: str) -> list[float]:
    """One setup's throughput over another's, within each round."""
    return [round_rps(r, numerator) / round_rps(r, denominator) for r in rounds]


def median_of(values: list[float]) -> float:
    return round(statistics.median(values), 3)


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
    """Medians over every run of the setup, in every round; `rps_rounds`: each round's throughput."""
    samples = [run for r in rounds for run in runs_of(r, key)]
    figures = {**median_figures(samples), "rps_rounds": [round(round_rps(r, key), 1) for r in rounds]}
    if "spread_sessions" in samples[0]:
        # The worst run, not a typical one: fairness must hold every time.
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

    vs_floor_rounds = {key: [round_vs_floor(r, key) for r in rounds] for key in keys if not key.startswith("floor/")}
    for key, values in vs_floor_rounds.items():
        runs[key]["vs_floor"] = median_of(values)
        runs[key]["vs_floor_rounds"] = [round(value, 3) for value in values]
    efficiency = {
        "deployment": {str(size): runs[deployment(HEADLINE, size)]["vs_floor"] for size in sizes},
        "single": {str(size): runs[single(size)]["vs_floor"] for size in sizes},
    }
    scaling_rounds = ratios(rounds, single(largest), single(smallest))
    single_scaling = median_of(scaling_rounds)
    fair_vs_fixed_rounds = {
        str(size): ratios(rounds, deployment(HEADLINE, size), deployment(HEADLINE, size, "fixed")) for size in ends
    }
    fair_vs_fixed = {size: median_of(values) for size, values in fair_vs_fixed_rounds.items()}
    spread = {
        strategy: {str(size): runs[deployment(strategy, size)]["spread_sessions"] for size in sizes}
        for strategy in STRATEGIES
    }
    idle_poll_rounds = [r["idle_poll_cpu"] for r in rounds]
    idle_poll = round(statistics.median(idle_poll_rounds), 4)
    targets = [
        *(
            target(
                f"deployment at N = {size} / floor",
                efficiency["deployment"][str(size)],
                ">=",
                EFFICIENCY_TARGET,
                vs_floor_rounds[deployment(HEADLINE, size)],
            )
            for size in ends
        ),
        *(
            [
                target(
                    f"single process: N = {largest} / N = {smallest}",
                    single_scaling,
                    ">=",
                    SINGLE_SCALING_TARGET,
                    scaling_rounds,
                )
            ]
            if largest != smallest
            else []
        ),
        *(
            target(f"spread, {strategy}, N = {size} (sessions)", spread[strategy][str(size)], "<=", SPREAD_TARGET)
            for strategy in BALANCING
            for size in sizes
        ),
        *(
            target(
                f"fair / fixed at N = {size}, deployment",
                fair_vs_fixed[str(size)],
                ">=",
                FAIR_VS_FIXED_TARGET,
                fair_vs_fixed_rounds[str(size)],
            )
            for size in ends
        ),
        target(
            f"idle polling of {largest} substations (share of a core)",
            idle_poll,
            "<",
            IDLE_POLL_TARGET,
            idle_poll_rounds,
        ),
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


def target(name: str, measured: float, relation: str, bound: float, rounds: list[float] | None = None) -> dict:
    """A target met or not; `rounds`: the figure in each round, when it is a median of them, so that a
    reader sees how far apart the rounds were beside how far the median is from the bound."""
    met = {">=": measured >= bound, "<=": measured <= bound, "<": measured < bound}[relation]
    figures = {"name": name, "measured": measured, "target": f"{relation} {bound:g}", "met": met}
    if rounds is not None:
        figures["rounds"] = [round(value, 4) for value in rounds]
    return figures
