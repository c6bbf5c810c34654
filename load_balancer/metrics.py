"""Every metric the balancer exposes, in one place."""

import contextlib
import threading

from prometheus_client import Counter, Gauge, Histogram

DECISIONS = Counter("balancer_decisions_total", "Sessions placed on a substation.", ["substation", "strategy"])
DECISION_SECONDS = Histogram(
    "balancer_decision_duration_seconds",
    "Time to pick a substation, excluding the call to it.",
    buckets=(1e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 0.01),
)
ASSIGN_SECONDS = Histogram(
    "balancer_assign_duration_seconds",
    "Time to answer an assignment, calls to substations included.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
UPSTREAM_FAILURES = Counter(
    "balancer_upstream_failures_total",
    "Calls to substations that got no usable answer.",
    ["substation", "operation", "reason"],
)
REFUSALS = Counter(
    "balancer_admission_refusals_total", "Sessions a substation refused because it was full.", ["substation"]
)
OUTDATED_CHOICES = Counter(
    "balancer_outdated_choices_total",
    "Admissions a substation declined (412) because another replica had placed sessions there since this "
    "balancer last heard: it chose again with the fresh load.",
    ["substation"],
)
REJECTED = Counter(
    "balancer_rejected_requests_total",
    "Assignments that placed nothing: 503 (no_capacity, unavailable, clock_skew), or 504 when a substation may "
    "hold the session and cannot say (outcome_unknown).",
    ["reason"],
)
SUBSTATION_UP = Gauge(
    "balancer_substation_up", "1 if the balancer sees the substation healthy.", ["substation"],
    multiprocess_mode="livemax",
)  # fmt: skip
HEALTHY_SUBSTATIONS = Gauge(
    "balancer_healthy_substations", "Substations the balancer sees healthy.", multiprocess_mode="livemin"
)


PER_SUBSTATION = (DECISIONS, REFUSALS, OUTDATED_CHOICES, SUBSTATION_UP, UPSTREAM_FAILURES)

# The substations whose series exist. A call to a substation may still be under way when it is removed;
# what that call counts must not bring the removed substation's series back.
_known: set[str] = set()
_known_lock = threading.Lock()


class _Nowhere:
    """Counts nothing: what a substation removed meanwhile gets instead of a series."""

    def inc(self, amount: float = 1) -> None:
        pass

    def set(self, value: float) -> None:
        pass


_NOWHERE = _Nowhere()


def initialize(substations: list[str], strategy: str) -> None:
    """Create every labelled series at zero, so dashboards and alerts have data before the first event."""
    with _known_lock:
        for name in substations:
            _known.add(name)
            DECISIONS.labels(name, strategy)
            REFUSALS.labels(name)
            OUTDATED_CHOICES.labels(name)
            SUBSTATION_UP.labels(name).set(0)
            UPSTREAM_FAILURES.labels(name, "begin_charging", "clock_skew")  # an alert watches it
    for reason in ("no_capacity", "unavailable", "clock_skew", "outcome_unknown"):
        REJECTED.labels(reason)


def of_substation(metric, substation: str, *labels: str):
    """`metric.labels(substation, *labels)` for a substation the balancer knows, and a child that counts
    nowhere for one removed since: checked and created under the lock `forget` takes, so that once its
    series are gone they stay gone."""
    with _known_lock:
        return metric.labels(substation, *labels) if substation in _known else _NOWHERE


def forget(substation: str) -> None:
    """A removed substation's series go, every label combination of them, so that no dashboard shows it as
    down forever and a topology that changes does not grow the exposition without end."""
    with _known_lock:
        _known.discard(substation)
        for metric in PER_SUBSTATION:
            position = metric._labelnames.index("substation")
            # prometheus_client has no removal by one label: its children are keyed by their label values.
            for labels in [key for key in list(metric._metrics) if key[position] == substation]:
                with contextlib.suppress(KeyError):
                    metric.remove(*labels)
