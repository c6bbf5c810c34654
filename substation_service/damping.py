"""Keeping cars from flapping: limits that rise gradually and fall at once, and a least time a paused car stays
paused before it resumes. Pure.

A car's charger and battery follow a lower limit within seconds (IEC 61851 gives them 5 s), but a limit that jumps
up and down with every move of the background wears contactors and makes meters lag what is allocated. So, as
OpenEMS does (about 3 % a second), a limit rises by at most `ramp_per_s` of the car's maximum per wall second, and
falls at once (the safe side: capacity is never counted on a car that has not yet come down). A car that starts or
resumes starts at its minimum and rises from there. A car paused stays paused for `min_pause_s` wall seconds, and
with it every car after it in order (a car never overtakes one before it).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Damping:
    ramp_per_s: float = 0.0  # of a car's maximum, per wall second; 0: a limit rises at once
    min_pause_s: float = 0.0  # wall seconds; 0: a paused car resumes as soon as it fits

    def __post_init__(self) -> None:
        if self.ramp_per_s < 0 or self.min_pause_s < 0:
            raise ValueError("a ramp and a pause are not negative")

    def next_kw(self, current_kw: float, target_kw: float, min_kw: float, max_kw: float, elapsed_s: float) -> float:
        """What a car drawing `current_kw` (0: paused or new) gets when its fair share is `target_kw`, `elapsed_s`
        after the last allocation: the share when it is lower (or when there is no ramp); else at most the ramp's
        rise over `elapsed_s` above what it has, and never below its minimum while it charges."""
        if not self.ramp_per_s or target_kw <= current_kw:
            return target_kw
        risen = current_kw + self.ramp_per_s * max_kw * max(0.0, elapsed_s)
        return min(target_kw, max(min_kw, risen))

    def still_paused(self, paused_at: float | None, moment: float) -> bool:
        """Whether a car paused at `paused_at` must stay paused at `moment`."""
        return paused_at is not None and self.min_pause_s > 0 and moment - paused_at < self.min_pause_s
