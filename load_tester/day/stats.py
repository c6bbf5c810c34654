"""What a played day comes to: outcomes, energy delivered and allowed, waits, overload and fairness.

Integrals over the samples hold each sample's value until the next one (a left Riemann sum): the grid's
power changes in steps, and a sample is what it was at that moment.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from load_tester.client import Outcome
from load_tester.day.arrivals import DAY_HOURS, MEAN_ENERGY_KWH, PEAK_HOUR, arrival_power_kw, clock, hour_at
from load_tester.day.grid_sampler import GridSample
from load_tester.day.play import PlayedDay, session_id_of
from load_tester.stats import percentile

OVERLOAD_TOLERANCE_KW = 1e-6
# The background of the compose grid peaks at 19:00 (a neighbourhood two hours later): a grid whose clock
# follows the played day has its background peak in this window of the played day.
BACKGROUND_PEAK_WINDOW = (17.0, 23.0)
# How far the time scale that energy delivered implies may stray from the assumed one before a warning.
TIME_SCALE_TOLERANCE = 0.2
DONE_KWH = 0.01  # a driver leaving with all but 10 Wh has what was asked
STATUSES = {"201": "started", "202": "queued", "503": "refused"}


def kwh(kw_wall_seconds: float, time_scale: float) -> float:
    """Energy in kWh of power (kW) held for wall seconds, on a grid whose clock runs `time_scale` times faster."""
    return kw_wall_seconds * time_scale / 3600.0


def integral(samples: list[GridSample], value) -> float:
    """The integral over wall seconds of `value(substation fields)`, summed over the substations: each
    substation's read holds until its next one, at the moments it answered (its "t", else the sample's)."""
    total = 0.0
    last: dict[str, tuple[float, dict[str, float | None]]] = {}
    for sample in samples:
        for name, fields in sample.substations.items():
            moment = fields.get("t")
            moment = sample.t if moment is None else moment
            if name in last:
                before, previous = last[name]
                total += value(previous) * max(0.0, moment - before)
            last[name] = (moment, fields)
    return total


def usable_kw(fields: dict[str, float | None]) -> float:
    """What the headroom allowed the cars there to draw: all they wanted, up to the headroom."""
    return max(0.0, min(fields.get("headroom_kw") or 0.0, fields.get("demand_kw") or 0.0))


def energy_allowed_kwh(samples: list[GridSample], time_scale: float) -> float:
    """The energy the headroom allowed while cars were there: the integral of min(headroom, demand)."""
    return kwh(integral(samples, usable_kw), time_scale)


def energy_delivered_kwh(samples: list[GridSample]) -> float | None:
    """What the substations' energy counters grew by from the first sample to the last; None if unread."""
    deltas = []
    for name in {name for sample in samples for name in sample.substations}:
        read = (s.substations[name].get("energy_kwh") for s in samples if name in s.substations)
        readings = [reading for reading in read if reading is not None]
        if len(readings) >= 2:
            deltas.append(max(0.0, readings[-1] - readings[0]))  # a restarted process starts its counter at 0
    return sum(deltas) if deltas else None


def overloaded(fields: dict[str, float | None]) -> bool:
    ev, background, capacity = (fields.get(key) for key in ("ev_power_kw", "background_kw", "capacity_kw"))
    if ev is None or background is None or capacity is None:
        return False
    return ev + background > capacity + OVERLOAD_TOLERANCE_KW


def overload_instants(samples: list[GridSample]) -> int:
    """Samples of a substation where EV power and background together exceeded its capacity."""
    return sum(overloaded(fields) for sample in samples for fields in sample.substations.values())


def parse_moment(text: Any) -> float | None:
    """An ISO 8601 moment of the API as Unix seconds; None for anything else."""
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def outcome_counts(outcomes: list[Outcome]) -> tuple[dict[str, int], dict[str, int]]:
    """(started, queued, refused and other, each a count; the other statuses, each a count)."""
    counts = Counter(o.status for o in outcomes)
    kinds = {kind: counts.get(status, 0) for status, kind in STATUSES.items()}
    others = {status: n for status, n in sorted(counts.items()) if status not in STATUSES}
    return {**kinds, "other": sum(others.values())}, others


