"""Circuits inside a substation: a tree of feeders and circuits, each with a current limit a phase or a power
limit, as evcc's circuits are. A charger hangs on one circuit (the OCPP registry says which); its sessions count
against that circuit and every circuit above it, and the substation's allocator shares under all of their limits
at once (filling.py), as it does under the substation's own total and phases. Pure.

Limits are numbered after the substation's own four (0: the total, 1 to 3: L1 to L3): a circuit with a current
limit adds three (one a phase, in kW a phase: A x V / 1000), one with a power limit adds one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from grid_common.protocol import NOMINAL_VOLTAGE_V
from grid_common.protocol.names import CIRCUIT_PATTERN

# The substation's own limits come first (policy.Headroom.capacities): the total, then L1, L2, L3.
BASE_LIMITS = 4
MAX_CIRCUITS = 1000


class CircuitError(ValueError):
    """A tree of circuits that cannot be: the message names what is wrong."""


@dataclass(frozen=True)
class Circuit:
    name: str
    parent: str | None = None
    max_current_a: float | None = None  # on each phase
    max_power_kw: float | None = None  # in total


@dataclass(frozen=True)
class CircuitLimit:
    """One limit of a circuit: on `phase` (0 to 2) for a current limit, or on its total (None)."""

    circuit: str
    phase: int | None
    capacity_kw: float


class CircuitTree:
    def __init__(self, circuits: Sequence[Circuit] = (), voltage_v: float = NOMINAL_VOLTAGE_V) -> None:
        self.circuits = {circuit.name: circuit for circuit in circuits}
        if len(self.circuits) != len(circuits):
            raise CircuitError("every circuit's name must be its own")
        for circuit in circuits:
            if circuit.parent is not None and circuit.parent not in self.circuits:
                raise CircuitError(f"circuit {circuit.name!r}: its parent {circuit.parent!r} is not a circuit")
            if (circuit.max_current_a is None) == (circuit.max_power_kw is None):
                raise CircuitError(f"circuit {circuit.name!r}: give max_current_a or max_power_kw (one of them)")
        self._chains = {name: self._chain_of(name) for name in self.circuits}
        # (circuit, weights) -> counts: a few dozen kinds of car on a tree, asked at every step for every car.
        self._counts: dict[tuple[str, tuple[float, ...]], tuple[tuple[int, float], ...]] = {}
        self._all_counts: dict[tuple[str, tuple[float, ...]], tuple[tuple[int, float], ...]] = {}
        self.limits: list[CircuitLimit] = []
        self._indices: dict[str, list[tuple[int, int | None]]] = {}
        for circuit in circuits:
            indices = self._indices[circuit.name] = []
            if circuit.max_current_a is not None:
                for phase in range(3):
                    indices.append((BASE_LIMITS + len(self.limits), phase))
                    self.limits.append(CircuitLimit(circuit.name, phase, circuit.max_current_a * voltage_v / 1000))
            else:
                assert circuit.max_power_kw is not None
                indices.append((BASE_LIMITS + len(self.limits), None))
                self.limits.append(CircuitLimit(circuit.name, None, circuit.max_power_kw))

    def __bool__(self) -> bool:
        return bool(self.circuits)

    def __contains__(self, name: object) -> bool:
        return name in self.circuits

    def _chain_of(self, name: str) -> tuple[str, ...]:
        chain: list[str] = []
        current: str | None = name
        while current is not None:
            if current in chain:
                raise CircuitError(f"circuit {name!r}: its parents go round in a loop ({' > '.join(chain)})")
            chain.append(current)
            current = self.circuits[current].parent
        return tuple(chain)

    def chain(self, name: str) -> tuple[str, ...]:
        """`name` and every circuit above it, nearest first."""
        return self._chains[name]

    def counts(self, circuit: str | None, weights: Sequence[float]) -> tuple[tuple[int, float], ...]:
        """The circuit limits a session on `circuit` counts against, with its weight on each (its share of its
        power on the limit's phase, or 1 on a power limit)."""
        if circuit is None:
            return ()
        key = (circuit, tuple(weights))
        known = self._counts.get(key)
        if known is not None:
            return known
        counts: list[tuple[int, float]] = []
        for name in self._chains[circuit]:
            for index, phase in self._indices[name]:
                weight = 1.0 if phase is None else weights[phase]
                if weight:
                    counts.append((index, weight))
        known = self._counts[key] = tuple(counts)
        return known

    def all_counts(self, circuit: str | None, weights: tuple[float, float, float]) -> tuple[tuple[int, float], ...]:
        """Every limit a session counts against, as filling.py takes them: the substation's total (0), the phases
        it draws on (1 to 3), then its circuits' (counts). Kept: a few dozen kinds of car, asked for every car at
        every step."""
        key = ("" if circuit is None else circuit, weights)
        known = self._all_counts.get(key)
        if known is None:
            base = ((0, 1.0), *((1 + phase, weight) for phase, weight in enumerate(weights) if weight))
            known = self._all_counts[key] = (*base, *self.counts(circuit, weights))
        return known

    def capacities(self) -> list[float]:
        return [limit.capacity_kw for limit in self.limits]

    def loads(self, members: Iterable[tuple[str | None, Sequence[float], float]]) -> list[float]:
        """What `members` (circuit, weights, kW) put on each circuit limit, in the limits' order."""
        used = [0.0] * len(self.limits)
        for circuit, weights, kw in members:
            for index, weight in self.counts(circuit, weights):
                used[index - BASE_LIMITS] += weight * kw
        return used


def parse_circuits(text: str, voltage_v: float) -> CircuitTree:
    """CIRCUITS: a JSON list of `{"name", "parent"?, "max_current_a" | "max_power_kw"}`; CircuitError naming
    what is wrong."""
    try:
        entries = json.loads(text)
    except ValueError as error:
        raise CircuitError(f"not JSON: {error}") from None
    if not isinstance(entries, list) or len(entries) > MAX_CIRCUITS:
        raise CircuitError(f"a JSON list of at most {MAX_CIRCUITS} circuits")
    circuits = []
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, Mapping) or set(entry) - {"name", "parent", "max_current_a", "max_power_kw"}:
            raise CircuitError(f"circuit {number}: an object of name, parent, max_current_a or max_power_kw")
        name, parent = entry.get("name"), entry.get("parent")
        if not isinstance(name, str) or not CIRCUIT_PATTERN.fullmatch(name):
            raise CircuitError(f"circuit {number}: name must be 1-48 letters, digits and . _ : - (not first)")
        if parent is not None and not isinstance(parent, str):
            raise CircuitError(f"circuit {name!r}: parent must be a circuit's name, or absent")
        limits = {}
        for key in ("max_current_a", "max_power_kw"):
            value = entry.get(key)
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1e6:
                    raise CircuitError(f"circuit {name!r}: {key} must be a number above 0")
                limits[key] = float(value)
        circuits.append(Circuit(name, parent, **limits))
    return CircuitTree(circuits, voltage_v)
