"""What sessions on chargers add to the sums a substation checks capacity against, kept as they change rather
than walked at every use: what silent chargers may draw on their own (their default profiles), and how far
what is counted of their power stands from their limits (meter.py's rules).

Each session's part is a function of time that changes only at moments known in advance (its meter goes
stale, its car's time to follow a lower limit runs out) or when the session itself changes (a reading, a new
limit, a start or an end; the book says so with `touch`). So the parts are kept with the moment each next
changes, in a heap, and the sums move by the differences. Walking 5 000 chargers took about 5 ms, several
times per admission: with a fleet connecting, admissions alone outgrew a core.

Pure: no clock but the moments it is asked about. The sums are exact for moments at or after the latest one
asked about, which is how a substation asks (its moments never run back); an earlier moment is answered by a
walk (`walk`), which is also the oracle the tests hold the sums to.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

from substation_service.circuits import BASE_LIMITS, CircuitTree
from substation_service.meter import MeterSettings, counted_kw

if TYPE_CHECKING:
    from substation_service.sessions import Session

Phases = list[float]  # L1, L2, L3
# After this many changes of the sums, they are added up anew from the parts: float drift stays far below the
# tolerance capacity is checked with.
RESUM_EVERY = 100_000


def flips_at(since: float, span: float) -> float:
    """The first moment t with `t - since >= span`: where meter.py's tests (`now - read_at < stale_s`, `now -
    lowered_at < follow_s`) flip. `since + span` may be a float step off it either way."""
    moment = since + span
    while moment - since < span:
        moment = math.nextafter(moment, math.inf)
    while math.nextafter(moment, -math.inf) - since >= span:
        moment = math.nextafter(moment, -math.inf)
    return moment


def part(session: Session, moment: float, settings: MeterSettings) -> tuple[float, float, float]:
    """A session's part at `moment`: what its charger may draw on its own while its meter is silent, how far
    what is counted of its power stands above (or below) its limit, and until when both hold (math.inf: until
    the session changes)."""
    meter = session.meter
    fresh = meter.power_kw is not None and moment - meter.read_at < settings.stale_s
    if not fresh:
        return session.failsafe_kw, max(0.0, session.failsafe_kw - session.allocated_kw), math.inf
    beyond = counted_kw(session, moment, settings) - (session.allocated_kw if session.started else 0.0)
    until = flips_at(meter.read_at, settings.stale_s)
    if moment - meter.lowered_at < settings.follow_s:
        until = min(until, flips_at(meter.lowered_at, settings.follow_s))
    # Never at or before `moment`: a part that still holds now is looked at again next time at the latest.
    return 0.0, beyond, max(until, math.nextafter(moment, math.inf))


def walk(sessions: Mapping[str, Session], moment: float, settings: MeterSettings) -> tuple[float, float]:
    """Both sums at `moment`, from every session: silent chargers' defaults, and counted power beyond limits."""
    silent = beyond = 0.0
    for session in sessions.values():
        session_silent, session_beyond, _ = part(session, moment, settings)
        silent += session_silent
        beyond += session_beyond
    return silent, beyond


def walk_phases(sessions: Mapping[str, Session], moment: float, settings: MeterSettings) -> tuple[Phases, Phases]:
    """Both sums at `moment` on each phase (each session's part spread as its car draws: phases.py)."""
    silent, beyond = [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]
    for session in sessions.values():
        session_silent, session_beyond, _ = part(session, moment, settings)
        for phase, weight in enumerate(session.draw_weights):
            silent[phase] += weight * session_silent
            beyond[phase] += weight * session_beyond
    return silent, beyond


def walk_circuits(
    sessions: Mapping[str, Session], moment: float, settings: MeterSettings, circuits: CircuitTree
) -> tuple[list[float], list[float]]:
    """Both sums at `moment` on each circuit limit (circuits.py, in the tree's order)."""
    silent, beyond = [0.0] * len(circuits.limits), [0.0] * len(circuits.limits)
    for session in sessions.values():
        session_silent, session_beyond, _ = part(session, moment, settings)
        for index, weight in circuits.counts(session.circuit, session.draw_weights):
            silent[index - BASE_LIMITS] += weight * session_silent
            beyond[index - BASE_LIMITS] += weight * session_beyond
    return silent, beyond


Counts = tuple[tuple[int, float], ...]


class ChargerDraws:
    def __init__(self, settings: MeterSettings, circuits: CircuitTree | None = None) -> None:
        self.settings = settings
        self.circuits = circuits or CircuitTree()
        # session id: (silent kW, beyond its limit kW, its share on each phase, its circuit limits' counts)
        self._parts: dict[str, tuple[float, float, tuple[float, float, float], Counts]] = {}
        self._until: dict[str, float] = {}  # session id: when its part changes, for those whose part will
        self._due: list[tuple[float, str]] = []  # (until, session id), a heap; entries made stale are skipped
        self._touched: set[str] = set()
        self._moment = -math.inf  # the latest moment asked about
        self._changes = 0
        self._silent_kw = 0.0
        self._beyond_kw = 0.0
        self._silent_phase_kw = [0.0, 0.0, 0.0]
        self._beyond_phase_kw = [0.0, 0.0, 0.0]
        self._silent_circuit_kw = [0.0] * len(self.circuits.limits)
        self._beyond_circuit_kw = [0.0] * len(self.circuits.limits)

    def touch(self, session: Session) -> None:
        """The session changed (reading, limit, state, start or end): its part is made anew when next asked."""
        self._touched.add(session.session_id)

    def at(self, moment: float, on_chargers: Mapping[str, Session]) -> tuple[float, float]:
        """What silent chargers may draw on their own at `moment`, and how far what is counted of sessions' power
        stands from their limits; `on_chargers`: the sessions on chargers now, queued or started."""
        if moment < self._moment:
            return walk(on_chargers, moment, self.settings)
        self._moment = moment
        due, touched = self._due, self._touched
        while due and due[0][0] <= moment:
            _, key = heapq.heappop(due)
            touched.add(key)
        for key in touched:
            self._renew(key, on_chargers.get(key), moment)
        touched.clear()
        if not self._parts:
            self._silent_kw = self._beyond_kw = 0.0  # nothing left: exactly nothing
            self._silent_phase_kw, self._beyond_phase_kw = [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]
            self._silent_circuit_kw = [0.0] * len(self.circuits.limits)
            self._beyond_circuit_kw = [0.0] * len(self.circuits.limits)
        elif self._changes >= RESUM_EVERY or len(due) > 2 * len(self._until) + 64:
            self._resum()
        return self._silent_kw, self._beyond_kw

    def on_phases(self, moment: float, on_chargers: Mapping[str, Session]) -> tuple[Phases, Phases]:
        """The same two sums (`at`) on each phase."""
        if moment < self._moment:
            return walk_phases(on_chargers, moment, self.settings)
        self.at(moment, on_chargers)
        return list(self._silent_phase_kw), list(self._beyond_phase_kw)

    def on_circuits(self, moment: float, on_chargers: Mapping[str, Session]) -> tuple[list[float], list[float]]:
        """The same two sums (`at`) on each circuit limit (circuits.py, in the tree's order)."""
        if moment < self._moment:
            return walk_circuits(on_chargers, moment, self.settings, self.circuits)
        self.at(moment, on_chargers)
        return list(self._silent_circuit_kw), list(self._beyond_circuit_kw)

    def _renew(self, key: str, session: Session | None, moment: float) -> None:
        old_silent, old_beyond, old_weights, old_counts = self._parts.pop(key, (0.0, 0.0, (0.0, 0.0, 0.0), ()))
        self._until.pop(key, None)
        silent = beyond = 0.0
        weights, counts = old_weights, old_counts
        if session is not None:
            silent, beyond, until = part(session, moment, self.settings)
            weights = session.draw_weights
            counts = self.circuits.counts(session.circuit, weights)
            self._parts[key] = (silent, beyond, weights, counts)
            if until < math.inf:
                self._until[key] = until
                heapq.heappush(self._due, (until, key))
        self._silent_kw += silent - old_silent
        self._beyond_kw += beyond - old_beyond
        for phase in range(3):
            self._silent_phase_kw[phase] += weights[phase] * silent - old_weights[phase] * old_silent
            self._beyond_phase_kw[phase] += weights[phase] * beyond - old_weights[phase] * old_beyond
        for index, weight in old_counts:
            self._silent_circuit_kw[index - BASE_LIMITS] -= weight * old_silent
            self._beyond_circuit_kw[index - BASE_LIMITS] -= weight * old_beyond
        for index, weight in counts:
            self._silent_circuit_kw[index - BASE_LIMITS] += weight * silent
            self._beyond_circuit_kw[index - BASE_LIMITS] += weight * beyond
        self._changes += 1

    def _resum(self) -> None:
        """The sums added up anew from the parts, and the heap rebuilt from the live moments."""
        parts = self._parts.values()
        self._silent_kw = math.fsum(silent for silent, _, _, _ in parts)
        self._beyond_kw = math.fsum(beyond for _, beyond, _, _ in parts)
        self._silent_phase_kw = [math.fsum(w[phase] * silent for silent, _, w, _ in parts) for phase in range(3)]
        self._beyond_phase_kw = [math.fsum(w[phase] * beyond for _, beyond, w, _ in parts) for phase in range(3)]
        silent_circuit: list[list[float]] = [[] for _ in self.circuits.limits]
        beyond_circuit: list[list[float]] = [[] for _ in self.circuits.limits]
        for silent, beyond, _, counts in parts:
            for index, weight in counts:
                silent_circuit[index - BASE_LIMITS].append(weight * silent)
                beyond_circuit[index - BASE_LIMITS].append(weight * beyond)
        self._silent_circuit_kw = [math.fsum(values) for values in silent_circuit]
        self._beyond_circuit_kw = [math.fsum(values) for values in beyond_circuit]
        self._due = [(until, key) for key, until in self._until.items()]
        heapq.heapify(self._due)
        self._changes = 0
