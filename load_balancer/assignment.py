"""Placing one session: pick, reserve, ask the substation, and fall back to the next best.

First where it would start now; when no substation starts it and it asked to wait, in the queue of the
substation where it should start soonest. A Session-Token names one session: a token this balancer placed
goes back to the substation that holds it, and a substation that holds it for another request ends the
assignment (SessionExists), never sending it on to start a second one elsewhere.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from grid_common import deadline as deadlines
from grid_common.protocol import (
    SESSION_EXISTS,
    ChargeRequest,
    LoadReport,
    MalformedReport,
    admission_body,
    is_session_report,
    new_session_id,
    substation_of,
)
from grid_common.upstream import UpstreamError, UpstreamRefused, UpstreamResponse, UpstreamUnavailable
from load_balancer import metrics
from load_balancer.grid_view import GridView, KnownSubstation, checked_report
from load_balancer.strategies import Condition, Strategy

# Retry-After of a refusal when no report says when a session ends (nothing charging where it could, or
# nothing healthy): room then comes from background demand falling or a substation coming back, which a poll
# sees within a second or two, so a client asks again about as soon as the balancer could know.
NO_ESTIMATE_RETRY_AFTER_S = 2
# The longest Retry-After: an estimate from the soonest session end misses sessions stopped early and
# background demand falling, so beyond a minute it would keep a client away from room that has freed up.
MAX_RETRY_AFTER_S = 60
# Session-Tokens this balancer remembers placing (a token and a name each: about 2 MB): enough to send a
# token reused soon after back to its substation; the substations' own 409 covers the rest.
REMEMBERED_TOKENS = 10_000
# Conditional admissions a request may have declined as outdated before it asks without the condition.
# Each one brings a fresh load report, so a second choice rarely meets another replica's session again.
MAX_OUTDATED_CHOICES = 3
# The least time worth asking a substation, after an admission whose answer never came, whether it holds the
# session: less, and the look-up is not made (the outcome stays unknown).
MIN_LOOKUP_S = 0.05


class Admissions(Protocol):
    """The calls that ask a substation to admit a session, and whether it holds one
    (substation_client.SubstationClient)."""

    def begin_charging(
        self, url: str, admission: dict, *, timeout_s: float, deadline: float, condition: Condition | None = None
    ) -> UpstreamResponse: ...

    def session(self, url: str, session_id: str, *, timeout_s: float) -> UpstreamResponse: ...


class Outcome(StrEnum):
    """What one admission at one substation came to."""

    ADMITTED = "admitted"  # charging there (or a replay of the session it holds for this request)
    QUEUED = "queued"  # waiting in its queue
    REFUSED = "refused"  # no room, its queue full, or a car its chargers cannot serve: try elsewhere
    OUTDATED = "outdated"  # 412: other balancers placed sessions there since: choose again with its load
    FAILED = "failed"  # known not to hold the session: never sent, refused as late, or it could not keep it
    UNKNOWN = "unknown"  # it may hold the session: no answer came, and asking did not tell


@dataclass(frozen=True)
class Answer:
    outcome: Outcome
    session: dict | None = None  # the session report, when it holds the session
    new: bool = False  # a session started by this admission (201), not one it already held
    report: LoadReport | None = None  # the load the answer carried
    late_by_clock_s: float | None = None  # refused as late when it was not: how far its clock is ahead


@dataclass
class Placed:
    session: dict
    attempts: list[str]
    queued: bool = False  # waiting in the substation's queue (202), not charging yet


def placed(answer: Answer, attempts: list[str]) -> Placed:
    """The session an admitted or queued answer places."""
    assert answer.session is not None  # an admitted or queued answer always carries its session
    return Placed(answer.session, attempts, queued=answer.outcome == Outcome.QUEUED)


@dataclass
class NotPlaced(Exception):
    """No substation took the session: all full, all failing, or none healthy."""

    reason: str  # "no_capacity" | "unavailable"
    retry_after_s: float
    attempts: list[str] = field(default_factory=list)
    detail: str | None = None  # why, when it is not what `reason` says


@dataclass
class SessionExists(Exception):
    """A substation holds a session under the request's Session-Token, made for another request."""

    session_id: str


@dataclass
class AdmissionUnknown(Exception):
    """A substation may hold the session (`session_id`): it was asked and no answer came, nor could it say
    since. Placing it elsewhere could make a second session, so nothing is placed anywhere else."""

    substation: str
    session_id: str
    attempts: list[str] = field(default_factory=list)


