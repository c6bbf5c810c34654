"""Draws docs/sharing.png: how one substation shares its headroom, computed by the substation's own allocator.

python -m tools.sharing_picture
"""

from __future__ import annotations

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from substation_service.allocation import Demand, allocate_with_levels, fitting_prefix
from tools.processes import ROOT

PICTURE = ROOT / "docs" / "sharing.png"
# A 150 kW substation in the evening: 105 kW of background leaves 45 kW for EV sessions, listed in the order
# the cars came. Their minimums but the last one's fit: it waits, paused, until they do.
HEADROOM_KW = 45.0
CARS = [
    Demand("taxi\n(priority 2)", 7.0, 11.0, 2),
    Demand("van", 4.0, 11.0, 0),
    Demand("hatchback", 1.4, 3.7, 0),
    Demand("saloon", 1.4, 11.0, 0),
    Demand("SUV", 1.4, 22.0, 0),
    Demand("pickup", 6.0, 22.0, 0),
    Demand("coupe", 8.0, 11.0, 0),
    Demand("truck", 16.0, 22.0, 0),
]


def draw() -> None:
    ordered = sorted(CARS, key=lambda d: -d.priority)  # arrival order within a priority: as listed
    fitting, waiting = fitting_prefix(HEADROOM_KW, ordered)
    shares, levels = allocate_with_levels(HEADROOM_KW, fitting)
    figure = Figure(figsize=(10, 4.8), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    names = [d.key for d in ordered]
    for index, demand in enumerate(ordered):
        share = shares.get(demand.key, 0.0)
        axes.bar(index, demand.max_kw, color="none", edgecolor="0.55", linestyle="--", linewidth=1)
        if share:
            axes.bar(index, demand.min_kw, color="#1f6f8b")
            axes.bar(index, share - demand.min_kw, bottom=demand.min_kw, color="#8fd0e6")
            axes.annotate(f"{share:.1f} kW", (index, share), ha="center", va="bottom", fontsize=9)
        else:
            axes.annotate("paused\n(0 kW)", (index, 0.4), ha="center", va="bottom", fontsize=9, color="#b03a2e")
    level = levels.get(0)
    if level is not None:
        axes.axhline(level, color="#e67e22", linewidth=1.5)
        axes.annotate(f"water level of priority 0: {level:.2f} kW", (len(ordered) - 0.6, level), ha="right",
                      va="bottom", color="#e67e22", fontsize=9)  # fmt: skip
    axes.set_xticks(range(len(ordered)), names)
    axes.set_ylabel("kW")
    axes.set_title(
        f"{HEADROOM_KW:g} kW of headroom shared: minimums first (dark), then max-min fair by priority (light); "
        "dashed: each car's maximum",
        fontsize=10,
    )
    axes.legend(
        handles=[
            axes.bar([0], [0], color="#1f6f8b")[0],
            axes.bar([0], [0], color="#8fd0e6")[0],
        ],
        labels=["its minimum", "its fair share above it"],
        loc="upper left",
        frameon=False,
    )
    total = sum(shares.values())
    figure.suptitle(f"Allocated {total:.1f} of {HEADROOM_KW:g} kW; {len(waiting)} session(s) paused", fontsize=12)
    figure.savefig(PICTURE, dpi=110)
    print(f"wrote {PICTURE.relative_to(ROOT)}")


if __name__ == "__main__":
    draw()
