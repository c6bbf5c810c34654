"""Statistics of a run: latency percentiles, outcome counts, sessions per substation, and the summary."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from load_tester.client import Outcome
from load_tester.sampler import Sampler

PERCENTILES = (50, 95, 99)


def percentile(ordered: list[float], pct: float) -> float:
    """Nearest-rank percentile of already sorted data."""
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_stats(outcomes: list[Outcome]) -> dict[str, float | None]:
    ordered = sorted(o.latency_ms for o in outcomes if o.latency_ms is not None)
    if not ordered:
        return dict.fromkeys(("min", *(f"p{p}" for p in PERCENTILES), "max"))
    stats = {"min": ordered[0]}
    stats.update({f"p{p}": percentile(ordered, p) for p in PERCENTILES})
    stats["max"] = ordered[-1]
    return {key: round(value, 2) for key, value in stats.items()}


def outcome_counts(outcomes: list[Outcome]) -> dict[str, int]:
    """Counts per status: HTTP statuses in numeric order first, then errors by name."""
    counts = Counter(o.status for o in outcomes)
    return dict(sorted(counts.items(), key=lambda item: (not item[0].isdigit(), item[0].zfill(3))))


def sessions_by_substation(outcomes: list[Outcome], known: list[str]) -> dict[str, int]:
    """201 replies per substation; substations the balancer knows of but got none count as 0."""
    counts = Counter(
        o.body["substation"]
        for o in outcomes
        if o.status == "201" and isinstance(o.body, dict) and "substation" in o.body
    )
    for name in known:
        counts.setdefault(name, 0)
    return dict(sorted(counts.items()))


def spread(counts: dict[str, int]) -> int | None:
    return max(counts.values()) - min(counts.values()) if counts else None


@dataclass
class Summary:
    requests: int
    concurrency: int
    duration_s: float
    outcomes: dict[str, int]
    latency_ms: dict[str, float | None]
    sessions: dict[str, int]
    balancer_url: str
    balancer: list[dict[str, Any]] | None = None
    balancer_error: str | None = None
    answered: int = 0
    sampler: Sampler | None = None  # with --plot
    replies: list[Outcome] = field(default_factory=list)

    @property
    def throughput_rps(self) -> float:
        return round(self.requests / self.duration_s, 2) if self.duration_s > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        data = {
            "requests": self.requests,
            "concurrency": self.concurrency,
            "duration_s": round(self.duration_s, 3),
            "throughput_rps": self.throughput_rps,
            "outcomes": self.outcomes,
            "latency_ms": self.latency_ms,
            "sessions_by_substation": self.sessions,
            "spread_sessions": spread(self.sessions),
            "balancer_substations": self.balancer,
            "replies": [outcome.as_json() for outcome in self.replies],
        }
        if self.sampler is not None:
            data["samples"] = [sample.as_json() for sample in self.sampler.samples]
            data["sample_errors"] = self.sampler.errors
        return data


def summarise(args, outcomes, duration, balancer, balancer_error, sampler=None) -> Summary:
    known = [s["name"] for s in balancer or []]
    return Summary(
        requests=len(outcomes),
        concurrency=args.concurrency,
        duration_s=duration,
        outcomes=outcome_counts(outcomes),
        latency_ms=latency_stats(outcomes),
        sessions=sessions_by_substation(outcomes, known),
        balancer_url=args.balancer_url,
        balancer=balancer,
        balancer_error=balancer_error,
        answered=sum(o.latency_ms is not None for o in outcomes),
        sampler=sampler,
        replies=outcomes,
    )
