"""The chart of --plot in the day scenario: over the played day, per run (a column each, fixed and fair side by
side with --compare): arrivals and what became of them, the grid's power against its capacity, and the queue."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from load_tester.day.arrivals import DAY_HOURS, arrival_shape, clock
from load_tester.day.play import PlayedDay
from load_tester.day.stats import DayResult, usable_kw

if TYPE_CHECKING:
    from matplotlib.artist import Artist

BIN_HOURS = 0.5  # arrivals are counted per half hour of the played day
OUTCOME_COLORS = (("201", "started at once (201)", "C2"), ("202", "queued (202)", "C1"), ("503", "refused (503)", "C3"))


def hours_of(played: PlayedDay, t: float) -> float:
    """Hours since the played day's 00:00 (not wrapped: the axis runs on past midnight)."""
    return played.start_hour + DAY_HOURS * t / played.day_seconds


def draw_arrivals(ax, played: PlayedDay, peak_rate: float) -> None:
    bins = int(DAY_HOURS / BIN_HOURS)
    lefts = [played.start_hour + BIN_HOURS * i for i in range(bins)]
    bottom = [0] * bins
    counted = {status for status, _, _ in OUTCOME_COLORS}
    kinds = [*OUTCOME_COLORS, (None, "other", "0.5")]
    for status, label, color in kinds:
        heights = [0] * bins
        for arrival in played.arrivals:
            outcome = played.outcome_of(arrival).status
            if outcome == status or (status is None and outcome not in counted):
                heights[min(bins - 1, int(DAY_HOURS * arrival.at_s / played.day_seconds / BIN_HOURS))] += 1
        if any(heights):
            ax.bar(lefts, heights, width=BIN_HOURS, bottom=bottom, align="edge", color=color, label=label)
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    # The curve the arrivals were drawn from, as arrivals per bin.
    per_bin = peak_rate * played.day_seconds * BIN_HOURS / DAY_HOURS
    xs = [played.start_hour + DAY_HOURS * i / 240 for i in range(241)]
    ax.plot(xs, [per_bin * arrival_shape(x) for x in xs], color="0.2", linewidth=1.2, label="arrival curve")


def draw_power(ax, played: PlayedDay) -> None:
    samples = played.sampler.samples
    xs = [hours_of(played, s.t) for s in samples]
    background = [s.total("background_kw") for s in samples]
    ev = [s.total("ev_power_kw") for s in samples]
    ax.stackplot(xs, background, ev, colors=("0.75", "C0"), labels=("background", "EV charging"), step="post")
    ax.step(xs, [s.total("capacity_kw") for s in samples], where="post", color="C3", linewidth=1.4, label="capacity")
    usable = [sum(usable_kw(fields) for fields in s.substations.values()) for s in samples]
    ax.step(
        xs,
        [b + u for b, u in zip(background, usable, strict=True)],
        where="post",
        color="0.1",
        linewidth=1,
        linestyle="--",
        label="background + what cars\ncould draw",
    )


def draw_queue(ax, played: PlayedDay) -> None:
    samples = played.sampler.samples
    xs = [hours_of(played, s.t) for s in samples]
    charging = [s.total("active_sessions") - s.total("paused_sessions") for s in samples]
    ax.step(xs, charging, where="post", color="C0", label="charging")
    ax.step(xs, [s.total("queued_sessions") for s in samples], where="post", color="C1", label="waiting (queued)")
    if any(s.total("paused_sessions") for s in samples):
        ax.step(xs, [s.total("paused_sessions") for s in samples], where="post", color="C4", label="paused")


def write_day_chart(path: str, played: list[PlayedDay], results: list[DayResult]) -> str | None:
    """Chart each run's day, a column per run; None, or what went wrong."""
    if not any(day.sampler.samples for day in played):
        return "no chart written: no substation answered a sample"
    try:  # only --plot needs matplotlib, so only --plot imports it; Agg draws without any display
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return "--plot needs matplotlib: pip install matplotlib"

    figure = Figure(figsize=(7 + 5 * len(played), 9), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(3, len(played), sharex=True, sharey="row", squeeze=False, height_ratios=[1, 1.6, 1])
    for column, (day, result) in enumerate(zip(played, results, strict=True)):
        arrivals_ax, power_ax, queue_ax = axes[:, column]
        draw_arrivals(arrivals_ax, day, result.peak_rate)
        draw_power(power_ax, day)
        draw_queue(queue_ax, day)
        share = result.delivered_share
        arrivals_ax.set_title(
            f"{result.label}: {result.outcomes['started']} started at once, {result.outcomes['queued']} queued, "
            f"{result.outcomes['refused']} refused\ndelivered {'-' if share is None else f'{100 * share:.0f} %'} "
            f"of what the headroom allowed, {result.overload_instants} overload instants",
            fontsize=10,
        )
        start = day.start_hour
        ticks = [3.0 * k for k in range(math.ceil(start / 3), math.floor((start + DAY_HOURS) / 3) + 1)]
        queue_ax.set_xticks(ticks, [clock(math.fmod(tick, DAY_HOURS)) for tick in ticks])
        queue_ax.set_xlabel("hour of the played day")
        for ax in (arrivals_ax, power_ax, queue_ax):
            ax.set_xlim(start, start + DAY_HOURS)
            ax.grid(alpha=0.3)
        if column == 0:
            arrivals_ax.set_ylabel(f"arrivals per {BIN_HOURS:g} h")
            power_ax.set_ylabel("power, all substations (kW)")
            queue_ax.set_ylabel("sessions")
    for row in axes:  # one legend per row, of every column's lines (fair may have no queue to show)
        handles: dict[str, Artist] = {}  # label -> the first line drawn with it
        for ax in row:
            for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
                handles.setdefault(label, handle)
        row[-1].legend(handles.values(), handles.keys(), loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    for ax in axes[1]:
        ax.set_ylim(bottom=0)
    figure.suptitle("A day of EV arrivals", fontsize=13, fontweight="bold")
    try:
        figure.savefig(path, dpi=110)
    except (OSError, ValueError) as error:  # a missing folder, or an extension matplotlib cannot write
        return f"could not write {path}: {error}"
    return None
