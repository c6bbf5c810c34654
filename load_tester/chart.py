"""The chart of --plot: every substation's utilization and active sessions over time, as sampled."""

from __future__ import annotations

import argparse
import math

from load_tester.client import body_for
from load_tester.sampler import Sampler, number
from load_tester.stats import Summary


def chart_subtitle(args: argparse.Namespace, summary: Summary, strategy: str | None) -> str:
    """The run's parameters and outcomes, in one line."""
    body = body_for(args, 1) or {}
    asked = [f"{summary.requests} requests", f"concurrency {summary.concurrency}"]
    if (energy := number(body.get("energy_kwh"))) is not None:
        asked.append(f"{energy:g} kWh each")
    if (power := number(body.get("max_power_kw"))) is not None:
        asked.append(f"at most {power:g} kW")
    outcomes = ", ".join(
        f"{'HTTP ' + status if status.isdigit() else status.removeprefix('error: ')}: {count}"
        for status, count in summary.outcomes.items()
    )
    return "  ·  ".join(part for part in (", ".join(asked), f"strategy {strategy or '?'}", outcomes) if part)


def write_chart(path: str, args: argparse.Namespace, summary: Summary, sampler: Sampler) -> str | None:
    """Chart every substation's utilization and active sessions over time; None, or what went wrong."""
    if not sampler.samples:
        return (
            f"no chart written: the balancer at {sampler.balancer_url} never answered a sample "
            f"({sampler.errors} tried, last: {sampler.last_error})"
        )
    try:  # only --plot needs matplotlib, so only --plot imports it; Agg draws without any display
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        return "--plot needs matplotlib: pip install matplotlib"

    times = [sample.t for sample in sampler.samples]
    names = list(dict.fromkeys(name for sample in sampler.samples for name in sample.substations))

    def series(name: str, key: str, scale: float = 1.0) -> list[float]:
        values = (sample.substations.get(name, {}).get(key) for sample in sampler.samples)
        return [math.nan if value is None else value * scale for value in values]

    figure = Figure(figsize=(11, 6.6), layout="constrained")
    FigureCanvasAgg(figure)
    utilization_ax, sessions_ax = figure.subplots(2, 1, sharex=True, height_ratios=[3, 1.3])
    marker = "o" if len(times) <= 40 else None  # a short run has few samples: show where they are

    if sampler.run_span is not None and args.plot_tail > 0:
        start, end = sampler.run_span  # a burst can be too short to see: the label says when it was
        for ax, label in ((utilization_ax, f"requests being sent\n({start:.1f}–{end:.1f} s)"), (sessions_ax, None)):
            ax.axvspan(start, end, color="0.88", zorder=0, label=label)
    for index, name in enumerate(names):
        capacity = sampler.capacities.get(name)
        label = name if capacity is None else f"{name} ({capacity:g} kW)"
        # Equal substations draw equal lines: each line is narrower than the ones under it, so all show.
        width = 1.6 + 0.9 * (len(names) - 1 - index)
        style = {"color": f"C{index}", "linewidth": width, "marker": marker, "markersize": 2 + width}
        utilization_ax.plot(times, series(name, "utilization", 100), label=label, **style)
        sessions_ax.step(times, series(name, "active_sessions"), where="post", **style)
    utilization_ax.axhline(100, color="0.25", linestyle="--", linewidth=1, label="capacity (100 %)")
    utilization_ax.axhline(90, color="0.45", linestyle=":", linewidth=1.2, label="90 %")

    figure.suptitle("Substation utilization during the load test", fontsize=13, fontweight="bold")
    utilization_ax.set_title(chart_subtitle(args, summary, sampler.strategy), fontsize=10, color="0.25")
    utilization_ax.set(ylabel="utilization (%)", ylim=(0, 105))
    utilization_ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False, fontsize=9)
    sessions_ax.set(ylabel="active sessions", xlabel="time since start (s)")
    sessions_ax.set_ylim(bottom=0)
    sessions_ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in (utilization_ax, sessions_ax):
        ax.margins(x=0.01)  # just room for the first and last sample's markers
        ax.grid(alpha=0.3)
    try:
        figure.savefig(path, dpi=120)
    except (OSError, ValueError) as error:  # a missing folder, or an extension matplotlib cannot write
        return f"could not write {path}: {error}"
    return None
