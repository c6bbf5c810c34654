"""Playing a day: every arrival sent at its moment, the grid sampled meanwhile, the queued sessions read after."""

from __future__ import annotations

import concurrent.futures
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from load_tester.client import Outcome, fetch_json, send
from load_tester.day.arrivals import Arrival, clock, hour_at
from load_tester.day.grid_sampler import GridSampler
from load_tester.progress import PROGRESS_INTERVAL_S, Progress
from load_tester.run import ENDPOINT

MAX_IN_FLIGHT = 64  # requests in flight at once: far more than a day's peak needs on loopback
SESSION_READERS = 16  # GET /sessions/<id> in flight at once, after the day


@dataclass
class PlayedDay:
    """What was sent, what came back, and what the grid did meanwhile."""

    label: str
    arrivals: list[Arrival]
    outcomes: list[Outcome]  # one per arrival, in the same order
    sampler: GridSampler
    day_seconds: float
    start_hour: float
    time_scale: float  # the grid's TIME_SCALE the day assumes: 86400 / day_seconds
    started_wall: float  # time.time() as the day started
    ended_wall: float  # time.time() as the day ended (its last sample)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)  # session id -> GET /sessions/<id>
    session_errors: int = 0
    # With departures: each arrival's session as its driver left (the stop's answer), by arrival index; a driver
    # whose request got no session leaves with nothing and is not here.
    departed: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def departures(self) -> bool:
        return any(arrival.stay_hours is not None for arrival in self.arrivals)

    def outcome_of(self, arrival: Arrival) -> Outcome:
        return self.outcomes[arrival.index - 1]


def session_id_of(outcome: Outcome) -> str | None:
    body = outcome.body if isinstance(outcome.body, dict) else {}
    session_id = body.get("session_id")
    return session_id if isinstance(session_id, str) else None


class DayProgress:
    """The progress bar on stderr: arrivals sent, the hour of the played day, the outcomes so far."""

    def __init__(self, label: str, total: int, day_seconds: float, start_hour: float) -> None:
        self.label = label
        self.day_seconds = day_seconds
        self.start_hour = start_hour
        self.bar = Progress(total, enabled=True)
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def answered(self, future: concurrent.futures.Future) -> None:
        if future.cancelled():  # Ctrl-C: dropped before it was sent
            return
        with self._lock:
            self.counts[future.result().status] += 1

    def draw(self, sent: int, t: float, sampler: GridSampler) -> None:
        with self._lock:
            counts = dict(self.counts)
        queued_now = sampler.samples[-1].total("queued_sessions") if sampler.samples else 0
        outcomes = "  ".join(f"{status}: {counts.get(status, 0)}" for status in ("201", "202", "503"))
        other = sum(counts.values()) - sum(counts.get(status, 0) for status in ("201", "202", "503"))
        detail = f"{self.label} {clock(hour_at(self.start_hour, t, self.day_seconds))}  {outcomes}"
        detail += f"  other: {other}" if other else ""
        self.bar.update(sent, detail=f"{detail}  waiting now: {int(queued_now)}".lstrip())

    def clear(self) -> None:
        self.bar.clear()


def play(
    gateway_url: str,
    arrivals: list[Arrival],
    sampler: GridSampler,
    *,
    day_seconds: float,
    start_hour: float,
    time_scale: float,
    timeout: float,
    label: str = "",
) -> PlayedDay:
    """Send every arrival at its moment, sample the grid until the day ends, then read the queued sessions.
    The sampler is started as the day starts and stopped when it ends.

    Arrivals with a stay (departures) say their `departure_time`, and their sessions are stopped as their
    drivers leave: the day then lasts until the last one has left."""
    base = gateway_url.rstrip("/")
    progress = DayProgress(label, len(arrivals), day_seconds, start_hour)
    started_wall = time.time()
    origin = time.perf_counter()
    sampler.start(origin)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=MAX_IN_FLIGHT)
    futures: dict[int, concurrent.futures.Future] = {}
    stops: dict[int, concurrent.futures.Future] = {}
    try:
        for moment, arrival, leaving in timeline(arrivals, day_seconds):
            while (left := moment - (time.perf_counter() - origin)) > 0:
                progress.draw(len(futures), time.perf_counter() - origin, sampler)
                time.sleep(min(left, PROGRESS_INTERVAL_S))
            if arrival is None:
                continue  # the end of the day
            if leaving:
                stop = stop_of(base, futures[arrival.index], arrival.index, timeout)
                if stop is not None:
                    stops[arrival.index] = pool.submit(stop)
                continue
            body = arrival.body
            leaves = arrival.leaves_s(day_seconds)
            if leaves is not None:
                body = {**body, "departure_time": iso_utc(started_wall + leaves)}
            future = pool.submit(send, base + ENDPOINT, body, timeout, arrival.index)
            future.add_done_callback(progress.answered)
            futures[arrival.index] = future
        sampler.finish()
        ended_wall = started_wall + (time.perf_counter() - origin)
        outcomes = [futures[arrival.index].result() for arrival in arrivals]
        departed = {index: body for index, stop in stops.items() if isinstance(body := stop.result().body, dict)}
    finally:
        progress.clear()
        sampler.close()
        pool.shutdown(wait=True, cancel_futures=True)  # on Ctrl-C, drop what has not started yet
    played = PlayedDay(
        label, arrivals, outcomes, sampler, day_seconds, start_hour, time_scale, started_wall, ended_wall,
        departed=departed,
    )  # fmt: skip
    read_queued_sessions(gateway_url, played, timeout)
    return played


def timeline(arrivals: list[Arrival], day_seconds: float) -> list[tuple[float, Arrival | None, bool]]:
    """(moment, arrival, whether it is its driver leaving) in order: arrivals, departures, and the end of the day
    (None), or of the last departure if later. A driver arriving and leaving at one moment arrives first."""
    events: list[tuple[float, Arrival | None, bool]] = [(a.at_s, a, False) for a in arrivals]
    events += [(leaves, a, True) for a in arrivals if (leaves := a.leaves_s(day_seconds)) is not None]
    events.sort(key=lambda event: (event[0], event[2]))
    end = max(day_seconds, events[-1][0] if events else 0.0)
    return [*events, (end, None, False)]


def stop_of(base: str, sent: concurrent.futures.Future, index: int, timeout: float):
    """What stops the session its request got, as its driver leaves; None if it got none (refused), or its
    answer has not come yet (the driver waited no longer)."""
    if not sent.done():
        return None
    session_id = session_id_of(sent.result())
    if session_id is None:
        return None
    return lambda: send(f"{base}/sessions/{session_id}/stop", None, timeout, index)


def iso_utc(wall_seconds: float) -> str:
    return datetime.fromtimestamp(wall_seconds, UTC).isoformat(timespec="milliseconds")


def read_queued_sessions(gateway_url: str, played: PlayedDay, timeout: float) -> None:
    """GET /sessions/<id> of every session that was queued (202): when it was requested, when it started."""
    ids = [session_id for o in played.outcomes if o.status == "202" and (session_id := session_id_of(o))]
    base = gateway_url.rstrip("/") + "/sessions/"
    if not ids:
        return
    print(f"reading the {len(ids)} queued sessions", file=sys.stderr)
    with concurrent.futures.ThreadPoolExecutor(max_workers=SESSION_READERS) as pool:
        for session_id, (body, _error) in zip(ids, pool.map(lambda i: fetch_json(base + i, timeout), ids), strict=True):
            if isinstance(body, dict):
                played.sessions[session_id] = body
            else:
                played.session_errors += 1
