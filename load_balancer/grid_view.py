"""The balancer's live view of the grid. Pure domain: no Flask, no I/O."""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from grid_common.protocol import LoadReport, iso_utc


@dataclass
class KnownSubstation:
    """One substation as this balancer knows it: its last report, and what it sent there since."""

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


class GridView:
    """Every substation's last known state, changed only under one lock.

    Healthy substations are also kept sorted by `rank_key` (a list kept in order with bisect), so the
    least utilized one is found in O(1) and each change costs O(log N) comparisons: a decision does not
    grow with the number of substations.
    """

    def __init__(self, substations: list[tuple[str, str]], unhealthy_after_failures: int = 2) -> None:
        self.lock = threading.RLock()
        self.unhealthy_after_failures = unhealthy_after_failures
        self._known = {name: KnownSubstation(name, url) for name, url in substations}
        self._in_order = tuple(self._known.values())
        self._ranked: list[tuple] = []
        self._keys: dict[str, tuple] = {}

    def __contains__(self, name: str) -> bool:
        return name in self._known

    def get(self, name: str) -> KnownSubstation | None:
        return self._known.get(name)

    def all(self) -> list[KnownSubstation]:
        return list(self._in_order)

    def in_order(self) -> tuple[KnownSubstation, ...]:
        """Every substation in configuration order, without copying."""
        return self._in_order

    def ranked(self) -> Iterator[KnownSubstation]:
        """Healthy substations, least utilized first. Iterate with the lock held."""
        known = self._known
        for key in self._ranked:
            yield known[key[-1]]

    def add(self, name: str, url: str) -> KnownSubstation:
        """A substation registered at run time; unhealthy until its first report."""
        with self.lock:
            if name in self._known:
                raise KeyError(name)
            substation = self._known[name] = KnownSubstation(name, url)
            self._in_order = tuple(self._known.values())
            return substation

    def remove(self, name: str) -> KnownSubstation:
        """No more sessions go there; decisions already made finish on their own."""
        with self.lock:
            substation = self._known.pop(name)
            self._unrank(substation)
            self._in_order = tuple(self._known.values())
            return substation

    def healthy_count(self) -> int:
        return len(self._ranked)

    def _unrank(self, substation: KnownSubstation) -> None:
        key = self._keys.pop(substation.name, None)
        if key is not None:
            del self._ranked[bisect.bisect_left(self._ranked, key)]

    def _rank(self, substation: KnownSubstation) -> None:
        if substation.healthy and substation.capacity_kw > 0:
            key = substation.rank_key()
            self._keys[substation.name] = key
            bisect.insort(self._ranked, key)

    def apply_report(self, name: str, report: LoadReport | object, now: float) -> bool:
        """Take a substation's report unless a newer one from the same process was already applied.

        Reports race: a poll answer can arrive after an admission answer that was produced later.
        Without the ordering check the view would forget the session just admitted. A report still in
        JSON is checked first (MalformedReport).
        """
        parsed = report if isinstance(report, LoadReport) else LoadReport.from_json(report)
        with self.lock:
            substation = self._known.get(name)
            if substation is None or (parsed.epoch == substation.epoch and parsed.sequence <= substation.sequence):
                return False  # removed meanwhile, or stale
            self._unrank(substation)
            substation.epoch, substation.sequence = parsed.epoch, parsed.sequence
            substation.capacity_kw, substation.load_kw, substation.active_sessions = (
                parsed.capacity_kw,
                parsed.load_kw,
                parsed.active_sessions,
            )
            substation.charger_max_power_kw = parsed.charger_max_power_kw
            substation.others_ev_power_kw = parsed.others_ev_power_kw
            substation.updated_at = now
            substation.healthy = True
            substation.consecutive_failures = 0
            self._rank(substation)
            return True

    def record_failure(self, name: str, *, certain: bool = False) -> None:
        """A failed call. `certain` (connection refused) marks it unhealthy at once; a timeout may be a blip."""
        with self.lock:
            substation = self._known.get(name)
            if substation is None:
                return  # removed while a call to it was under way
            substation.consecutive_failures += 1
            if substation.healthy and (certain or substation.consecutive_failures >= self.unhealthy_after_failures):
                self._unrank(substation)
                substation.healthy = False

    def reserve(self, name: str, power_kw: float) -> None:
        with self.lock:
            substation = self._known.get(name)
            if substation is None:
                return  # removed while a call to it was under way
            self._unrank(substation)
            substation.pending_kw += power_kw
            substation.pending_sessions += 1
            self._rank(substation)

    def release(self, name: str, power_kw: float) -> None:
        with self.lock:
            substation = self._known.get(name)
            if substation is None:
                return  # removed while a call to it was under way
            self._unrank(substation)
            substation.pending_sessions -= 1
            substation.pending_kw = max(0.0, substation.pending_kw - power_kw) if substation.pending_sessions else 0.0
            self._rank(substation)
