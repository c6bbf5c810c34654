"""The balancer's live view of the grid. Pure domain: no Flask, no I/O."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from grid_common.timefmt import iso_utc


class MalformedReport(ValueError):
    """A substation answered /load with something that is not a load report."""


@dataclass
class SubstationView:
    name: str
    url: str
    healthy: bool = False
    capacity_kw: float = 0.0
    load_kw: float = 0.0
    active_sessions: int = 0
    charger_max_power_kw: float = math.inf
    # Sessions sent to this substation whose answer has not come back yet: counting them is what
    # keeps a burst of concurrent requests from all picking the same "least loaded" substation.
    pending_kw: float = 0.0
    pending_sessions: int = 0
    updated_at: float | None = None
    consecutive_failures: int = 0
    epoch: str | None = None
    sequence: int = -1

    def power_for(self, max_power_kw: float) -> float:
        return min(max_power_kw, self.charger_max_power_kw)

    @property
    def headroom_kw(self) -> float:
        return self.capacity_kw - self.load_kw - self.pending_kw

    def has_room_for(self, power_kw: float) -> bool:
        return self.capacity_kw > 0 and self.headroom_kw + 1e-6 >= power_kw

    def utilization_with(self, extra_kw: float) -> float:
        return (self.load_kw + self.pending_kw + extra_kw) / self.capacity_kw

    @property
    def utilization(self) -> float:
        return self.load_kw / self.capacity_kw if self.capacity_kw else 0.0

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "url": self.url,
            "healthy": self.healthy,
            "active_sessions": self.active_sessions,
            "pending_sessions": self.pending_sessions,
            "load_kw": round(self.load_kw, 3),
            "capacity_kw": self.capacity_kw,
            "utilization": round(self.utilization, 6),
            "updated_at": iso_utc(self.updated_at),
        }


def parse_report(report: object) -> tuple[str, int, float, float, int, float]:
    """(epoch, sequence, capacity_kw, load_kw, active_sessions, charger_max_power_kw) from a /load body."""
    if not isinstance(report, dict):
        raise MalformedReport("load report is not an object")
    try:
        epoch = str(report["epoch"])
        sequence = int(report["sequence"])
        capacity_kw = float(report["capacity_kw"])
        load_kw = float(report["load_kw"])
        active = int(report["active_sessions"])
        charger = float(report.get("charger_max_power_kw", math.inf))
    except (KeyError, TypeError, ValueError) as error:
        raise MalformedReport(f"load report lacks a valid field: {error}") from None
    if not (math.isfinite(capacity_kw) and capacity_kw > 0 and math.isfinite(load_kw) and active >= 0):
        raise MalformedReport("load report has impossible numbers")
    return epoch, sequence, capacity_kw, load_kw, active, charger


class GridView:
    """Every substation's last known state, changed only under one lock."""

    def __init__(self, substations: list[tuple[str, str]], unhealthy_after_failures: int = 2) -> None:
        self.lock = threading.RLock()
        self.unhealthy_after_failures = unhealthy_after_failures
        self._views = {name: SubstationView(name, url) for name, url in substations}

    def __contains__(self, name: str) -> bool:
        return name in self._views

    def get(self, name: str) -> SubstationView | None:
        return self._views.get(name)

    def all(self) -> list[SubstationView]:
        return list(self._views.values())

    def eligible(self, exclude: set[str] = frozenset()) -> list[SubstationView]:
        return [v for v in self._views.values() if v.healthy and v.name not in exclude]

    def healthy_count(self) -> int:
        return sum(1 for v in self._views.values() if v.healthy)

    def apply_report(self, name: str, report: object, now: float) -> bool:
        """Take a substation's report unless a newer one from the same process was already applied.

        Reports race: a poll answer can arrive after an admission answer that was produced later.
        Without the ordering check the view would forget the session just admitted.
        """
        epoch, sequence, capacity_kw, load_kw, active, charger = parse_report(report)
        with self.lock:
            view = self._views[name]
            if epoch == view.epoch and sequence <= view.sequence:
                return False
            view.epoch, view.sequence = epoch, sequence
            view.capacity_kw, view.load_kw, view.active_sessions = capacity_kw, load_kw, active
            view.charger_max_power_kw = charger
            view.updated_at = now
            view.healthy = True
            view.consecutive_failures = 0
            return True

    def record_success(self, name: str) -> None:
        with self.lock:
            view = self._views[name]
            view.consecutive_failures = 0

    def record_failure(self, name: str, *, certain: bool = False) -> None:
        """A failed call. `certain` (connection refused) marks it unhealthy at once; a timeout may be a blip."""
        with self.lock:
            view = self._views[name]
            view.consecutive_failures += 1
            if certain or view.consecutive_failures >= self.unhealthy_after_failures:
                view.healthy = False

    def reserve(self, name: str, power_kw: float) -> None:
        with self.lock:
            view = self._views[name]
            view.pending_kw += power_kw
            view.pending_sessions += 1

    def release(self, name: str, power_kw: float) -> None:
        with self.lock:
            view = self._views[name]
            view.pending_sessions -= 1
            view.pending_kw = max(0.0, view.pending_kw - power_kw) if view.pending_sessions else 0.0
