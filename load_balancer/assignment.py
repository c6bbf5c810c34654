"""Placing one session: pick, reserve, ask the substation, and fall back to the next best."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from grid_common.protocol import ChargeRequest, MalformedReport, admission_body, is_session_report, new_session_id
from grid_common.upstream import UpstreamError, UpstreamResponse, UpstreamUnavailable
from load_balancer import metrics
from load_balancer.grid_view import GridView, KnownSubstation
from load_balancer.strategies import Strategy

# When every substation refused but none said when a session ends.
DEFAULT_RETRY_AFTER_S = 2.0
# Conditional admissions a request may have declined as outdated before it asks without the condition.
# Each one brings a fresh load report, so a second choice rarely meets another replica's session again.
MAX_OUTDATED_CHOICES = 3


class Admissions(Protocol):
    """The call that asks a substation to admit a session (substation_client.SubstationClient)."""

    def begin_charging(
        self, url: str, admission: dict, *, timeout_s: float, others_at_most_kw: float | None = None
    ) -> UpstreamResponse: ...


@dataclass
class Placed:
    session: dict
    attempts: list[str]


@dataclass
class NotPlaced(Exception):
    """No substation took the session: all full, all failing, or none healthy."""

    reason: str  # "no_capacity" | "unavailable"
    retry_after_s: float
    attempts: list[str] = field(default_factory=list)


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
    ) -> None:
        self.grid_view = grid_view
        self.strategy = strategy
        self.admissions = admissions
        self.admission_timeout_s = admission_timeout_s
        self.deadline_s = deadline_s
        self.clock = clock
        self.wall_clock = wall_clock

    def _pick(
        self, request: ChargeRequest, tried: set[str], conditional: bool
    ) -> tuple[KnownSubstation, float, float | None] | None:
        started = time.perf_counter()
        with self.grid_view.lock:
            choice = self.strategy.choose(self.grid_view, request.max_power_kw, tried)
            if choice is None:
                return None
            power = choice.power_for(request.max_power_kw)
            condition_kw = (
                self.strategy.admission_condition(self.grid_view, choice, request.max_power_kw, tried)
                if conditional
                else None
            )
            self.grid_view.reserve(choice.name, power)
        metrics.DECISION_SECONDS.observe(time.perf_counter() - started)
        return choice, power, condition_kw

    def assign(self, request: ChargeRequest) -> Placed:
        deadline = self.clock() + self.deadline_s
        tried: set[str] = set()
        attempts: list[str] = []
        retry_hints: list[float] = []
        refused = False
        outdated = 0
        while self.clock() < deadline:
            picked = self._pick(request, tried, conditional=outdated < MAX_OUTDATED_CHOICES)
            if picked is None:
                break
            substation, power, condition_kw = picked
            tried.add(substation.name)
            attempts.append(substation.name)
            # The balancer names the session so that any replica can later route it by its prefix.
            admission = admission_body(request, new_session_id(substation.name))
            timeout = min(self.admission_timeout_s, max(0.01, deadline - self.clock()))
            try:
                response = self.admissions.begin_charging(
                    substation.url, admission, timeout_s=timeout, others_at_most_kw=condition_kw
                )
            except UpstreamError as error:
                self.grid_view.release(substation.name, power)
                self.grid_view.record_failure(substation.name, certain=isinstance(error, UpstreamUnavailable))
                metrics.UPSTREAM_FAILURES.labels(substation.name, "begin_charging", error.kind).inc()
                continue
            outcome = self._take_answer(substation.name, power, response)
            if outcome == "admitted":
                metrics.DECISIONS.labels(substation.name, self.strategy.name).inc()
                return Placed(response.body["session"], attempts)
            if outcome == "outdated":
                # Another balancer placed sessions there since this one heard: choose again with the fresh
                # load, that substation included.
                outdated += 1
                tried.discard(substation.name)
                metrics.OUTDATED_CHOICES.labels(substation.name).inc()
                continue
            if outcome == "refused":
                refused = True
                metrics.REFUSALS.labels(substation.name).inc()
                if response.retry_after and response.retry_after.isdigit():
                    retry_hints.append(float(response.retry_after))
        reason = "no_capacity" if refused or self.grid_view.healthy_count() else "unavailable"
        metrics.REJECTED.labels(reason).inc()
        raise NotPlaced(reason, min(retry_hints, default=DEFAULT_RETRY_AFTER_S), attempts)

    def _take_answer(self, name: str, power: float, response: UpstreamResponse) -> str:
        """Release the reservation and take the substation's fresh load in one step, so it is never counted twice."""
        body = response.body if isinstance(response.body, dict) else {}
        admitted = response.status in (200, 201) and is_session_report(body.get("session"))
        with self.grid_view.lock:
            self.grid_view.release(name, power)
            report = body.get("load")
            if report is not None:
                with contextlib.suppress(MalformedReport):  # the admission outcome stands without it
                    self.grid_view.apply_report(name, report, self.wall_clock())
        if admitted:
            return "admitted"
        if response.status == 409 and report is not None:
            return "refused"
        if response.status == 412 and report is not None:
            return "outdated"
        self.grid_view.record_failure(name)
        metrics.UPSTREAM_FAILURES.labels(name, "begin_charging", f"http_{response.status}").inc()
        return "failed"
