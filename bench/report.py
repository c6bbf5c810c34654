"""The bench's results as tables (plain text for the console, Markdown for docs/benchmarks.md) and a chart.

Each table is built once, as a header and rows, from a results file's figures; `text` and `markdown` only
lay it out, so the console and the docs cannot disagree.
"""

from __future__ import annotations

from pathlib import Path

Table = tuple[list[str], list[list[str]]]


def text(table: Table) -> str:
    header, rows = table
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]

    def layout(line: list[str]) -> str:
        first, *others = line
        cells = [first.ljust(widths[0]), *(cell.rjust(width) for cell, width in zip(others, widths[1:], strict=True))]
        return "  ".join(cells)

    lines = [layout(line) for line in (header, *rows)]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(line.rstrip() for line in lines)


def markdown(table: Table) -> str:
    header, rows = table
    align = ["---"] + ["---:"] * (len(header) - 1)
    return "\n".join("| " + " | ".join(line) + " |" for line in (header, align, *rows))


def run_table(figures: dict) -> Table:
    """Every measurement of `bench.run`: medians over rounds, `vs floor` the median of within-round ratios."""
    header = ["setup", "N", "req/s", "vs floor", "p50 ms", "p99 ms", "errors", "spread",
              "gateway CPU ms/req", "balancer CPU ms/req", "substations CPU ms/req"]  # fmt: skip
    rows = []
    for key, run in figures["runs"].items():
        parts = key.split("/")
        if parts[0] == "floor":
            label, size = f"floor: chain to {parts[1]} process{'es' if parts[1] != '1' else ''}", parts[1]
        else:
            setup, allocation, strategy, size = parts
            label = f"{setup}, {allocation}, {strategy}"
        cpu = run.get("cpu_ms_per_request", {})
        rows.append([
            label, size, f"{run['rps']:.0f}", f"{run['vs_floor']:.2f}" if "vs_floor" in run else "-",
            f"{run['p50_ms']:.1f}", f"{run['p99_ms']:.1f}", str(run["errors"]), str(run.get("spread_sessions", "-")),
            *(f"{cpu[part]:.3f}" if cpu else "-" for part in ("gateway", "balancer", "substations")),
        ])  # fmt: skip
    return header, rows


def targets_table(targets: list[dict]) -> Table:
    """Each target, its median, and the lowest and highest round beside it: a median nearer the bound than the
    rounds are to each other is met or missed by the luck of the rounds as much as by the code."""
    with_rounds = any("rounds" in t for t in targets)
    rows = [
        [
            t["name"],
            t["target"],
            f"{t['measured']:g}",
            *([rounds_range(t.get("rounds"))] if with_rounds else []),
            "met" if t["met"] else "**missed**",
        ]
        for t in targets
    ]
    return ["target", "bound", "measured", *(["rounds (lowest to highest)"] if with_rounds else []), ""], rows


def rounds_range(values: list[float] | None) -> str:
    return "-" if not values else f"{min(values):.3g} to {max(values):.3g}"


def fair_vs_fixed_table(figures: dict) -> Table:
    rows = [[f"N = {size}", f"{ratio:.2f}"] for size, ratio in figures["fair_vs_fixed"].items()]
    return ["deployment, most_power", "req/s fair / fixed (within a round)"], rows


def console_report(figures: dict) -> str:
    return "\n\n".join(
        [
            f"medians of {figures['rounds']} rounds; vs floor, fair / fixed: medians of within-round ratios; "
            "spread: worst run",
            text(run_table(figures)),
            text(fair_vs_fixed_table(figures)),
            text(targets_table(figures["targets"])),
        ]
    )


def chart(figures: dict, path: Path) -> None:
    """Each deployment strategy against its floor per N, every round a dot beside the median's bar, the target a
    line; and the spread each left."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import ScalarFormatter

    from bench.measure import STRATEGIES
    from bench.summary import EFFICIENCY_TARGET

    figure = Figure(figsize=(11, 4.6), dpi=110)
    efficiency, spread = figure.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    sizes = figures["sizes"]
    runs = figures["runs"]
    width = 0.8 / len(STRATEGIES)
    positions = range(len(sizes))
    for index, strategy in enumerate(STRATEGIES):
        shifted = [i - 0.4 + width / 2 + index * width for i in positions]
        keys = [f"deployment/fair/{strategy}/{n}" for n in sizes]
        efficiency.bar(shifted, [runs[k]["vs_floor"] for k in keys], width, label=strategy, color=f"C{index}")
        for x, key in zip(shifted, keys, strict=True):
            rounds = runs[key].get("vs_floor_rounds", [])
            efficiency.plot([x] * len(rounds), rounds, "o", color="black", markersize=2.5, alpha=0.6)
        spread.bar(shifted, [max(runs[k]["spread_sessions"], 0.08) for k in keys], width, color=f"C{index}")
    efficiency.axhline(
        EFFICIENCY_TARGET, color="0.3", linestyle="--", linewidth=1, label=f"target {EFFICIENCY_TARGET:g}"
    )
    for axes in (efficiency, spread):
        axes.set_xticks(list(positions), [f"N = {n}" for n in sizes])
        axes.grid(axis="y", alpha=0.3)
    efficiency.set_ylabel("req/s over the floor's (bar: median; dots: rounds)")
    efficiency.set_title("A process per substation, journal and background on, fair sharing")
    efficiency.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=5, fontsize=8, frameon=False)
    spread.set_yscale("log")
    spread.yaxis.set_major_formatter(ScalarFormatter())
    spread.set_ylabel("active sessions, most minus least loaded")
    spread.set_title("Spread after the run (worst run)")
    figure.tight_layout()
    figure.savefig(path)
