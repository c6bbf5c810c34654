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
- **Phases drawn on.** A limit reaches a charger in amperes a phase, so a car that draws on fewer phases than
  its session has takes less than its limit at that current, without being short of anything: a 1-phase car on
  a 3-phase charger takes a third. The meter's currents say how many phases it draws on (the OCPP service
  counts them), and the under-draw test judges a car against what its current gives on those phases, so such
  a car is not capped (capped, it was walked down to its minimum: told 18 A, it took 18 A on one phase, was
  capped at that, told a third of it, and so on). Seen on one phase for `underdraw_s`, its session goes to one
  phase on its charger's L1 (`phases_to_reshape`): its bounds keep their current a phase, so its share is what
  it can take, and its limit goes down with `numberPhases` 1. Until then nothing is miscounted: a 3-phase
  session counts a third of its limit on each phase, and a 1-phase car at that limit's current draws just that
  third, on its one phase. A car on two phases (no session has two) keeps its share, a third of it unused.
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
    # The phases its session would go to, by what its car draws on (phases_to_reshape), and since when it has.
    seen_on: tuple[int, float] | None = None
    lowered_at: float = -math.inf  # when its limit last went down

    def fresh(self, now: float, settings: MeterSettings) -> bool:
        return self.power_kw is not None and now - self.read_at < settings.stale_s


def counted_kw(session: Session, now: float, settings: MeterSettings) -> float:
    """The power capacity is checked against: measured when that can be known now, else the limit."""
    meter = session.meter
    if meter.power_kw is None or not meter.fresh(now, settings) or now - meter.lowered_at < settings.follow_s:
        return session.allocated_kw
    return meter.power_kw


def read(
    session: Session, power_kw: float, now: float, settings: MeterSettings, phases_drawn: int | None = None
) -> bool:
    """A reading of `power_kw` at `now`, its car drawing on `phases_drawn` phases (None: not known); whether the
    session's cap changed (then the next step shares anew)."""
    meter = session.meter
    meter.power_kw, meter.read_at = power_kw, now
    margin = settings.margin_kw
    if session.cap_kw < session.max_kw and power_kw >= session.cap_kw - margin / 2:
        meter.under_since = None
        session.cap(None)  # it takes what it was capped at: give it its share back
        return True
    # What its limit's current gives on the phases it draws on: taking that, it is short of nothing.
    drawn = 1.0 if phases_drawn is None else min(phases_drawn, session.phases) / session.phases
    if not session.state.started or power_kw >= session.allocated_kw * drawn - margin:
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


def phases_to_reshape(session: Session, phases_drawn: int | None, now: float, settings: MeterSettings) -> int | None:
    """The phases a charging session on a charger goes to, its car seen drawing on `phases_drawn` now; None: as
    it is. Neither within `follow_s` of its last switch, while the car may still be following it.

    - Three to one once the car has drawn on one phase alone for `underdraw_s`: a 3-phase car may start on one
      for a moment, and a charger that can switch phases would hold it on one once told so. Not a car its
      charger was told to switch back up (phase_switching.py): the charger may be on its way yet.
    - One to three, the safe side, for a car seen on three phases: its 1-phase limit's current on every phase
      is three times what is counted for it. At once, but for a car its charger was told to switch to one
      phase: that charger may be slow, so it has `underdraw_s` more (phase switching keeps deciding for the
      car afterwards); one that never switches is not under-counted for longer."""
    meter = session.meter
    target = None
    if session.state.started and meter.power_kw and session.wired_phase is not None:
        if session.phases == 3 and phases_drawn == 1 and not (session.switchable and session.switched_at is not None):
            target = 1
        elif session.phases == 1 and phases_drawn == 3:
            target = 3
    if target is None:
        meter.seen_on = None
        return None
    if session.switched_at is not None and now - session.switched_at < settings.follow_s:
        return None
    if meter.seen_on is None or meter.seen_on[0] != target:
        meter.seen_on = (target, now)
    wait = 0.0 if target == 3 and not session.switchable else settings.underdraw_s
    if now - meter.seen_on[1] < wait:
        return None
    meter.seen_on = None
    return target


def lapse(session: Session, now: float, settings: MeterSettings) -> bool:
    """A capped session whose meter went silent gets its maximum again; whether it did."""
    if session.cap_kw < session.max_kw and not session.meter.fresh(now, settings):
        session.meter.under_since = None
        session.cap(None)
        return True
    return False