@dataclass
class DayResult:
    label: str
    allocation: str | None  # as the substations' /load said
    day_seconds: float
    time_scale: float
    start_hour: float
    peak_rate: float
    arrivals: int
    outcomes: dict[str, int]  # started (201), queued (202), refused (503), other
    other_statuses: dict[str, int]
    queued_started: int  # queued sessions that started before the day ended
    queued_waiting: int  # queued sessions not started when the day ended (or not read)
    energy_delivered_kwh: float | None
    energy_sampled_kwh: float  # the integral of the EV power sampled: what the counters should agree with
    energy_allowed_kwh: float
    wait_p50_min: float | None  # simulated minutes from request to start, over the queued sessions
    wait_p95_min: float | None
    overload_instants: int
    overload_counter_s: float | None
    jain_end: float | None  # the lowest over substations and priorities, as the day ended
    jain_lowest: float | None  # the lowest in any sample
    peak_waiting: int  # the most sessions waiting (queued) at once, over the grid
    peak_headroom_kw: float | None  # the grid's headroom around the arrival peak, sampled
    implied_time_scale: float | None  # what energy delivered over EV power sampled says the grid runs
    background_peak_hour: float | None  # the hour of the played day when the grid's background was highest
    samples: int
    sample_errors: int
    session_errors: int
    # With departures: drivers, those who left with all the energy they asked for, those promised it at once.
    departures: int = 0
    satisfied: int | None = None
    promised: int | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def satisfied_share(self) -> float | None:
        return None if self.satisfied is None or not self.departures else self.satisfied / self.departures

    @property
    def delivered_share(self) -> float | None:
        """Energy delivered over the energy the headroom allowed."""
        if self.energy_delivered_kwh is None or self.energy_allowed_kwh <= 0:
            return None
        return self.energy_delivered_kwh / self.energy_allowed_kwh

    @property
    def started_without_refusal(self) -> int:
        """Sessions that started at once (201) or after a wait in the day (202, then started)."""
        return self.outcomes["started"] + self.queued_started

    @property
    def oversubscription(self) -> float | None:
        """The arrival energy rate at the evening peak over the headroom sampled then."""
        if not self.peak_headroom_kw:
            return None
        return arrival_power_kw(self.peak_rate, self.day_seconds) / self.peak_headroom_kw

    def as_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "delivered_share": self.delivered_share,
            "started_without_refusal": self.started_without_refusal,
            "oversubscription": self.oversubscription,
            "satisfied_share": self.satisfied_share,
            "mean_energy_kwh": MEAN_ENERGY_KWH,
        }


def waits_wall_s(played: PlayedDay) -> tuple[list[float], int]:
    """(each queued session's wait, in wall seconds; how many started within the day). One still waiting as
    the day ended counts its wait until then; one that could not be read counts from its reply to the end."""
    waits, started = [], 0
    for outcome in played.outcomes:
        if outcome.status != "202":
            continue
        body = outcome.body if isinstance(outcome.body, dict) else {}
        session_id = session_id_of(outcome)  # as read_queued_sessions keyed what it read
        session = body if session_id is None else played.sessions.get(session_id, body)
        requested = parse_moment(session.get("requested_at")) or outcome.sent_at or played.started_wall
        began = parse_moment(session.get("started_at"))
        if began is not None and began <= played.ended_wall:
            started += 1
            waits.append(max(0.0, began - requested))
        else:
            waits.append(max(0.0, played.ended_wall - requested))
    return waits, started


def background_peak_hour(played: PlayedDay) -> float | None:
    samples = played.sampler.samples
    peak = max(samples, key=lambda sample: sample.total("background_kw"), default=None)
    if peak is None or peak.total("background_kw") <= 0:
        return None  # no background at all: nothing to tell the hour by
    return hour_at(played.start_hour, peak.t, played.day_seconds)


def headroom_around(played: PlayedDay, hour: float, half_width_h: float = 0.5) -> float | None:
    """The grid's headroom, on average over the samples within `half_width_h` of `hour`."""
    near = []
    for sample in played.sampler.samples:
        distance = abs((hour_at(played.start_hour, sample.t, played.day_seconds) - hour + 12) % DAY_HOURS - 12)
        if distance <= half_width_h:
            near.append(sample.total("headroom_kw"))
    return sum(near) / len(near) if near else None


