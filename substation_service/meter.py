"""What a session's meter says (a charger's, over OCPP), and what the substation makes of it. Pure: no clock
but the moments it is given, no I/O.

- **Counted power.** Capacity is checked against what a metered car draws, so that a charger that overdraws
  shows as overload. Not while it cannot be known: a meter silent for `stale_s` counts at the session's limit
  (never at 0: silence is not an empty car), and so does a car within `follow_s` of a lower limit (IEC 61851
  gives a car 5 s to follow one; its older, higher readings say nothing of now), its first limit included when
  that is below its charger's default profile, which it drew until then (Session.set_limit).
- **Under-draw.** A car that draws well below its limit (by more than `margin_kw`) for `underdraw_s` is capped
  at what it draws plus the margin, and the rest of its share goes to the others at the next step. As soon as
  it draws close to its cap (within half the margin) the cap goes, and its share comes back at the next step.
  A stale meter lifts the cap too: what nobody can see is given its limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from substation_service.sessions import Session


@dataclass(frozen=True)
class MeterSettings:
    stale_s: float = 10.0
    follow_s: float = 5.0
    underdraw_s: float = 10.0
    margin_kw: float = 1.0


@dataclass
class Meter:
    """A session's latest reading, and what the substation keeps of it (wall seconds, kW, kWh)."""

    power_kw: float | None = None  # None: never read
    energy_kwh: float | None = None  # delivered since the session started, by the meter
    read_at: float = -math.inf
    under_since: float | None = None  # since when it draws well below its limit
    lowered_at: float = -math.inf  # when its limit last went down

    def fresh(self, now: float, settings: MeterSettings) -> bool:
        return self.power_kw is not None and now - self.read_at < settings.stale_s


def counted_kw(session: Session, now: float, settings: MeterSettings) -> float:
    """The power capacity is checked against: measured when that can be known now, else the limit."""
    meter = session.meter
    if meter.power_kw is None or not meter.fresh(now, settings) or now - meter.lowered_at < settings.follow_s:
        return session.allocated_kw
    return meter.power_kw


def read(session: Session, power_kw: float, now: float, settings: MeterSettings) -> bool:
    """A reading of `power_kw` at `now`; whether the session's cap changed (then the next step shares anew)."""
    meter = session.meter
    meter.power_kw, meter.read_at = power_kw, now
    margin = settings.margin_kw
    if session.cap_kw < session.max_kw and power_kw >= session.cap_kw - margin / 2:
        meter.under_since = None
        session.cap(None)  # it takes what it was capped at: give it its share back
        return True
    if not session.state.started or power_kw >= session.allocated_kw - margin:
        meter.under_since = None
        return False
    if meter.under_since is None:
        meter.under_since = now
    if now - meter.under_since < settings.underdraw_s or now - meter.lowered_at < settings.follow_s:
        return False
    meter.under_since = None
    before = session.cap_kw
    session.cap(power_kw + margin)
    return session.cap_kw != before


def lapse(session: Session, now: float, settings: MeterSettings) -> bool:
    """A capped session whose meter went silent gets its maximum again; whether it did."""
    if session.cap_kw < session.max_kw and not session.meter.fresh(now, settings):
        session.meter.under_since = None
        session.cap(None)
        return True
    return False