@dataclass
class Attempts:
    """What one assignment tried, and learned on the way."""

    deadline: float
    token: str | None = None  # names every session it asks for: `<substation>.<token>`
    tried: set[str] = field(default_factory=set)
    names: list[str] = field(default_factory=list)
    retry_hints: list[float] = field(default_factory=list)
    refused: bool = False
    outdated: int = 0
    # Substations that refused an admission as late although this balancer's clock said it was in time, and
    # how far ahead of it their clocks are (s).
    clock_ahead_s: dict[str, float] = field(default_factory=dict)


class Assigner:
    def __init__(
        self,
        grid_view: GridView,
        strategy: Strategy,
        admissions: Admissions,
        *,
        admission_timeout_s: float,
        deadline_s: float,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.grid_view = grid_view
        self.strategy = strategy
        self.admissions = admissions
        self.admission_timeout_s = admission_timeout_s
        self.deadline_s = deadline_s
        self.clock = clock
        # Deadlines between processes are wall time (grid_common/deadline.py).
        self.wall_clock = wall_clock
        self.sleep = sleep or _sleep
        # Where this balancer placed each Session-Token it was given, the latest last.
        self._holders: OrderedDict[str, str] = OrderedDict()
        self._holders_lock = threading.Lock()

    def assign(self, request: ChargeRequest, *, within_s: float | None = None, token: str | None = None) -> Placed:
        """Place the session within `within_s` (the caller's deadline) or the balancer's own, the shorter;
        with `token`, every session asked for is named `<substation>.<token>`. SessionExists when a
        substation holds one under `token` for another request."""
        budget = self.deadline_s if within_s is None else min(self.deadline_s, within_s)
        attempts = Attempts(deadline=self.clock() + budget, token=token)
        try:
            placed = self._at_holder(request, attempts)
            if placed is None:
                placed = self._start_now(request, attempts)
            if placed is None and request.wait:
                placed = self._queue(request, attempts)
        except SessionExists as exists:
            self._remember(token, substation_of(exists.session_id))
            raise
        except AdmissionUnknown as unknown:
            self._remember(token, unknown.substation)
            metrics.REJECTED.labels("outcome_unknown").inc()
            unknown.attempts = attempts.names
            raise
        if placed is not None:
            self._remember(token, substation_of(placed.session["session_id"]))
            return placed
        reason = "no_capacity" if attempts.refused or self.grid_view.healthy_count() else "unavailable"
        if attempts.clock_ahead_s and not attempts.refused:
            reason = "clock_skew"
        metrics.REJECTED.labels(reason).inc()
        raise NotPlaced(reason, self._retry_after_s(attempts), attempts.names, _clock_skew_detail(attempts))

    def _retry_after_s(self, attempts: Attempts) -> int:
        """When to ask again: the soonest a session ends, by what the substations that refused said and what
        the view knows of every other (all of them, when it showed every one full and none was asked)."""
        soonest = self.grid_view.soonest_session_end_s(self.clock())
        hints = attempts.retry_hints if soonest is None else [*attempts.retry_hints, soonest]
        if not hints:
            return NO_ESTIMATE_RETRY_AFTER_S
        return min(MAX_RETRY_AFTER_S, max(1, math.ceil(min(hints))))

    def _at_holder(self, request: ChargeRequest, attempts: Attempts) -> Placed | None:
        """A token this balancer placed goes back to its substation, which answers the session again for the
        same request (SessionExists for another). None when that substation does not hold it after all (it
        refused the request as new): then it is placed as any other."""
        with self._holders_lock:
            name = None if attempts.token is None else self._holders.get(attempts.token)
        holder = None if name is None else self.grid_view.get(name)
        if holder is None:
            return None
        # Not to wait: were it not there after all, it should start elsewhere now rather than queue here.
        answer = self._ask_reserved(holder, request, attempts, None)
        if answer.outcome in (Outcome.ADMITTED, Outcome.QUEUED):
            return placed(answer, attempts.names)
        if answer.outcome == Outcome.FAILED:
            # It holds the session as far as this balancer knows (it placed it there): placing it elsewhere
            # could make a second one.
            raise AdmissionUnknown(holder.name, new_session_id(holder.name, attempts.token))
        return None

    def _remember(self, token: str | None, substation: str) -> None:
        if token is None:
            return
        with self._holders_lock:
            self._holders[token] = substation
            self._holders.move_to_end(token)
            if len(self._holders) > REMEMBERED_TOKENS:
                self._holders.popitem(last=False)

    def _start_now(self, request: ChargeRequest, attempts: Attempts) -> Placed | None:
        """The strategy's choice, then the next, until one starts it, none is left, or time runs out."""
        while self.clock() < attempts.deadline:
            picked = self._pick(request, attempts.tried, conditional=attempts.outdated < MAX_OUTDATED_CHOICES)
            if picked is None:
                return None
            substation, condition = picked
            answer = self._ask_reserved(substation, request, attempts, condition)
            if answer.outcome in (Outcome.ADMITTED, Outcome.QUEUED):
                # Queued only when an admission whose answer was lost had asked to wait: it is where it is.
                metrics.of_substation(metrics.DECISIONS, substation.name, self.strategy.name).inc()
                return placed(answer, attempts.names)
            if answer.outcome == Outcome.OUTDATED:
                # Another balancer placed sessions there since this one heard: choose again with the fresh
                # load, that substation included.
                attempts.outdated += 1
                attempts.tried.discard(substation.name)
                metrics.of_substation(metrics.OUTDATED_CHOICES, substation.name).inc()
        return None

    def _queue(self, request: ChargeRequest, attempts: Attempts) -> Placed | None:
        """Where it should start soonest, by each substation's estimate; the next when a queue is full."""
        for substation in self._soonest_starts(request):
            if self.clock() >= attempts.deadline:
                return None
            answer = self._ask_reserved(substation, request, attempts, None, wait=True)
            if answer.outcome in (Outcome.ADMITTED, Outcome.QUEUED):
                metrics.of_substation(metrics.DECISIONS, substation.name, self.strategy.name).inc()
                return placed(answer, attempts.names)
        return None

    def _soonest_starts(self, request: ChargeRequest) -> list[KnownSubstation]:
        with self.grid_view.lock:
            waits = []
            for substation in self.grid_view.in_order():
                report = substation.report
                if not substation.healthy or report is None or request.min_power_kw > report.charger_max_power_kw:
                    continue
                estimate = report.estimated_start_s[request.priority]
                if report.queued_sessions < report.queue_limit:
                    # No estimate (nothing charging there to end): a queue all the same, tried last.
                    waits.append(
                        (
                            math.inf if estimate is None else estimate,
                            report.queued_sessions,
                            substation.name,
                            substation,
                        )
                    )
        return [substation for *_, substation in sorted(waits)]

    def _pick(
        self, request: ChargeRequest, tried: set[str], conditional: bool
    ) -> tuple[KnownSubstation, Condition | None] | None:
        started = time.perf_counter()
        with self.grid_view.lock:
            picked = self.strategy.pick(self.grid_view, request, tried, conditional)
        if picked is not None:
            metrics.DECISION_SECONDS.observe(time.perf_counter() - started)
        return picked

    def _ask_reserved(
        self,
        substation: KnownSubstation,
        request: ChargeRequest,
        attempts: Attempts,
        condition: Condition | None,
        *,
        wait: bool = False,
    ) -> Answer:
        """An admission, its power counted in the view while the call is under way (it may start at once), so
        that concurrent decisions see it before the substation's answer does."""
        power, committed = substation.power_for(request.max_power_kw), substation.committed_for(request)
        self.grid_view.reserve(substation.name, power, committed)
        answer = Answer(Outcome.UNKNOWN)
        try:
            answer = self._ask(substation, request, attempts, condition, wait=wait)
            return answer
        finally:
            # A replayed session (200) started before; only a new one (201) adds to started_for_you.
            self.grid_view.release(
                substation.name, power, committed, started=answer.new, report=answer.report, now=self.clock()
            )

    def _ask(
        self,
        substation: KnownSubstation,
        request: ChargeRequest,
        attempts: Attempts,
        condition: Condition | None,
        *,
        wait: bool,
    ) -> Answer:
        """One admission at one substation; SessionExists when it holds the session's id for another request,
        AdmissionUnknown when it may hold the session and cannot say."""
        attempts.tried.add(substation.name)
        attempts.names.append(substation.name)
        # The balancer names the session so that any replica can later route it by its prefix.
        session_id = new_session_id(substation.name, attempts.token)
        admission = {**admission_body(request, session_id), "wait": wait}
        timeout = min(self.admission_timeout_s, max(0.01, attempts.deadline - self.clock()))
        admit_by = deadlines.deadline_in(timeout, self.wall_clock())  # wall time, as the substation reads it
        try:
            response = self.admissions.begin_charging(
                substation.url, admission, timeout_s=timeout, deadline=admit_by, condition=condition
            )
        except UpstreamError as error:
            self.grid_view.record_failure(substation.name, certain=isinstance(error, UpstreamUnavailable))
            metrics.of_substation(metrics.UPSTREAM_FAILURES, substation.name, "begin_charging", error.kind).inc()
            if isinstance(error, UpstreamRefused):
                return Answer(Outcome.FAILED)  # never sent
            return self._look_up(substation, session_id, admit_by, attempts)
        answer = self._take_answer(substation.name, response, admit_by)
        if answer.outcome == Outcome.UNKNOWN:
            return self._look_up(substation, session_id, admit_by, attempts, answer.report)
        if answer.late_by_clock_s is not None:
            attempts.clock_ahead_s[substation.name] = answer.late_by_clock_s
        if answer.outcome == Outcome.REFUSED:
            attempts.refused = True
            metrics.of_substation(metrics.REFUSALS, substation.name).inc()
            if response.retry_after and response.retry_after.isdigit():
                attempts.retry_hints.append(float(response.retry_after))
        return answer

    def _look_up(
        self,
        substation: KnownSubstation,
        session_id: str,
        admit_by: float,
        attempts: Attempts,
        report: LoadReport | None = None,
    ) -> Answer:
        """An admission whose answer never came (or came broken): the substation may have admitted it. Once its
        deadline has passed (and the clocks' margin with it) no substation admits it any more, so asking then
        whether it holds the session tells for good: it does (the session is the answer), or it never will
        (choose again). No answer to that either: AdmissionUnknown, and nothing is placed elsewhere."""
        settled_at = admit_by + deadlines.MARGIN_S
        wait_s = settled_at - self.wall_clock()
        if wait_s > 0 and self.clock() + wait_s + MIN_LOOKUP_S < attempts.deadline:
            self.sleep(wait_s)
        timeout = min(self.admission_timeout_s, attempts.deadline - self.clock())
        if self.wall_clock() < settled_at or timeout < MIN_LOOKUP_S:
            raise AdmissionUnknown(substation.name, session_id)
        try:
            response = self.admissions.session(substation.url, session_id, timeout_s=timeout)
        except UpstreamError as error:
            metrics.of_substation(metrics.UPSTREAM_FAILURES, substation.name, "session", error.kind).inc()
            raise AdmissionUnknown(substation.name, session_id) from None
        if response.status == 404:
            return Answer(Outcome.FAILED, report=report)
        if response.status == 200 and is_session_report(response.body):
            outcome = Outcome.QUEUED if response.body.get("state") == "queued" else Outcome.ADMITTED
            return Answer(outcome, response.body, new=True, report=report)
        raise AdmissionUnknown(substation.name, session_id)

    def _take_answer(self, name: str, response: UpstreamResponse, admit_by: float) -> Answer:
        """What the answer was, and the fresh load it carries, for the view to take as the reservation is
        released (in one step). A failed answer's load is taken at once, before the failure is counted."""
        body = response.body if isinstance(response.body, dict) else {}
        if response.status == 409 and body.get("reason") == SESSION_EXISTS:
            # The caller reused a token: another substation would start a second session under it.
            raise SessionExists(str(body.get("session_id")))
        carried = body.get("load")
        report = None
        if carried is not None:
            with contextlib.suppress(MalformedReport):  # the admission outcome stands without it
                report = checked_report(name, carried)
        session = body.get("session")
        if response.status in (200, 201, 202) and is_session_report(session):
            outcome = Outcome.QUEUED if session.get("state") == "queued" else Outcome.ADMITTED
            return Answer(outcome, session, new=response.status == 201, report=report)
        if response.status == 409 and carried is not None:
            return Answer(Outcome.REFUSED, report=report)
        if response.status == 412 and carried is not None:
            return Answer(Outcome.OUTDATED, report=report)
        if report is not None:
            self.grid_view.apply_report(name, report, self.clock())
        if response.status == 408:
            # Refused as late, yet answered before its deadline: late only by the substation's clock.
            ahead = deadlines.clock_ahead_s(body, admit_by, self.wall_clock())
            if ahead is not None:
                metrics.of_substation(metrics.UPSTREAM_FAILURES, name, "begin_charging", "clock_skew").inc()
                return Answer(Outcome.FAILED, late_by_clock_s=ahead)
        self.grid_view.record_failure(name)
        metrics.of_substation(
            metrics.UPSTREAM_FAILURES, name, "begin_charging", f"http_{response.status // 100}xx"
        ).inc()
        # A refusal that changed nothing (late, bad, a journal that could not keep it) is known; anything else
        # (a crash, a proxy's error) may have come after the session was admitted.
        known = response.status in (400, 408, 413, 415, 422, 503)
        return Answer(Outcome.FAILED if known else Outcome.UNKNOWN, report=report)


def _sleep(seconds: float) -> None:
    time.sleep(seconds)  # looked up at call time: gevent patches it after this module may be imported


def _clock_skew_detail(attempts: Attempts) -> str | None:
    if not attempts.clock_ahead_s:
        return None
    skews = ", ".join(f"{name} about {ahead:.1f} s" for name, ahead in sorted(attempts.clock_ahead_s.items()))
    return (
        f"Clock skew: substations refused the session as arriving after its deadline, though this balancer sent "
        f"it in time; their clocks are ahead of this balancer's ({skews}). Deadlines between hosts need clocks "
        f"within {deadlines.MARGIN_S:g} s of each other: synchronise them (NTP)."
    )
