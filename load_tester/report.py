"""The report: the summary as aligned text tables on stdout, and as JSON for --json."""

from __future__ import annotations

import json
from typing import Any

from load_tester.stats import Summary, spread


def table(headers: list[str], rows: list[list[Any]], left: int = 1, indent: str = "  ") -> list[str]:
    """Plain aligned text: the first `left` columns left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        parts = [
            cell.ljust(w) if i < left else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        return (indent + "  ".join(parts)).rstrip()

    return [line(cells[0]), indent + "  ".join("-" * w for w in widths)] + [line(row) for row in cells[1:]]


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def pct(part: float, whole: float) -> str:
    return fmt(100 * part / whole if whole else None)


def report(summary: Summary) -> str:
    total = summary.requests
    lines = ["", "Summary", "=======", "", "Outcomes"]
    lines += table(["status", "count", "%"], [[s, n, pct(n, total)] for s, n in summary.outcomes.items()])

    lines += ["", f"Latency (ms, over {summary.answered} HTTP answers)"]
    lines += table(list(summary.latency_ms), [[fmt(v) for v in summary.latency_ms.values()]], left=0)

    lines += ["", "Throughput"]
    lines += table(
        ["requests", "concurrency", "wall time s", "requests/s"],
        [[total, summary.concurrency, fmt(summary.duration_s, 3), fmt(summary.throughput_rps)]],
        left=0,
    )

    lines += ["", "Sessions by substation (201 replies)"]
    placed = sum(summary.sessions.values())
    if summary.sessions:
        lines += table(
            ["substation", "sessions", "share %"], [[k, n, pct(n, placed)] for k, n in summary.sessions.items()]
        )
        lines.append(f"  spread (max - min): {spread(summary.sessions)} sessions")
    else:
        lines.append("  no sessions started")

    lines += ["", f"Balancer view after the run ({summary.balancer_url})"]
    if summary.balancer is None:
        lines.append(f"  balancer unavailable: {summary.balancer_error}")
    else:
        lines += table(
            ["substation", "healthy", "active", "load_kw / capacity_kw", "utilization %"], balancer_rows(summary)
        )
        utilizations = [u for sub in summary.balancer if isinstance(u := sub.get("utilization"), int | float)]
        if utilizations:
            # Substations differ in capacity, so balance shows in utilization, not in session counts.
            gap = (max(utilizations) - min(utilizations)) * 100
            lines.append(f"  utilization spread (max - min): {fmt(gap)} percentage points")

    if summary.sampler is not None:
        sampler = summary.sampler
        lines += ["", f"Samples of the balancer's view, every {sampler.interval:g} s (--plot)"]
        failed = f"{sampler.errors} failed" + (f", last: {sampler.last_error}" if sampler.errors else "")
        if sampler.samples:
            lines.append(f"  {len(sampler.samples)} samples over {fmt(sampler.samples[-1].t)} s, {failed}")
        else:
            lines.append(f"  none: {failed}")
    return "\n".join(lines)


def balancer_rows(summary: Summary) -> list[list[Any]]:
    rows = []
    for sub in summary.balancer or []:
        utilization = sub.get("utilization")
        load = f"{fmt(sub.get('load_kw'))} / {fmt(sub.get('capacity_kw'))}"
        rows.append(
            [
                sub["name"],
                "yes" if sub.get("healthy") else "no",
                sub.get("active_sessions", "-"),
                load,
                fmt(utilization * 100 if isinstance(utilization, int | float) else None),
            ]
        )
    return rows


def write_json(path: str, data: dict) -> str | None:
    """`data` as indented JSON at `path`; what went wrong, or None."""
    try:
        with open(path, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2)
            out.write("\n")
    except OSError as error:
        return f"could not write {path}: {error}"
    return None