def clock_warnings(result: DayResult) -> list[str]:
    """What says the grid's clock does not follow the played day."""
    warnings = []
    implied, assumed = result.implied_time_scale, result.time_scale
    if implied is not None and abs(implied / assumed - 1) > TIME_SCALE_TOLERANCE:
        warnings.append(
            f"the grid's clock does not follow the played day: the energy it delivered says TIME_SCALE is about "
            f"{implied:.0f}, the day assumes {assumed:g} (86400 / {result.day_seconds:g} s). Start the "
            f"substations with TIME_SCALE={assumed:g}, or pass --day-seconds {86400 / implied:.0f}."
        )
    low, high = BACKGROUND_PEAK_WINDOW
    hour = result.background_peak_hour
    if hour is not None and not low <= hour <= high:
        warnings.append(
            f"the grid's background peaked at {clock(hour)} of the played day, not in the evening "
            f"({clock(low)}-{clock(high)}): its hour of day does not follow the played day's (TIME_SCALE or "
            "BACKGROUND_PHASE_HOURS differ from what the day assumes)."
        )
    return warnings


def satisfied_drivers(played: PlayedDay) -> list[int]:
    """The arrivals whose drivers left with all the energy they asked for (within DONE_KWH)."""
    asked = {arrival.index: float(arrival.body["energy_kwh"]) for arrival in played.arrivals}
    return [
        index
        for index, session in played.departed.items()
        if float(session.get("energy_delivered_kwh") or 0.0) >= asked[index] - DONE_KWH
    ]


def summarise_day(played: PlayedDay, peak_rate: float) -> DayResult:
    samples = played.sampler.samples
    outcomes, others = outcome_counts(played.outcomes)
    waits, queued_started = waits_wall_s(played)
    ordered = sorted(wait * played.time_scale / 60.0 for wait in waits)
    delivered = energy_delivered_kwh(samples)
    sampled = kwh(integral(samples, lambda fields: fields.get("ev_power_kw") or 0.0), played.time_scale)
    last = samples[-1].substations.values() if samples else []
    overload = [o for fields in last if (o := fields.get("overload_s")) is not None]
    jain_end = [j for fields in last if (j := fields.get("jain")) is not None]
    jain_all = [j for s in samples for fields in s.substations.values() if (j := fields.get("jain")) is not None]
    allocations = sorted(set(played.sampler.allocations.values()))
    result = DayResult(
        label=played.label,
        allocation="/".join(allocations) or None,
        day_seconds=played.day_seconds,
        time_scale=played.time_scale,
        start_hour=played.start_hour,
        peak_rate=peak_rate,
        arrivals=len(played.arrivals),
        outcomes=outcomes,
        other_statuses=others,
        queued_started=queued_started,
        queued_waiting=outcomes["queued"] - queued_started,
        energy_delivered_kwh=delivered,
        energy_sampled_kwh=sampled,
        energy_allowed_kwh=energy_allowed_kwh(samples, played.time_scale),
        wait_p50_min=percentile(ordered, 50) if ordered else None,
        wait_p95_min=percentile(ordered, 95) if ordered else None,
        overload_instants=overload_instants(samples),
        overload_counter_s=sum(overload) if last and len(overload) == len(last) else None,  # every one read
        jain_end=min(jain_end, default=None),
        jain_lowest=min(jain_all, default=None),
        peak_waiting=int(max((s.total("queued_sessions") for s in samples), default=0)),
        peak_headroom_kw=headroom_around(played, PEAK_HOUR),
        implied_time_scale=played.time_scale * delivered / sampled if delivered and sampled > 0 else None,
        background_peak_hour=background_peak_hour(played),
        samples=len(samples),
        sample_errors=played.sampler.errors,
        session_errors=played.session_errors,
    )
    if played.departures:
        result.departures = sum(arrival.stay_hours is not None for arrival in played.arrivals)
        result.satisfied = len(satisfied_drivers(played))
        answers = [o.body for o in played.outcomes if isinstance(o.body, dict)]
        result.promised = sum(answer.get("promised") is True for answer in answers)
    result.warnings = clock_warnings(result)
    if math.isclose(result.energy_allowed_kwh, 0.0) and samples:
        result.warnings.append("no car was ever waiting for power: nothing to compare the energy delivered with")
    return result
