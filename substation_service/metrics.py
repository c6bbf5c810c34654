"""Substation metrics, read from the domain state at scrape time so they can never disagree with it."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from substation_service.substation import Substation


class SubstationCollector:
    def __init__(self, substation: Substation, clock: Callable[[], float]) -> None:
        self.substation = substation
        self.clock = clock

    def collect(self):
        s = self.substation
        report = s.report(self.clock())
        labels = ["substation"]
        name = [s.name]

        def gauge(metric: str, doc: str, value: float) -> GaugeMetricFamily:
            family = GaugeMetricFamily(metric, doc, labels=labels)
            family.add_metric(name, value)
            return family

        def counter(metric: str, doc: str, value: float) -> CounterMetricFamily:
            family = CounterMetricFamily(metric, doc, labels=labels)
            family.add_metric(name, value)
            return family

        yield gauge(
            "substation_load",
            "Active EV charging sessions (the original dashboards read it).",
            report.active_sessions,
        )
        yield gauge("substation_power_watts", "Power drawn now: EV sessions plus background.", report.load_kw * 1000)
        yield gauge("substation_ev_power_watts", "Power drawn now by EV sessions.", report.ev_power_kw * 1000)
        yield gauge(
            "substation_background_power_watts", "Power drawn now by background demand.", report.background_kw * 1000
        )
        yield gauge("substation_capacity_watts", "Power the substation can deliver.", report.capacity_kw * 1000)
        yield gauge("substation_utilization_ratio", "Power drawn over capacity (0 to 1).", report.utilization)
        yield counter("substation_sessions_started", "Sessions admitted.", s.counters.started)
        yield counter("substation_sessions_completed", "Sessions that received all their energy.", s.counters.completed)
        yield counter("substation_sessions_stopped", "Sessions stopped before completion.", s.counters.stopped)
        refused = CounterMetricFamily(
            "substation_sessions_refused", "Sessions refused at admission.", labels=["substation", "reason"]
        )
        refused.add_metric([s.name, "capacity"], s.counters.refused)
        yield refused


def build_registry(substation: Substation, clock: Callable[[], float]) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(SubstationCollector(substation, clock))
    ProcessCollector(registry=registry)
    return registry
