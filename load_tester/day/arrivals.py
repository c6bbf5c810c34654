"""The day scenario's arrivals: a daily EV arrival curve, and a seeded schedule of charging requests over it.

The arrival curve (`arrival_shape`, hour of day -> share of the peak rate) is smooth and periodic over 24 hours:
a small constant for the night, a morning bump and the evening peak, each bump a von Mises curve
`exp(k * (cos(2π (h - centre) / 24) - 1))`, about a Gaussian of the given width near its centre:

    night      0.04 of the peak, all day long
    morning    +0.30 at 08:00, about 1.2 h wide (one standard deviation): cars at work and at depots
    evening    +1.00 at 18:30, about 2.0 h wide: cars plugged in at home after work

normalised so that its highest value over the day (at 18:30) is 1. Lowest around 03:30 (about 4 % of the
peak), about a third of the peak at 08:00, and on average about 28 % of the peak over the day.

The schedule is a Poisson process whose rate follows the curve, `peak_rate * arrival_shape(hour)` arrivals
per wall second, drawn by thinning (candidates at the peak rate, each kept with probability the curve's
value), with every request's body drawn from the same seeded random generator: the same seed, day and start
hour give the same arrivals, whatever grid they are sent to.

The grid's day is played when the substations' simulated clock runs 86400 / day_seconds simulated seconds
per wall second (TIME_SCALE): `time_scale_for`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from typing import Any

from grid_common.simulated_time import DailyProfile

DAY_HOURS = 24.0
SECONDS_PER_DAY = 86400.0

# The arrival curve: (share of the peak, centre hour, width in hours) of each bump, and the night's floor.
NIGHT_FLOOR = 0.04
BUMPS = ((0.30, 8.0, 1.2), (1.00, 18.5, 2.0))

# Every request's body: energy uniform in [5, 40] kWh, a charger of 7.4, 11 or 22 kW (home wallboxes are
# mostly 7.4 or 11 kW), the least a car charges at (IEC 61851's 6 A), and some cars of priority 1.
ENERGY_KWH = (5.0, 40.0)
MAX_POWERS_KW = (7.4, 11.0, 22.0)
MAX_POWER_WEIGHTS = (0.35, 0.45, 0.20)
MIN_POWER_KW = 1.4
PRIORITY_1_SHARE = 0.1
MEAN_ENERGY_KWH = sum(ENERGY_KWH) / 2

# What the default peak rate aims at: the arrival energy rate at the evening peak over the headroom then.
TARGET_OVERSUBSCRIPTION = 3.0


def _bump(hour: float, centre: float, width: float) -> float:
    concentration = (DAY_HOURS / (2 * math.pi * width)) ** 2
    return math.exp(concentration * (math.cos(2 * math.pi * (hour - centre) / DAY_HOURS) - 1))


def _raw_shape(hour: float) -> float:
    return NIGHT_FLOOR + sum(height * _bump(hour, centre, width) for height, centre, width in BUMPS)


def _peak() -> tuple[float, float]:
    """(the hour of the raw curve's highest value, that value), to a hundredth of an hour."""
    hours = (index / 100 for index in range(int(DAY_HOURS * 100)))
    return max(((hour, _raw_shape(hour)) for hour in hours), key=lambda item: item[1])


PEAK_HOUR, _PEAK_VALUE = _peak()


def arrival_shape(hour: float) -> float:
    """The arrival rate at `hour` of the day as a share of the peak rate: between 0 and 1, 1 at PEAK_HOUR."""
    return _raw_shape(hour % DAY_HOURS) / _PEAK_VALUE


def mean_shape(steps: int = 2400) -> float:
    """The curve's average over the day: arrivals in a day are peak_rate * day_seconds * this."""
    return sum(arrival_shape(DAY_HOURS * index / steps) for index in range(steps)) / steps


def time_scale_for(day_seconds: float) -> float:
    """The grid's TIME_SCALE under which one simulated day lasts `day_seconds` wall seconds."""
    return SECONDS_PER_DAY / day_seconds


def hour_at(start_hour: float, t: float, day_seconds: float) -> float:
    """The hour of the played day `t` wall seconds after it started at `start_hour`."""
    return (start_hour + DAY_HOURS * t / day_seconds) % DAY_HOURS


def clock(hour: float) -> str:
    """An hour of the day as HH:MM."""
    minutes = round(hour * 60) % (24 * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class Arrival:
    index: int  # 1-based, in order of arrival
    at_s: float  # wall seconds after the day started
    hour: float  # hour of the played day
    body: dict[str, Any]
    stay_hours: float | None = None  # with departures: how long its driver stays (simulated hours)

    def leaves_s(self, day_seconds: float) -> float | None:
        """When its driver leaves, in wall seconds after the day started (None: no departure)."""
        return None if self.stay_hours is None else self.at_s + self.stay_hours * day_seconds / DAY_HOURS


def draw_body(rng: random.Random, index: int, vehicle_prefix: str = "EV-") -> dict[str, Any]:
    """One car's request: it waits in a queue rather than be refused when the grid is full."""
    return {
        "vehicle_id": f"{vehicle_prefix}{index}",
        "energy_kwh": round(rng.uniform(*ENERGY_KWH), 1),
        "max_power_kw": rng.choices(MAX_POWERS_KW, weights=MAX_POWER_WEIGHTS)[0],
        "min_power_kw": MIN_POWER_KW,
        "priority": 1 if rng.random() < PRIORITY_1_SHARE else 0,
        "wait": True,
    }


def stay_hours(rng: random.Random, hour: float) -> float:
    """How long a driver who comes at `hour` stays (simulated hours): from 05:00 to 12:00, 4 to 9 hours (work);
    from 12:00 to 16:00, 1 to 4 (visits); later, or in the night, a third 1 to 3 hours (an evening out) and the
    rest until 06:30 to 08:30 the next morning (home)."""
    if 5 <= hour < 12:
        return rng.uniform(4, 9)
    if 12 <= hour < 16:
        return rng.uniform(1, 4)
    if rng.random() < 1 / 3:
        return rng.uniform(1, 3)
    return (rng.uniform(6.5, 8.5) - hour) % 24


def schedule(
    seed: int,
    day_seconds: float,
    peak_rate: float,
    start_hour: float = 0.0,
    vehicle_prefix: str = "EV-",
    *,
    departures: bool = False,
) -> list[Arrival]:
    """The day's arrivals: a Poisson process of `peak_rate * arrival_shape(hour)` per wall second over
    `day_seconds`, the day starting at `start_hour`, drawn by thinning from a generator seeded with `seed`.
    With `departures`, each driver's stay too (stay_hours), from a generator of its own: the arrivals are the
    same with or without."""
    rng = random.Random(seed)
    arrivals: list[Arrival] = []
    t = 0.0
    while peak_rate > 0:
        t += rng.expovariate(peak_rate)
        if t >= day_seconds:
            break
        hour = hour_at(start_hour, t, day_seconds)
        if rng.random() < arrival_shape(hour):
            index = len(arrivals) + 1
            arrivals.append(Arrival(index, t, hour, draw_body(rng, index, vehicle_prefix)))
    if departures:
        stays = random.Random(seed + 1)
        arrivals = [replace(arrival, stay_hours=stay_hours(stays, arrival.hour)) for arrival in arrivals]
    return arrivals


# --- the grid the default rate is sized for ------------------------------------------------------------
@dataclass(frozen=True)
class SubstationShape:
    name: str
    capacity_kw: float
    background_peak_fraction: float
    background_phase_hours: float = 0.0
    charger_max_power_kw: float = 22.0


# docker-compose.yml's grid (tests/unit/test_load_tester_day.py checks that they agree): --compare starts
# it, and the default peak rate is sized for it.
COMPOSE_GRID = (
    SubstationShape("substation1", 150.0, 0.3),
    SubstationShape("substation2", 150.0, 0.3, 22.0),  # its evening peak comes two hours later
    SubstationShape("substation3", 300.0, 0.2),
)
BACKGROUND = DailyProfile()  # the substations' background demand, as a share of its peak, hour by hour


def headroom_kw(hour: float, grid: tuple[SubstationShape, ...] = COMPOSE_GRID) -> float:
    """The sum of the substations' headroom at `hour` of the played day: capacity less background."""
    return sum(
        s.capacity_kw * (1 - s.background_peak_fraction * BACKGROUND.at(hour + s.background_phase_hours)) for s in grid
    )


def arrival_power_kw(peak_rate: float, day_seconds: float, share: float = 1.0) -> float:
    """The energy cars ask for per simulated hour (kW) when `share` of the peak rate arrives."""
    arrivals_per_simulated_hour = peak_rate * share * day_seconds / DAY_HOURS
    return arrivals_per_simulated_hour * MEAN_ENERGY_KWH


def oversubscription(peak_rate: float, day_seconds: float, grid: tuple[SubstationShape, ...] = COMPOSE_GRID) -> float:
    """The arrival energy rate at the evening peak over the sum of the substations' headroom then."""
    return arrival_power_kw(peak_rate, day_seconds) / headroom_kw(PEAK_HOUR, grid)


def default_peak_rate(day_seconds: float, grid: tuple[SubstationShape, ...] = COMPOSE_GRID) -> float:
    """The peak rate (arrivals per wall second) that oversubscribes the evening peak TARGET_OVERSUBSCRIPTION
    times: about 12.4 for a 120 s day on the compose grid. The same cars arrive in a day of any length."""
    return TARGET_OVERSUBSCRIPTION * headroom_kw(PEAK_HOUR, grid) / arrival_power_kw(1.0, day_seconds)
