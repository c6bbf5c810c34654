"""Substation metrics, read from the domain state at scrape time so they can never disagree with it."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from grid_common.protocol import GRID_PHASES
from substation_service.counters import Distribution
from substation_service.substation import Substation


class SubstationCollector:
    def __init__(self, substation: Substation, clock: Callable[[], float]) -> None:
        self.substation = substation
        self.clock = clock

    def collect(self):
        s = self.substation
        now = self.clock()
        name = [s.name]
        up = GaugeMetricFamily(
            "substation_journal_up",
            "1 while the journal keeps what the substation is asked to change (or there is none); 0 while it "
            "cannot, or its sessions could not be read.",
            labels=["substation"],
        )
        up.add_metric(name, 1 if s.journal_error is None else 0)
        yield up
        if not s.sessions_known:
            return  # nothing else is known
        report = s.report(now)
        snapshot = s.snapshot(now)

        def gauge(metric: str, doc: str, value: float) -> GaugeMetricFamily:
            family = GaugeMetricFamily(metric, doc, labels=["substation"])
            family.add_metric(name, value)
            return family

        def counter(metric: str, doc: str, value: float) -> CounterMetricFamily:
            family = CounterMetricFamily(metric, doc, labels=["substation"])
            family.add_metric(name, value)
            return family

        def histogram(metric: str, doc: str, distribution: Distribution) -> HistogramMetricFamily:
            family = HistogramMetricFamily(metric, doc, labels=["substation"])
            family.add_metric(name, distribution.cumulative(), sum_value=distribution.total)
            return family

        yield gauge("substation_load", "Started EV sessions, charging or paused (the original dashboards read it).",
                    report.active_sessions)  # fmt: skip
        yield gauge("substation_power_watts", "Power drawn now: EV sessions plus background.", report.load_kw * 1000)
        yield gauge("substation_ev_power_watts", "Power allocated now to EV sessions.", report.ev_power_kw * 1000)
        yield gauge(
            "substation_background_power_watts", "Power drawn now by background demand.", report.background_kw * 1000
        )
        yield gauge("substation_capacity_watts", "Power the substation can deliver.", report.capacity_kw * 1000)
        if report.grid_limit_kw is not None:  # a line while a limit is in force, none when none is
            yield gauge(
                "substation_grid_limit_watts",
                "The grid operator's limit in force: the most the substation may draw, EV power and background.",
                report.grid_limit_kw * 1000,
            )
        yield counter(
            "substation_grid_limit_changes",
            "Schedules of grid limits the grid operator set or cleared while this process ran.",
            s.limits.changes,
        )
        yield gauge(
            "substation_headroom_watts",
            "Capacity less the background's peak over the allocation step: what EV sessions may share.",
            report.headroom_kw * 1000,
        )
        yield gauge("substation_utilization_ratio", "Power drawn over capacity (0 to 1).", report.utilization)
        phase_current = GaugeMetricFamily(
            "substation_phase_current_amperes",
            "Current on each grid phase, by source: EVs (as counted: measured where meters speak) and background.",
            labels=["substation", "phase", "source"],
        )
        for phase, ev_a, background_a in zip(
            GRID_PHASES, snapshot.phase_ev_a, snapshot.phase_background_a, strict=True
        ):
            phase_current.add_metric([s.name, phase, "ev"], ev_a)
            phase_current.add_metric([s.name, phase, "background"], background_a)
        yield phase_current
        phase_limit = GaugeMetricFamily(
            "substation_phase_limit_amperes",
            "What each grid phase holds: a third of the rating.",
            labels=["substation", "phase"],
        )
        for phase in GRID_PHASES:
            phase_limit.add_metric([s.name, phase], snapshot.phase_limit_a)
        yield phase_limit
        circuit_current = GaugeMetricFamily(
            "substation_circuit_current_amperes",
            "Current counted on each phase of a circuit with a current limit (CIRCUITS).",
            labels=["substation", "circuit", "phase"],
        )
        circuit_current_limit = GaugeMetricFamily(
            "substation_circuit_limit_amperes",
            "A circuit's current limit on each phase.",
            labels=["substation", "circuit"],
        )
        circuit_power = GaugeMetricFamily(
            "substation_circuit_power_watts",
            "Power counted on a circuit with a power limit.",
            labels=["substation", "circuit"],
        )
        circuit_power_limit = GaugeMetricFamily(
            "substation_circuit_limit_watts", "A circuit's power limit.", labels=["substation", "circuit"]
        )
        for circuit in snapshot.circuits:
            if "current_a" in circuit:
                for phase, amperes in circuit["current_a"].items():
                    circuit_current.add_metric([s.name, circuit["name"], phase], amperes)
                circuit_current_limit.add_metric([s.name, circuit["name"]], circuit["max_current_a"])
            else:
                circuit_power.add_metric([s.name, circuit["name"]], circuit["power_kw"] * 1000)
                circuit_power_limit.add_metric([s.name, circuit["name"]], circuit["max_power_kw"] * 1000)
        yield from (circuit_current, circuit_current_limit, circuit_power, circuit_power_limit)
        allocation = GaugeMetricFamily(
            "substation_allocation_info", "How the substation shares its headroom (fair, planned or fixed).",
            labels=["substation", "allocation"],
        )  # fmt: skip
        allocation.add_metric([s.name, s.allocation], 1)
        yield allocation
        by_state = GaugeMetricFamily("substation_sessions", "Sessions now, by state.", labels=["substation", "state"])
        for state, count in snapshot.sessions_by_state.items():
            by_state.add_metric([s.name, state], count)
        yield by_state
        yield gauge("substation_queue_length", "Sessions waiting in the queue.", report.queued_sessions)
        yield gauge(
            "substation_queue_oldest_wait_seconds",
            "How long the session longest in the queue has waited (0: none waits).",
            snapshot.oldest_wait_s,
        )
        fairness = GaugeMetricFamily(
            "substation_fairness_jain_ratio",
            "Jain's index, per priority, of each started session's power over its max-min fair share "
            "(1: all get their fair share; a paused session counts 0).",
            labels=["substation", "priority"],
        )
        for priority, index in snapshot.fairness.items():
            fairness.add_metric([s.name, str(priority)], index)
        yield fairness
        yield histogram(
            "substation_wait_seconds", "Time sessions waited in the queue before they started.", s.counters.waits
        )
        yield histogram(
            "substation_reallocation_duration_seconds",
            "Time to share the headroom among the sessions, each reallocation.",
            s.counters.reallocations,
        )
        yield counter(
            "substation_energy_delivered_joules",
            "Energy delivered to EVs while this process ran.",
            snapshot.energy_delivered_kwh * 3.6e6,
        )
        yield counter(
            "substation_overload_seconds",
            "Seconds during which EV power allocated plus background exceeded capacity, as the substation finds "
            "at every step from its own state: 0, always.",
            s.counters.overload_seconds,
        )
        yield counter("substation_sessions_started", "Sessions that began to charge.", s.counters.started)
        yield counter("substation_sessions_queued", "Sessions that had to wait in the queue.", s.counters.queued)
        yield counter("substation_sessions_paused", "Times a charging session was paused.", s.counters.paused)
        yield counter(
            "substation_phase_switches",
            "Times a car went between three phases and one: switched by its charger, or seen on one phase.",
            s.counters.phase_switches,
        )
        yield counter("substation_sessions_completed", "Sessions that received all their energy.", s.counters.completed)
        yield counter("substation_sessions_stopped", "Sessions stopped or cancelled early.", s.counters.stopped)
        refused = CounterMetricFamily(
            "substation_sessions_refused", "Sessions refused at admission, by reason.", labels=["substation", "reason"]
        )
        for reason, count in s.counters.refused.items():
            refused.add_metric([s.name, reason], count)
        yield refused


def build_registry(substation: Substation, clock: Callable[[], float]) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(SubstationCollector(substation, clock))
    ProcessCollector(registry=registry)
    return registry
