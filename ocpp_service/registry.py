"""Which chargers may connect, where each is wired, and what it can give: a charger is physically on one
substation, so its sessions start there and nowhere else."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from grid_common.protocol import GRID_PHASES, GridPhase, is_charger_id, is_substation_name
from grid_common.protocol.names import CIRCUIT_PATTERN

# IEC 61851: the least current a car may be offered, per phase.
MIN_CURRENT_A = 6.0


@dataclass(frozen=True)
class Charger:
    charger_id: str
    substation: str
    phases: int = 3
    max_current_a: float = 32.0
    password: str | None = None  # OCPP security profile 1
    fleet: bool = False  # one of the simulated default fleet's
    # The grid phase its L1 is wired to (its phase rotation): where a 1-phase car on it draws.
    grid_phase: GridPhase = GridPhase.L1
    # The circuit inside its substation it hangs on (the substation's CIRCUITS); None: on the substation alone.
    circuit: str | None = None
    # It can switch a 3-phase car to one phase and back while it charges (evcc's 1p3p), on its L1.
    phase_switching: bool = False

    def kw(self, amperes: float, voltage_v: float) -> float:
        return self.phases * amperes * voltage_v / 1000.0

    def amperes(self, kw: float, voltage_v: float) -> float:
        return kw * 1000.0 / (self.phases * voltage_v)


def rotated(number: int) -> GridPhase:
    """The grid phase the `number`th charger's L1 is on, turning round: L1, L2, L3, L1..."""
    return GRID_PHASES[(number - 1) % len(GRID_PHASES)]


class RegistryError(ValueError):
    pass


def default_registry(substations: list[str], public: int, fleet: int) -> dict[str, Charger]:
    """`<substation>-cp1..N` for people and their own chargers, `<substation>-fleet1..M` for the simulated fleet:
    3-phase 32 A (22 kW) each, wired in turn with L1 on the grid's L1, L2, L3 (as installers rotate them), so
    that 1-phase cars spread over the phases."""
    chargers = [
        Charger(f"{name}-cp{n}", name, grid_phase=rotated(n)) for name in substations for n in range(1, public + 1)
    ]
    chargers += [
        Charger(f"{name}-fleet{n}", name, fleet=True, grid_phase=rotated(n))
        for name in substations
        for n in range(1, fleet + 1)
    ]
    return {charger.charger_id: charger for charger in chargers}


def load_registry(path: str, substations: list[str]) -> dict[str, Charger]:
    """A JSON list of `{"charger_id", "substation", "phases"?, "max_current_a"?, "password"?, "grid_phase"?,
    "circuit"?}` (grid_phase: where its L1 is wired, L1 unless said; circuit: the substation's circuit it hangs
    on, none unless said); RegistryError naming what is wrong."""
    try:
        entries = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise RegistryError(f"{path}: not a JSON list of chargers: {error}") from None
    if not isinstance(entries, list):
        raise RegistryError(f"{path}: not a JSON list of chargers")
    chargers: dict[str, Charger] = {}
    for number, entry in enumerate(entries, 1):
        where = f"{path}, charger {number}"
        if not isinstance(entry, dict) or set(entry) - {"charger_id", "substation", "phases", "max_current_a",
                                                        "password", "fleet", "grid_phase", "circuit",
                                                        "phase_switching"}:  # fmt: skip
            raise RegistryError(f"{where}: an object of charger_id, substation, phases, max_current_a, password, "
                                "grid_phase, circuit, phase_switching")  # fmt: skip
        charger_id, substation = entry.get("charger_id"), entry.get("substation")
        if not is_charger_id(charger_id) or charger_id in chargers:
            raise RegistryError(f"{where}: charger_id must be 1-48 letters, digits and . _ : -, and unique")
        if not is_substation_name(substation) or substation not in substations:
            raise RegistryError(f"{where}: substation must be one of SUBSTATIONS ({', '.join(substations)})")
        phases, current = entry.get("phases", 3), entry.get("max_current_a", 32.0)
        if phases not in (1, 3) or not isinstance(current, int | float) or not MIN_CURRENT_A <= current <= 500:
            raise RegistryError(f"{where}: phases 1 or 3, max_current_a from 6 to 500")
        password = entry.get("password")
        if password is not None and (not isinstance(password, str) or not 16 <= len(password) <= 40):
            raise RegistryError(f"{where}: a password is 16 to 40 characters (OCPP's rule)")
        grid_phase = entry.get("grid_phase", GridPhase.L1.value)
        if grid_phase not in GRID_PHASES:
            raise RegistryError(f"{where}: grid_phase (where its L1 is wired) is L1, L2 or L3")
        circuit = entry.get("circuit")
        if circuit is not None and (not isinstance(circuit, str) or not CIRCUIT_PATTERN.fullmatch(circuit)):
            raise RegistryError(f"{where}: circuit must be 1-48 letters, digits and . _ : - (not first)")
        switching = entry.get("phase_switching", False)
        if not isinstance(switching, bool):
            raise RegistryError(f"{where}: phase_switching is true or false")
        assert isinstance(charger_id, str) and isinstance(substation, str)  # both were checked above
        chargers[charger_id] = Charger(charger_id, substation, phases, float(current), password,
                                       bool(entry.get("fleet", False)), GridPhase(grid_phase), circuit,
                                       switching)  # fmt: skip
    return chargers
