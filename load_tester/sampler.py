"""Sampling the balancer's /substations on a background thread, for --plot."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from load_tester.client import read_substations
from load_tester.periodic import PeriodicReader

SAMPLE_INTERVAL_S = 0.25  # default of --sample-interval
SAMPLE_TIMEOUT_S = 1.0  # one read of the balancer's /substations while sampling


def number(value: Any) -> float | None:
    """A JSON number as a float; None for anything else (bool included)."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass
class Sample:
    t: float  # seconds since the sampler started, just before the first request
    substations: dict[str, dict[str, float | None]]  # name -> {"utilization": 0..1, "active_sessions": n}

    def as_json(self) -> dict[str, Any]:
        return {"t": self.t, "substations": self.substations}


class Sampler(PeriodicReader):
    """Reads the balancer's /substations every `interval` seconds on a background thread, the first sample
    as it starts (the grid before any request).

    A sample that fails (timeout, refused, unreadable) is counted and skipped, and sampling never slows the
    requests down: only the first sample, taken before them, can hold their start, for at most one timeout.
    """

    thread_name = "balancer-sampler"

    def __init__(self, balancer_url: str, interval: float, timeout: float = SAMPLE_TIMEOUT_S) -> None:
        super().__init__(interval)
        self.balancer_url = balancer_url
        self.timeout = timeout
        self.samples: list[Sample] = []
        self.strategy: str | None = None
        self.capacities: dict[str, float] = {}  # name -> capacity_kw, as last reported
        self.run_span: tuple[float, float] | None = None  # when requests were being sent, in sample time

    def finish(self) -> None:
        """Stop the thread, then take one last sample: the state after the last request (and the tail)."""
        self.stop()
        self._take()

    def _take(self) -> None:
        t = self.since_start(time.perf_counter())
        try:
            listing, error = read_substations(self.balancer_url, self.timeout)
            if listing is None:
                self._failed(error)
                return
            substations = {}
            for sub in listing["substations"]:
                name = str(sub["name"])
                substations[name] = {
                    "utilization": number(sub.get("utilization")),
                    "active_sessions": number(sub.get("active_sessions")),
                }
                if (capacity := number(sub.get("capacity_kw"))) is not None:
                    self.capacities[name] = capacity
            if isinstance(listing.get("strategy"), str):
                self.strategy = listing["strategy"]
            self.samples.append(Sample(round(t, 3), substations))
        except Exception as error:  # whatever goes wrong with one sample must not end the sampling
            self._failed(f"{type(error).__name__}: {error}")
