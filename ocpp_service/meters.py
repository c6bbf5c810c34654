"""Reading OCPP meter values (1.6 and 2.0.1, as the library hands them over: snake_case dicts) into what the
substation takes: power drawn, the energy register, currents per phase. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

POWER = "Power.Active.Import"
ENERGY = "Energy.Active.Import.Register"
CURRENT = "Current.Import"
# A phase carrying more than this is one the car draws on (evcc's minActiveCurrent is the same 1 A).
ACTIVE_A = 1.0
LINES = ("L1", "L2", "L3")
# A sampled value without a measurand is the energy register, in Wh (OCPP's default in both versions).
UNIT_FACTORS = {"W": 1.0, "kW": 1000.0, "Wh": 1.0, "kWh": 1000.0, "A": 1.0}


@dataclass
class Reading:
    power_w: float | None = None
    energy_wh: float | None = None
    current_a: dict[str, float] = field(default_factory=dict)  # by phase: L1, L2, L3

    def phases_drawn(self) -> int | None:
        """How many phases the car draws on, by the currents; None unless all three phases' currents were sent
        (a meter that reports L1 alone says nothing of the others) and at least one carries current."""
        if not all(line in self.current_a for line in LINES):
            return None
        return sum(self.current_a[line] > ACTIVE_A for line in LINES) or None


def read_meter_values(meter_values: list[dict]) -> Reading:
    """The latest of each measurand over `meter_values` (in the order sent). Values that are not numbers, or
    in units not understood, are left out rather than guessed."""
    reading = Reading()
    for meter_value in meter_values or []:
        for sampled in meter_value.get("sampled_value") or []:
            measurand = sampled.get("measurand") or ENERGY
            unit, multiplier = _unit(sampled)
            value = _number(sampled.get("value"))
            factor = UNIT_FACTORS.get(unit or ("Wh" if measurand == ENERGY else "W" if measurand == POWER else "A"))
            if value is None or factor is None:
                continue
            value = value * factor * 10**multiplier
            if measurand == POWER and not sampled.get("phase"):
                reading.power_w = value
            elif measurand == ENERGY and not sampled.get("phase"):
                reading.energy_wh = value
            elif measurand == CURRENT and sampled.get("phase"):
                reading.current_a[str(sampled["phase"])[:2]] = value
    return reading


def _unit(sampled: dict) -> tuple[str | None, int]:
    if "unit_of_measure" in sampled:  # 2.0.1
        unit = sampled["unit_of_measure"] or {}
        return unit.get("unit"), int(unit.get("multiplier", 0) or 0)
    return sampled.get("unit"), 0  # 1.6


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        return float(value)
    if isinstance(value, str):  # 1.6 sends values as strings
        try:
            return float(value)
        except ValueError:
            return None
    return None
