"""What a substation counts of itself, for its metrics (metrics.py exposes them at scrape time)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from substation_service.sessions import RefusalReason

# Buckets of the histograms the substation keeps (seconds).
WAIT_BUCKETS_S = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)
REALLOCATION_BUCKETS_S = (1e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25)


class Distribution:
    """Observations counted into fixed buckets, as a Prometheus histogram exposes them."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)  # the last one: above every bucket
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, int]]:
        running, rows = 0, []
        for bound, count in zip((*map(str, self.buckets), "+Inf"), self.counts, strict=True):
            running += count
            rows.append((bound, running))
        return rows


@dataclass
class Counters:
    started: int = 0  # sessions that began to charge
    queued: int = 0
    paused: int = 0  # times a charging session was paused
    phase_switches: int = 0  # times a car went between 3 phases and 1 (phase_switching.py, meter.py)
    completed: int = 0
    stopped: int = 0
    refused: dict[RefusalReason, int] = field(default_factory=lambda: dict.fromkeys(RefusalReason, 0))
    overload_seconds: float = 0.0
    energy_finished_kwh: float = 0.0  # of sessions that ended; those still here add theirs
    waits: Distribution = field(default_factory=lambda: Distribution(WAIT_BUCKETS_S))
    reallocations: Distribution = field(default_factory=lambda: Distribution(REALLOCATION_BUCKETS_S))
