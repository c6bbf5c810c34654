"""A substation's three phases: what each session and the background put on each, and what each phase holds.

A substation rated C kW holds C/3 on each phase (L1, L2, L3). A 3-phase car draws the same current on all
three, a third of its power on each; a 1-phase car draws all of its power on the one grid phase its charger's
L1 is wired to. The background is split over the phases by fixed shares (its imbalance). Everything is in kW
per phase (current x nominal voltage), so that a phase's limit is another limit of the same kind as the
substation's total (filling.py shares under all of them at once). Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from grid_common.protocol import GRID_PHASES, NOMINAL_VOLTAGE_V, GridPhase, current_of

PHASE_COUNT = 3
Triple = tuple[float, float, float]
BALANCED: Triple = (1 / 3, 1 / 3, 1 / 3)
# A 1-phase car not yet placed on a phase could be on any: counted on each, the safe side.
UNPLACED: Triple = (1.0, 1.0, 1.0)
ONE_PHASE: dict[GridPhase, Triple] = {
    GridPhase.L1: (1.0, 0.0, 0.0),
    GridPhase.L2: (0.0, 1.0, 0.0),
    GridPhase.L3: (0.0, 0.0, 1.0),
}


def phase_weights(phases: int, grid_phase: GridPhase | None) -> Triple:
    """The share of a car's power on each grid phase."""
    if phases == 3:
        return BALANCED
    return UNPLACED if grid_phase is None else ONE_PHASE[grid_phase]


@dataclass(frozen=True)
class PhaseSupply:
    """How a substation's supply is split: the nominal voltage (phase to neutral), and each phase's share of the
    background (they sum to 1; a third each when it is balanced)."""

    voltage_v: float = NOMINAL_VOLTAGE_V
    background_split: Triple = BALANCED

    def __post_init__(self) -> None:
        split = self.background_split
        if len(split) != PHASE_COUNT or any(share < 0 for share in split) or abs(sum(split) - 1.0) > 1e-9:
            raise ValueError(
                f"the background's shares of the phases must be three, none negative, summing to 1: {split}"
            )

    def headrooms(
        self, rated_kw: float, background_kw: float, drawn_apart: Sequence[float] = (0.0, 0.0, 0.0)
    ) -> Triple:
        """What each phase leaves for the sessions: its third of the rating, less its share of `background_kw`
        and what is `drawn_apart` on it (silent chargers)."""
        third = rated_kw / PHASE_COUNT
        split = self.background_split
        return (
            max(0.0, third - background_kw * split[0] - drawn_apart[0]),
            max(0.0, third - background_kw * split[1] - drawn_apart[1]),
            max(0.0, third - background_kw * split[2] - drawn_apart[2]),
        )

    def amperes(self, kw: float) -> float:
        """The current on one phase that `kw` on it takes."""
        return current_of(kw, 1, self.voltage_v)


def roomiest_phase(room: Sequence[float]) -> GridPhase:
    """The phase with the most room; the first of equals."""
    return GRID_PHASES[max(range(PHASE_COUNT), key=lambda index: (room[index], -index))]


def spread(weights: Triple, kw: float) -> Triple:
    return (weights[0] * kw, weights[1] * kw, weights[2] * kw)
