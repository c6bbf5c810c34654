"""Which charger a session's car is plugged into: what the OCPP service sends with an admission."""

from __future__ import annotations

from dataclasses import dataclass

from grid_common.protocol.phases import GridPhase


@dataclass(frozen=True)
class ChargerLink:
    """The charger a session's car is plugged into, its transaction there, and what the charger draws on its
    own when it hears nothing (its default profile), which the substation counts while its meter is silent."""

    charger_id: str
    transaction_id: str | None = None
    failsafe_kw: float = 0.0
    grid_phase: GridPhase | None = None  # the grid phase its L1 is wired to: where a 1-phase car draws
    circuit: str | None = None  # the circuit inside the substation it hangs on (substation_service/circuits.py)
    phase_switching: bool = False  # it can switch a 3-phase car to one phase (and back) while it charges
