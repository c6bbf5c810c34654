"""The day scenario's report: its metrics as aligned tables, one column per run (one run, or fixed and fair)."""

from __future__ import annotations

from collections.abc import Callable

from load_tester.day.arrivals import PEAK_HOUR as ARRIVAL_PEAK_HOUR
from load_tester.day.arrivals import Arrival, arrival_power_kw, clock, headroom_kw, mean_shape, oversubscription
from load_tester.day.stats import DayResult
from load_tester.report import fmt, table


def count(value: int | None) -> str:
    return "-" if value is None else str(value)


def percent(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.1f}"


def factor(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}x"


Row = tuple[str, Callable[[DayResult], str]]
DEPARTURES = "Departures"
# Each section: its title, then its rows (a label, and what it shows of a run).
SECTIONS: list[tuple[str, list[Row]]] = [
    (
        "Outcomes",
        [
            ("arrivals (requests sent)", lambda r: count(r.arrivals)),
            ("started at once (201)", lambda r: count(r.outcomes["started"])),
            ("queued (202)", lambda r: count(r.outcomes["queued"])),
            ("  started later in the day", lambda r: count(r.queued_started)),
            ("  still waiting as the day ended", lambda r: count(r.queued_waiting)),
            ("refused (503)", lambda r: count(r.outcomes["refused"])),
            ("other outcomes", lambda r: count(r.outcomes["other"])),
            ("started in the day (201, or 202 then started)", lambda r: count(r.started_without_refusal)),
        ],
    ),
    (
        "Energy",
        [
            ("delivered (kWh, the counters)", lambda r: fmt(r.energy_delivered_kwh)),
            ("  the EV power sampled, integrated (kWh)", lambda r: fmt(r.energy_sampled_kwh)),
            ("allowed by the headroom while cars waited (kWh)", lambda r: fmt(r.energy_allowed_kwh)),
            ("delivered / allowed (%)", lambda r: percent(r.delivered_share)),
        ],
    ),
    (
        DEPARTURES,
        [
            ("drivers (each with a departure)", lambda r: count(r.departures)),
            ("left with their energy", lambda r: count(r.satisfied)),
            ("left with their energy (%)", lambda r: percent(r.satisfied_share)),
            ("promised it at their request", lambda r: count(r.promised)),
        ],
    ),
    (
        "Waiting (queued sessions, simulated minutes)",
        [
            ("wait p50 (min)", lambda r: fmt(r.wait_p50_min, 0)),
            ("wait p95 (min)", lambda r: fmt(r.wait_p95_min, 0)),
            ("most cars waiting at once", lambda r: count(r.peak_waiting)),
        ],
    ),
    (
        "Safety and fairness",
        [
            ("overload instants in the samples", lambda r: count(r.overload_instants)),
            ("overload counter (s, summed)", lambda r: fmt(r.overload_counter_s, 3)),
            ("Jain's fairness as the day ended (min)", lambda r: fmt(r.jain_end, 3)),
            ("Jain's fairness, lowest sampled", lambda r: fmt(r.jain_lowest, 3)),
        ],
    ),
    (
        "The grid",
        [
            ("oversubscription at the evening peak (sampled)", lambda r: factor(r.oversubscription)),
            ("samples (failed reads)", lambda r: f"{r.samples} ({r.sample_errors})"),
        ],
    ),
]


def day_tables(results: list[DayResult]) -> list[str]:
    """Every section as a table: a row per metric, a column per run."""
    lines: list[str] = []
    for title, rows in SECTIONS:
        if title == DEPARTURES and not any(r.departures for r in results):
            continue
        cells = [[label] + [show(r) for r in results] for label, show in rows]
        lines += ["", *table([title, *(r.label for r in results)], cells)]
    return lines


def scenario_header(
    arrivals: list[Arrival], day_seconds: float, peak_rate: float, start_hour: float, seed: int, time_scale: float
) -> list[str]:
    """What is played, and how hard it is: printed before the day starts."""
    asked = arrival_power_kw(peak_rate, day_seconds)
    return [
        f"Day scenario: {len(arrivals)} arrivals (about {peak_rate * day_seconds * mean_shape():.0f} expected) over "
        f"24 h played in {day_seconds:g} s from {clock(start_hour)}, seed {seed}",
        f"  grid clock: TIME_SCALE {time_scale:g} (86400 / {day_seconds:g} s); arrivals peak at "
        f"{peak_rate:.2f}/s around {clock(ARRIVAL_PEAK_HOUR)}",
        f"  oversubscription at the evening peak: {oversubscription(peak_rate, day_seconds):.2f}x "
        f"({asked:.0f} kW of energy asked for vs {headroom_kw(ARRIVAL_PEAK_HOUR):.0f} kW of headroom "
        "on the compose grid)",
    ]


def day_report(results: list[DayResult], title: str) -> str:
    lines = ["", title, "=" * len(title), *day_tables(results)]
    for result in results:
        if result.other_statuses:
            others = ", ".join(f"{status}: {n}" for status, n in result.other_statuses.items())
            lines.append(f"  {result.label}: other outcomes: {others}")
        if result.session_errors:
            lines.append(f"  {result.label}: {result.session_errors} queued sessions could not be read")
    lines.append("")
    lines.append("  Waits count a car still waiting as the day ended up to then; energy from the counters' deltas;")
    lines.append("  allowed: the integral of min(headroom, demand) over the samples, summed over substations.")
    return "\n".join(lines)
