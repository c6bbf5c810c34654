"""The balancer's live view of the grid. Pure domain: no Flask, no I/O.

Each substation is known by its last load report and by what this balancer sent there whose answer has
not come back (pending). Healthy substations are kept ranked in sorted containers, one per ranking a
strategy reads (least utilization; most power for a newcomer of each priority), so a decision takes the
first entry that can take the request, and each change costs O(log N).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from sortedcontainers import SortedList

from grid_common.clock import steady_time
from grid_common.protocol import (
    DEFAULT_MAX_POWER_KW,
    DEFAULT_MIN_POWER_KW,
    MIN_POWER_KW,
    ChargeRequest,
    LoadReport,
    MalformedReport,
    iso_utc,
)

# Power every car asks for unless it says otherwise: a substation offering a newcomer at least this
# serves it as well as any, and then the least utilized is chosen among them.
FULL_POWER_KW = DEFAULT_MAX_POWER_KW
TOLERANCE_KW = 1e-6
# A ranking of the healthy substations: by least utilization, or by the most power for a newcomer of a priority.
RankingKind = Literal["utilization"] | int


@dataclass
class KnownSubstation:
    """One substation as this balancer knows it: its last report, and what it sent there since."""

    name: str
    url: str
    healthy: bool = False
    report: LoadReport | None = None
    # Sessions sent here whose answer has not come back yet: counting them is what keeps a burst of
    # concurrent requests from all picking the same substation. `pending_kw` is the power they will draw,
    # `pending_committed_kw` what the substation's admission will count for them.
    pending_kw: float = 0.0
    pending_committed_kw: float = 0.0
    pending_sessions: int = 0
    # How many of this balancer's sessions started here it has heard back about, since the report of epoch
    # `tally_epoch` that last found nothing in flight: with the report's started_for_you, what tells the
    # sessions in flight that report already counts.
    started_heard: int = 0
    tally_epoch: str | None = None
    # When its last report was taken (monotonic: for deciding when to poll), and the same as a timestamp.
    updated_at: float | None = None
    updated_wall: float | None = None
    consecutive_failures: int = 0

    # --- what the last report said ---------------------------------------------------------------------
    @property
    def capacity_kw(self) -> float:
        return self.report.capacity_kw if self.report else 0.0

    @property
    def load_kw(self) -> float:
        return self.report.load_kw if self.report else 0.0

    @property
    def active_sessions(self) -> int:
        return self.report.active_sessions if self.report else 0

    @property
    def charger_max_power_kw(self) -> float:
        return self.report.charger_max_power_kw if self.report else math.inf

    @property
    def others_ev_power_kw(self) -> float | None:
        return self.report.others_ev_power_kw if self.report else None

    @property
    def others_sessions(self) -> int | None:
        return self.report.others_sessions if self.report else None

    @property
    def shares(self) -> bool:
        return self.report is not None and self.report.allocation.shares

    # --- what this balancer sent here, and the last report does not count yet -------------------------
    @property
    def in_flight_counted(self) -> int:
        """Sessions in flight whose admission the last report already counts: an answer's report can count
        sessions whose own answers have not arrived, and counted twice they would steer choices away."""
        report = self.report
        if not self.pending_sessions or report is None or report.started_for_you is None:
            return 0
        if report.epoch != self.tally_epoch:
            return 0  # a restarted substation: counted twice at worst, until nothing is in flight
        return max(0, min(self.pending_sessions, report.started_for_you - self.started_heard))

    # Every decision reads these for every substation it passes, and most have nothing in flight: then they
    # return at once, without walking in_flight_counted.
    @property
    def uncounted_sessions(self) -> int:
        return self.pending_sessions - self.in_flight_counted if self.pending_sessions else 0

    @property
    def uncounted_kw(self) -> float:
        """The power of sessions in flight not in the last report (counted ones taken as the average)."""
        return self.pending_kw * self._uncounted_share() if self.pending_sessions else 0.0

    @property
    def uncounted_committed_kw(self) -> float:
        return self.pending_committed_kw * self._uncounted_share() if self.pending_sessions else 0.0

    def _uncounted_share(self) -> float:
        """With something in flight."""
        return self.uncounted_sessions / self.pending_sessions

    def retally(self) -> None:
        """Nothing in flight: the last report counts every session this balancer started here."""
        if self.report is not None:
            self.tally_epoch = self.report.epoch
            self.started_heard = self.report.started_for_you or 0

    def heard_started(self) -> None:
        if self.report is not None and self.report.epoch == self.tally_epoch:
            self.started_heard += 1

    # --- what a request would meet here ----------------------------------------------------------------
    def power_for(self, max_power_kw: float) -> float:
        return min(max_power_kw, self.charger_max_power_kw)

    def committed_for(self, request: ChargeRequest) -> float:
        """What the substation's admission counts for the request: its minimum (fair) or its power (fixed)."""
        return request.min_power_kw if self.shares else self.power_for(request.max_power_kw)

    def can_start(self, request: ChargeRequest) -> bool:
        """Whether the request would start here now, as far as this balancer knows: nothing ahead of it
        (paused sessions, or queued ones of its priority or higher), and what admission counts fits."""
        report = self.report
        if not self.healthy or report is None or request.min_power_kw > report.charger_max_power_kw:
            return False
        if report.paused_sessions or any(report.queue_by_priority[request.priority :]):
            return False
        room = report.admission_headroom_kw - report.committed_kw - self.uncounted_committed_kw
        return self.committed_for(request) <= room + TOLERANCE_KW

    def could_start_any(self) -> bool:
        """Whether the smallest request any car may make (MIN_POWER_KW, at the lowest priority queued here or
        above) could start here: nothing paused, and room for it."""
        report = self.report
        if report is None or report.paused_sessions:
            return False
        room = report.admission_headroom_kw - report.committed_kw - self.uncounted_committed_kw
        return room + TOLERANCE_KW >= MIN_POWER_KW

    def offered_kw(self, priority: int, extra_sessions: int = 0) -> float:
        """About what a newcomer of `priority` would draw here, with this balancer's sessions in flight (and
        `extra_sessions` more) ahead of it: the power it could share, split evenly with those it shares it
        with, as max-min fairness does among equal sessions; capped by the charger."""
        report = self.report
        if report is None:
            return 0.0
        if not self.shares:  # nobody shares: a newcomer gets what no session takes, sessions in flight included
            return max(0.0, min(report.charger_max_power_kw, report.shareable_kw[priority] - self.uncounted_kw))
        # The sessions it would share with draw, together, what they could share plus their minimums.
        charging = report.sharing_sessions[priority]
        pool = report.shareable_kw[priority] + charging * DEFAULT_MIN_POWER_KW
        newcomers = 1 + self.uncounted_sessions + extra_sessions
        return max(0.0, min(report.charger_max_power_kw, pool / (charging + newcomers)))

    def sessions_until(self, priority: int, kw: float) -> int:
        """How many more sessions could arrive here before a newcomer of `priority` would get less than `kw`
        (by offered_kw's reckoning); 0 where nobody shares."""
        report = self.report
        if report is None or not self.shares or kw <= 0:
            return 0
        charging = report.sharing_sessions[priority]
        pool = report.shareable_kw[priority] + charging * DEFAULT_MIN_POWER_KW
        return max(0, math.floor(pool / kw - charging - 1 - self.uncounted_sessions + 1e-9))

    @property
    def utilization(self) -> float:
        return self.load_kw / self.capacity_kw if self.capacity_kw else 0.0

    @property
    def committed_kw(self) -> float:
        """Power drawn, as last reported, plus this balancer's sessions in flight here that it does not count."""
        return self.load_kw + self.uncounted_kw

    def rank_key(self) -> tuple:
        """Least utilization first, counting power in flight; ties to the larger substation (so an idle
        grid's first sessions go to the biggest), then to fewer sessions, then by name. Only a substation
        that reported is ranked."""
        report = self.report
        assert report is not None, "only a substation that reported is ranked"
        return (
            (report.load_kw + self.uncounted_kw) / report.capacity_kw,
            -report.capacity_kw,
            report.active_sessions + self.uncounted_sessions,
            self.name,
        )

    def to_json(self) -> dict:
        report = self.report
        body = {
            "name": self.name,
            "url": self.url,
            "healthy": self.healthy,
            "active_sessions": self.active_sessions,
            "pending_sessions": self.pending_sessions,
            "load_kw": round(self.load_kw, 3),
            "capacity_kw": self.capacity_kw,
            "utilization": round(self.utilization, 6),
            "updated_at": iso_utc(self.updated_wall),
        }
        if report is not None:
            body |= {
                "allocation": report.allocation,
                "ev_power_kw": round(report.ev_power_kw, 3),
                "background_kw": round(report.background_kw, 3),
                "headroom_kw": round(report.headroom_kw, 3),
                "paused_sessions": report.paused_sessions,
                "queued_sessions": report.queued_sessions,
                "newcomer_kw": round(self.offered_kw(0), 3),
            }
            if report.grid_limit_kw is not None:
                body["grid_limit_kw"] = report.grid_limit_kw
        return body


