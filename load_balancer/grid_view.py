"""The balancer's live view of the grid. Pure domain: no Flask, no I/O."""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

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
    # What sessions other balancers placed here draw (None: the report did not say). Only their choices
    # move it behind this balancer's back: it is the condition this balancer puts on each admission.
    others_ev_power_kw: float | None = None
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

    @property
    def committed_kw(self) -> float:
        """Power drawn, as last reported, plus this balancer's sessions in flight here."""
        return self.load_kw + self.pending_kw

    def rank_key(self) -> tuple:
        """Least utilization first, counting power in flight; ties to the larger substation (so an idle
        grid's first sessions go to the biggest), then to fewer sessions, then by name."""
        return (
            self.committed_kw / self.capacity_kw,
            -self.capacity_kw,
            self.active_sessions + self.pending_sessions,
            self.name,
        )

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


class LoadReport(NamedTuple):
    epoch: str
    sequence: int
    capacity_kw: float
    load_kw: float
    active_sessions: int
    charger_max_power_kw: float
    others_ev_power_kw: float | None


def parse_report(report: object) -> LoadReport:
    """A substation's /load body, checked."""
    if not isinstance(report, dict):
        raise MalformedReport("load report is not an object")
    try:
        epoch = str(report["epoch"])
        sequence = int(report["sequence"])
        capacity_kw = float(report["capacity_kw"])
        load_kw = float(report["load_kw"])
        active = int(report["active_sessions"])
        charger = float(report.get("charger_max_power_kw", math.inf))
        others = report.get("others_ev_power_kw")
        others_ev_power_kw = None if others is None else float(others)
    except (KeyError, TypeError, ValueError) as error:
        raise MalformedReport(f"load report lacks a valid field: {error}") from None
    if not (math.isfinite(capacity_kw) and capacity_kw > 0 and math.isfinite(load_kw) and active >= 0):
        raise MalformedReport("load report has impossible numbers")
    if others_ev_power_kw is not None and not (math.isfinite(others_ev_power_kw) and others_ev_power_kw >= 0):
        raise MalformedReport("load report has an impossible EV power")
    return LoadReport(epoch, sequence, capacity_kw, load_kw, active, charger, others_ev_power_kw)


class GridView:
    """Every substation's last known state, changed only under one lock.

    Healthy substations are also kept sorted by `rank_key` (a list kept in order with bisect), so the
    least utilized one is found in O(1) and each change costs O(log N) comparisons: a decision does not
    grow with the number of substations.
    """

    def __init__(self, substations: list[tuple[str, str]], unhealthy_after_failures: int = 2) -> None:
        self.lock = threading.RLock()
        self.unhealthy_after_failures = unhealthy_after_failures
        self._views = {name: SubstationView(name, url) for name, url in substations}
        self._in_order = tuple(self._views.values())
        self._ranked: list[tuple] = []
        self._keys: dict[str, tuple] = {}

    def __contains__(self, name: str) -> bool:
        return name in self._views

    def get(self, name: str) -> SubstationView | None:
        return self._views.get(name)

    def all(self) -> list[SubstationView]:
        return list(self._in_order)

    def in_order(self) -> tuple[SubstationView, ...]:
        """Every substation in configuration order, without copying."""
        return self._in_order

    def ranked(self) -> Iterator[SubstationView]:
        """Healthy substations, least utilized first. Iterate with the lock held."""
        views = self._views
        for key in self._ranked:
            yield views[key[-1]]

    def add(self, name: str, url: str) -> SubstationView:
        """A substation registered at run time; unhealthy until its first report."""
        with self.lock:
            if name in self._views:
                raise KeyError(name)
            view = self._views[name] = SubstationView(name, url)
            self._in_order = tuple(self._views.values())
            return view

    def remove(self, name: str) -> SubstationView:
        """No more sessions go there; decisions already made finish on their own."""
        with self.lock:
            view = self._views.pop(name)
            self._unrank(view)
            self._in_order = tuple(self._views.values())
            return view

    def healthy_count(self) -> int:
        return len(self._ranked)

    def _unrank(self, view: SubstationView) -> None:
        key = self._keys.pop(view.name, None)
        if key is not None:
            del self._ranked[bisect.bisect_left(self._ranked, key)]

    def _rank(self, view: SubstationView) -> None:
        if view.healthy and view.capacity_kw > 0:
            key = view.rank_key()
            self._keys[view.name] = key
            bisect.insort(self._ranked, key)

    def apply_report(self, name: str, report: object, now: float) -> bool:
        """Take a substation's report unless a newer one from the same process was already applied.

        Reports race: a poll answer can arrive after an admission answer that was produced later.
        Without the ordering check the view would forget the session just admitted.
        """
        parsed = parse_report(report)
        with self.lock:
            view = self._views.get(name)
            if view is None or (parsed.epoch == view.epoch and parsed.sequence <= view.sequence):
                return False  # removed meanwhile, or stale
            self._unrank(view)
            view.epoch, view.sequence = parsed.epoch, parsed.sequence
            view.capacity_kw, view.load_kw, view.active_sessions = (
                parsed.capacity_kw,
                parsed.load_kw,
                parsed.active_sessions,
            )
            view.charger_max_power_kw = parsed.charger_max_power_kw
            view.others_ev_power_kw = parsed.others_ev_power_kw
            view.updated_at = now
            view.healthy = True
            view.consecutive_failures = 0
            self._rank(view)
            return True

    def record_failure(self, name: str, *, certain: bool = False) -> None:
        """A failed call. `certain` (connection refused) marks it unhealthy at once; a timeout may be a blip."""
        with self.lock:
            view = self._views.get(name)
            if view is None:
                return  # removed while a call to it was under way
            view.consecutive_failures += 1
            if view.healthy and (certain or view.consecutive_failures >= self.unhealthy_after_failures):
                self._unrank(view)
                view.healthy = False

    def reserve(self, name: str, power_kw: float) -> None:
        with self.lock:
            view = self._views.get(name)
            if view is None:
                return  # removed while a call to it was under way
            self._unrank(view)
            view.pending_kw += power_kw
            view.pending_sessions += 1
            self._rank(view)

    def release(self, name: str, power_kw: float) -> None:
        with self.lock:
            view = self._views.get(name)
            if view is None:
                return  # removed while a call to it was under way
            self._unrank(view)
            view.pending_sessions -= 1
            view.pending_kw = max(0.0, view.pending_kw - power_kw) if view.pending_sessions else 0.0
            self._rank(view)
