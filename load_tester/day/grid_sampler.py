"""Sampling every substation's /load and /metrics on a background thread, for the day scenario.

Where the balancer's /substations is its view, this reads the substations themselves: their headroom, what
their cars demand, the queue, and the counters (energy delivered, overload) that only they keep.
"""

from __future__ import annotations

import concurrent.futures
import math
import re
import time
from dataclasses import dataclass
from typing import Any

from load_tester.client import fetch, fetch_json, read_substations
from load_tester.periodic import PeriodicReader
from load_tester.sampler import number

DAY_SAMPLE_INTERVAL_S = 0.5  # default of --sample-interval in the day scenario
READ_TIMEOUT_S = 1.0  # one read of a substation's /load or /metrics while sampling

# From a substation's /load, what a sample keeps.
LOAD_FIELDS = (
    "capacity_kw",
    "ev_power_kw",
    "background_kw",
    "headroom_kw",
    "demand_kw",
    "active_sessions",
    "queued_sessions",
    "paused_sessions",
)
ENERGY_METRIC = "substation_energy_delivered_joules_total"
OVERLOAD_METRIC = "substation_overload_seconds_total"
FAIRNESS_METRIC = "substation_fairness_jain_ratio"
JOULES_PER_KWH = 3.6e6

_SAMPLE_LINE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> list[tuple[str, dict[str, str], float]]:
    """The samples of a Prometheus text exposition: (name, labels, value); comments and odd lines skipped."""
    samples = []
    for line in text.splitlines():
        match = _SAMPLE_LINE.match(line)
        if line.startswith("#") or not match:
            continue
        try:
            value = float(match.group(3))
        except ValueError:
            continue
        samples.append((match.group(1), dict(_LABEL.findall(match.group(2) or "")), value))
    return samples


def substation_metrics(text: str) -> dict[str, float | None]:
    """What the day scenario reads from a substation's /metrics: energy delivered (kWh), overload seconds,
    and Jain's fairness index, the lowest over its priorities."""
    energy = overload = None
    fairness: list[float] = []
    for name, _labels, value in parse_metrics(text):
        if name == ENERGY_METRIC:
            energy = value / JOULES_PER_KWH
        elif name == OVERLOAD_METRIC:
            overload = value
        elif name == FAIRNESS_METRIC and math.isfinite(value):
            fairness.append(value)
    return {"energy_kwh": energy, "overload_s": overload, "jain": min(fairness, default=None)}


def substation_urls(balancer_url: str, timeout: float) -> tuple[dict[str, str] | None, str | None]:
    """Every substation's name and base URL, as the balancer's /substations lists them."""
    listing, error = read_substations(balancer_url, timeout)
    if listing is None:
        return None, error
    urls = {str(s["name"]): s["url"] for s in listing["substations"] if isinstance(s.get("url"), str)}
    return (urls, None) if urls else (None, "the balancer lists no substation with a url")


@dataclass
class GridSample:
    t: float  # wall seconds since the day started, as the sample was taken
    # name -> "t" (when that substation answered), LOAD_FIELDS and substation_metrics()
    substations: dict[str, dict[str, float | None]]

    def total(self, key: str) -> float:
        """One field summed over the substations (a missing one counts 0)."""
        return sum(fields.get(key) or 0.0 for fields in self.substations.values())

    def as_json(self) -> dict[str, Any]:
        return {"t": self.t, "substations": self.substations}


class GridSampler(PeriodicReader):
    """Reads every substation's /load and /metrics every `interval` seconds on a background thread.

    A substation that does not answer is left out of that sample and counted; sampling never stops the run.
    """

    thread_name = "grid-sampler"

    def __init__(self, substations: dict[str, str], interval: float, timeout: float = READ_TIMEOUT_S) -> None:
        super().__init__(interval)
        self.urls = {name: url.rstrip("/") for name, url in substations.items()}
        self.timeout = timeout
        self.samples: list[GridSample] = []
        self.allocations: dict[str, str] = {}  # name -> "fair" or "fixed", as /load says
        self._pool = concurrent.futures.ThreadPoolExecutor(max(1, len(self.urls)), thread_name_prefix="grid-read")

    def close(self) -> None:
        """Stop sampling for good, and the threads that read."""
        self.stop()
        self._pool.shutdown(wait=True)

    def finish(self) -> None:
        """Stop the thread, take one last sample (the grid as the day ends), and close."""
        self.stop()
        self._take()
        self.close()

    def _take(self) -> None:
        t = self.since_start(time.perf_counter())
        reads = self._pool.map(self._read_safely, self.urls.items())  # all at once: one moment for all
        substations = {name: read for name, read in zip(self.urls, reads, strict=True) if read is not None}
        if substations:
            self.samples.append(GridSample(round(t, 3), substations))

    def _read_safely(self, item: tuple[str, str]) -> dict[str, float | None] | None:
        name, url = item
        try:
            return self._read(name, url)
        except Exception as error:  # whatever goes wrong with one read must not end the sampling
            self._failed(f"{name}: {type(error).__name__}: {error}")
            return None

    def _read(self, name: str, url: str) -> dict[str, float | None] | None:
        asked = time.perf_counter()
        load, error = fetch_json(f"{url}/load", self.timeout)
        if not isinstance(load, dict):
            self._failed(f"{name} /load: {error or 'not a JSON object'}")
            return None
        # When it answered, as near as can be told: what integrals over this substation's reads count from.
        read: dict[str, float | None] = {"t": round((asked + time.perf_counter()) / 2 - self.origin, 4)}
        read |= {key: number(load.get(key)) for key in LOAD_FIELDS}
        if isinstance(load.get("allocation"), str):
            self.allocations[name] = load["allocation"]
        raw, error = fetch(f"{url}/metrics", self.timeout)
        if raw is None:
            self._failed(f"{name} /metrics: {error}")
            read |= {"energy_kwh": None, "overload_s": None, "jain": None}
        else:
            read |= substation_metrics(raw.decode("utf-8", errors="replace"))
        return read
