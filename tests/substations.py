"""A substation of the domain as the unit tests build it: no Flask, no clock of its own, a background of the
daily profile scaled to `background_peak_kw` (none by default)."""

from __future__ import annotations

from grid_common.simulated_time import DailyProfile, SimulatedClock
from substation_service.background import BackgroundDemand
from substation_service.substation import Substation

TIME_SCALE = 360.0  # one simulated hour in 10 wall seconds: 11 kWh at 11 kW lasts 10 s
HOUR = 3600 / TIME_SCALE  # wall seconds of a simulated hour


def make_substation(
    capacity_kw: float = 33.0, *, background_peak_kw: float = 0.0, charger_kw: float = 22.0, **settings
) -> Substation:
    """Substation "s1"; `settings` are Substation's own (allocation, journal, now, history_limit...)."""
    background = BackgroundDemand(background_peak_kw, DailyProfile(), SimulatedClock(TIME_SCALE))
    return Substation("s1", capacity_kw, charger_kw, TIME_SCALE, background, **settings)