class GridView:
    """Every substation's last known state, changed only under one lock. Healthy substations where a car
    could start are kept ranked (sorted containers: each change O(log N)); full ones wait outside the
    rankings until a report or a released reservation gives them room again."""

    def __init__(self, substations: list[tuple[str, str]], unhealthy_after_failures: int = 2) -> None:
        self.lock = threading.RLock()
        self.unhealthy_after_failures = unhealthy_after_failures
        self._known = {name: KnownSubstation(name, url) for name, url in substations}
        self._in_order = tuple(self._known.values())
        # Rankings are made when a strategy first asks for one ("utilization", or the power a newcomer of a
        # priority would get), then kept: a balancer pays only for the rankings its strategy reads.
        self._rankings: dict[RankingKind, SortedList] = {}
        # The key each substation is ranked under in each ranking now, so that it can be found and taken out.
        self._keys: dict[str, dict[RankingKind, tuple]] = {}
        self._counted_healthy: set[str] = set()
        # When the soonest session ends at each healthy substation that has one (monotonic, with its name), so
        # that a refusal can say when room may free up without walking every full substation.
        self._ends = SortedList()
        self._end_of: dict[str, tuple[float, str]] = {}

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
        for key in self._ranking("utilization"):
            yield known[key[-1]]

    def ranked_by_power(self, priority: int) -> Iterator[KnownSubstation]:
        """Healthy substations, the most power for a newcomer of `priority` first. Iterate with the lock held."""
        known = self._known
        for key in self._ranking(priority):
            yield known[key[-1]]

    def ranked_power_kw(self, substation: KnownSubstation, priority: int) -> float:
        """What ranks `substation` in ranked_by_power(priority): offered_kw, capped at full power, as of its last
        change. Read, not computed again: a decision asks it of the substations it just took from there."""
        key = self._keys.get(substation.name, {}).get(priority)
        return min(substation.offered_kw(priority), FULL_POWER_KW) if key is None else -key[0]

    def _ranking(self, kind: RankingKind) -> SortedList:
        ranking = self._rankings.get(kind)
        if ranking is None:
            ranking = self._rankings[kind] = SortedList()
            for name, keys in self._keys.items():
                keys[kind] = self._key(self._known[name], kind)
                ranking.add(keys[kind])
        return ranking

    @staticmethod
    def _key(substation: KnownSubstation, kind: RankingKind, rank_key: tuple | None = None) -> tuple:
        """Its key in a ranking: least utilization first ("utilization"), or the most power for a newcomer of
        priority `kind` first, anything above full power counted as full, ties as by utilization."""
        rank_key = rank_key or substation.rank_key()
        if kind == "utilization":
            return rank_key
        return (-min(substation.offered_kw(kind), FULL_POWER_KW), *rank_key)

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
            self._forget_end(name)
            self._in_order = tuple(self._known.values())
            return substation

    def largest_charger_kw(self) -> float | None:
        """The most any known substation's chargers give; None before any report."""
        with self.lock:
            chargers = [s.report.charger_max_power_kw for s in self._in_order if s.report is not None]
        return max(chargers, default=None)

    def healthy_count(self) -> int:
        return len(self._counted_healthy)

    def soonest_session_end_s(self, now: float) -> float | None:
        """Seconds from `now` (monotonic) until the first session ends at any healthy substation, by their last
        reports (0 when that end has passed and no report has said so yet); None when none has a session."""
        with self.lock:
            return max(0.0, self._ends[0][0] - now) if self._ends else None

    def _forget_end(self, name: str) -> None:
        end = self._end_of.pop(name, None)
        if end is not None:
            self._ends.remove(end)

    def _unrank(self, substation: KnownSubstation) -> None:
        self._counted_healthy.discard(substation.name)
        for kind, key in self._keys.pop(substation.name, {}).items():
            self._rankings[kind].remove(key)

    def _rank(self, substation: KnownSubstation) -> None:
        if substation.healthy:
            self._counted_healthy.add(substation.name)
        # Only a substation where something could start is ranked: a decision then takes the first entry
        # that suits the request, and does not walk past full substations, however many there are.
        if substation.healthy and substation.capacity_kw > 0 and substation.could_start_any():
            rank_key = substation.rank_key()
            keys = self._keys[substation.name] = {}
            for kind, ranking in self._rankings.items():
                keys[kind] = self._key(substation, kind, rank_key)
                ranking.add(keys[kind])

    def apply_report(self, name: str, report: LoadReport | object, now: float) -> bool:
        """Take a substation's report unless a newer one from the same process was already applied.

        Reports race: a poll answer can arrive after an admission answer that was produced later.
        Without the ordering check the view would forget the session just admitted. A report still in
        JSON is checked first (MalformedReport). `now` is monotonic; the wall time kept for display is steady_time().
        """
        parsed = checked_report(name, report)
        with self.lock:
            substation = self._known.get(name)
            if substation is None:
                return False  # removed meanwhile
            if is_stale(substation, parsed):
                return False
            self._unrank(substation)
            self._take_report(substation, parsed, now)
            self._rank(substation)
            return True

    def _take_report(self, substation: KnownSubstation, report: LoadReport, now: float) -> None:
        """With the substation out of the rankings."""
        substation.report = report
        substation.updated_at = now
        substation.updated_wall = steady_time()
        substation.healthy = not report.draining  # a substation shutting down gets nothing new
        substation.consecutive_failures = 0
        if not substation.pending_sessions:
            substation.retally()
        self._forget_end(substation.name)
        if report.next_session_end_s is not None:
            self._end_of[substation.name] = (now + report.next_session_end_s, substation.name)
            self._ends.add(self._end_of[substation.name])

    def record_failure(self, name: str, *, certain: bool = False) -> None:
        """A failed call. `certain` (connection refused) marks it unhealthy at once; a timeout may be a blip."""
        with self.lock:
            substation = self._known.get(name)
            if substation is None:
                return  # removed while a call to it was under way
            substation.consecutive_failures += 1
            if substation.healthy and (certain or substation.consecutive_failures >= self.unhealthy_after_failures):
                self._unrank(substation)
                self._forget_end(name)
                substation.healthy = False

    def reserve(self, name: str, power_kw: float, committed_kw: float | None = None) -> None:
        """A session sent there: `power_kw` it will draw, `committed_kw` its admission will count."""
        self._pend(name, +1, power_kw, power_kw if committed_kw is None else committed_kw)

    def release(
        self,
        name: str,
        power_kw: float,
        committed_kw: float | None = None,
        *,
        started: bool = False,
        report: LoadReport | None = None,
        now: float = 0.0,
    ) -> None:
        """Its answer came back: `started` when it says the session started there at admission (201);
        `report`, the load the answer carried (checked_report), taken as apply_report would at `now`, in the
        same step: one change of the rankings per answer rather than two."""
        self._pend(name, -1, power_kw, power_kw if committed_kw is None else committed_kw, started, report, now)

    def _pend(
        self,
        name: str,
        sign: int,
        power_kw: float,
        committed_kw: float,
        started: bool = False,
        report: LoadReport | None = None,
        now: float = 0.0,
    ) -> None:
        with self.lock:
            substation = self._known.get(name)
            if substation is None:
                return  # removed while a call to it was under way
            self._unrank(substation)
            if report is not None and not is_stale(substation, report):
                self._take_report(substation, report, now)
            substation.pending_sessions += sign
            if started:
                substation.heard_started()
            if substation.pending_sessions:
                substation.pending_kw = max(0.0, substation.pending_kw + sign * power_kw)
                substation.pending_committed_kw = max(0.0, substation.pending_committed_kw + sign * committed_kw)
            else:
                substation.pending_kw = substation.pending_committed_kw = 0.0  # no drift left behind
                substation.retally()
            self._rank(substation)


def checked_report(name: str, report: LoadReport | object) -> LoadReport:
    """A report from `name`, parsed if still JSON; MalformedReport when it is not one, or names another."""
    parsed = report if isinstance(report, LoadReport) else LoadReport.from_json(report)
    if parsed.name != name:
        # Sessions placed there would be named after the one and refused by the other.
        raise MalformedReport(f"the substation known as {name} calls itself {parsed.name}")
    return parsed


def is_stale(substation: KnownSubstation, report: LoadReport) -> bool:
    """Whether a newer report from the same process was already taken."""
    last = substation.report
    return last is not None and report.epoch == last.epoch and report.sequence <= last.sequence
