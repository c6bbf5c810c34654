"""The bench's results as a table and a chart."""

from __future__ import annotations

from pathlib import Path

from bench.measure import STRATEGIES
from bench.wrk import CONNECTIONS


def table(runs: list[dict], floor_rps: float) -> str:
    header = (
        f"{'strategy':<18} {'N':>3} {'req/s':>8} {'vs floor':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} "
        f"{'spread':>6} {'balancer CPU ms/req':>19}"
    )
    lines = [header, "-" * len(header)]
    for run in runs:
        lines.append(
            f"{run['strategy']:<18} {run['substations']:>3} {run['rps']:>8.0f} {run['rps'] / floor_rps:>8.2f} "
            f"{run['p50_ms']:>7.1f} {run['p99_ms']:>7.1f} {run['errors']:>6} {run['spread_sessions']:>6} "
            f"{run['cpu_ms_per_request']['balancer']:>19.3f}"
        )
    return "\n".join(lines)


def chart(results: dict, path: Path) -> None:
    """Throughput per strategy and N against the floor, and the spread each strategy left."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import ScalarFormatter

    figure = Figure(figsize=(11, 4.6), dpi=110)
    throughput, spread = figure.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    sizes = sorted({run["substations"] for run in results["runs"]})
    width = 0.8 / len(STRATEGIES)

    def figures(strategy: str, key: str) -> list[float]:
        runs = results["runs"]
        return [next(r[key] for r in runs if r["strategy"] == strategy and r["substations"] == n) for n in sizes]

    for index, strategy in enumerate(STRATEGIES):
        positions = [i + (index - 1) * width for i in range(len(sizes))]
        throughput.bar(positions, figures(strategy, "rps"), width, label=strategy, color=f"C{index}")
        spread.bar(positions, [max(v, 0.08) for v in figures(strategy, "spread_sessions")], width, color=f"C{index}")
    throughput.axhline(results["floor_rps"], color="black", linestyle="--", linewidth=1, label="floor: 3-hop chain")
    for axes in (throughput, spread):
        axes.set_xticks(range(len(sizes)), [f"N = {n}" for n in sizes])
        axes.grid(axis="y", alpha=0.3)
    throughput.set_ylabel("requests per second (median of rounds)")
    throughput.set_title(f"Throughput at {CONNECTIONS} connections, efficiency {results['efficiency']:.2f}")
    throughput.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=4, fontsize=8, frameon=False)
    spread.set_yscale("log")
    spread.yaxis.set_major_formatter(ScalarFormatter())
    spread.set_ylabel("active sessions, most minus least loaded")
    spread.set_title("Spread after the run (worst round)")
    figure.tight_layout()
    figure.savefig(path)
