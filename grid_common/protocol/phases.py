"""The three phases of a substation's supply, as chargers and meters name them."""

from __future__ import annotations

from enum import StrEnum


class GridPhase(StrEnum):
    L1 = "L1"
    L2 = "L2"
    L3 = "L3"


GRID_PHASES = tuple(GridPhase)
PHASE_INDEX = {phase: index for index, phase in enumerate(GRID_PHASES)}
