"""Phase switching: a charger that can (evcc's 1p3p) charges a 3-phase car on one phase rather than pause it, and
back on three once there is room again. Pure: what to switch, given the shares of the step; the substation does it.

A car paused because its 3-phase minimum (3 x 6 A) does not fit may still charge at 6 A on one phase. It switches
down when that one-phase minimum fits; it switches back up when its 3-phase minimum fits with `margin` to spare,
and a car switches at most once every `hold_s` wall seconds: hysteresis, so that a car on the edge does not flap
(evcc #24932, EVerest #1038). On one phase a car keeps its current a phase: its bounds in kW are a third.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from grid_common.protocol import GRID_PHASES, GridPhase
from substation_service.phases import roomiest_phase
from substation_service.sessions import Session


@dataclass(frozen=True)
class PhaseSwitching:
    hold_s: float = 10.0  # wall seconds a car stays on one phase count before it may switch again
    margin: float = 1.2  # back to three phases only when this much of its 3-phase minimum fits

    def may_switch(self, session: Session, moment: float) -> bool:
        return session.switched_at is None or moment - session.switched_at >= self.hold_s


@dataclass(frozen=True)
class Switch:
    session: Session
    phases: int
    grid_phase: GridPhase | None


def switches(
    candidates: Iterable[Session],
    shares: Mapping[str, float],
    total_room_kw: float,
    phase_room_kw: Sequence[float],
    moment: float,
    rules: PhaseSwitching,
) -> list[Switch]:
    """Which switchable cars change their phase count now, given this step's `shares` and what is left of the
    total and of each phase beside them (`*_room_kw`, which each switch uses up)."""
    room = list(phase_room_kw)
    decided: list[Switch] = []
    for session in candidates:
        if not rules.may_switch(session, moment):
            continue
        share = shares.get(session.session_id, 0.0)
        if session.phases == 3 and share == 0.0:  # paused on three phases: does one phase's minimum fit?
            phase = session.wired_phase or roomiest_phase(room)
            index = GRID_PHASES.index(phase)
            least = session.min_kw / 3
            if least <= total_room_kw and least <= room[index]:
                decided.append(Switch(session, 1, phase))
                total_room_kw -= least
                room[index] -= least
        elif session.phases == 1 and session.switched_at is not None and session.grid_phase is not None:
            index = GRID_PHASES.index(session.grid_phase)
            need = 3 * session.min_kw * rules.margin  # its 3-phase minimum, with room to spare
            freed = [share if p == index else 0.0 for p in range(3)]
            if need <= total_room_kw + share and all(need / 3 <= room[p] + freed[p] for p in range(3)):
                decided.append(Switch(session, 3, None))
                total_room_kw -= need - share
                for p in range(3):
                    room[p] -= need / 3 - freed[p]
    return decided
