"""Sums over a substation's sessions, kept as sessions change, so that no answer walks them all."""

from __future__ import annotations

from grid_common.protocol import PRIORITIES, SessionState
from substation_service.circuits import BASE_LIMITS, CircuitTree
from substation_service.sessions import Session


class Totals:
    def __init__(self, circuits: CircuitTree | None = None) -> None:
        self.circuits = circuits or CircuitTree()
        self.reset()

    def reset(self) -> None:
        """Every sum exactly 0: with no session left, float drift does not outlive the sessions."""
        self.ev_power_kw = 0.0  # allocated to started sessions
        self.committed_kw = 0.0  # what admission counts for started sessions (their minimums, or maxima)
        self.max_sum_kw = 0.0  # the maxima of started sessions
        # The same three, on each phase (kW): what each session puts there (phases.py).
        self.ev_phase_kw = [0.0, 0.0, 0.0]
        self.committed_phase_kw = [0.0, 0.0, 0.0]
        self.max_phase_kw = [0.0, 0.0, 0.0]
        # Allocated, and counted by admission, on each circuit limit (circuits.py, in the tree's order).
        self.ev_circuit_kw = [0.0] * len(self.circuits.limits)
        self.committed_circuit_kw = [0.0] * len(self.circuits.limits)
        self.queued_max_kw = 0.0  # the maxima of queued ones
        # Sessions, started or queued, on one phase or on a circuit: while there are none, one limit binds all.
        self.uneven = 0
        self.paused = 0
        self.excess_kw = [0.0] * len(PRIORITIES)  # per priority: charging sessions' power above their minimum
        self.charging = [0] * len(PRIORITIES)  # per priority: charging sessions

    def add(self, session: Session, needed_kw: float, sign: int = +1) -> None:
        """A session counted in (+1), or out (-1), in its state now; `needed_kw` is what admission counts."""
        if (session.phases != 3 or session.circuit is not None) and (
            session.state.started or session.state == SessionState.QUEUED
        ):
            self.uneven += sign
        if session.state.started:
            self.ev_power_kw += sign * session.allocated_kw
            self.committed_kw += sign * needed_kw
            self.max_sum_kw += sign * session.max_kw
            for phase, weight in enumerate(session.weights):
                if weight:
                    self.ev_phase_kw[phase] += sign * weight * session.allocated_kw
                    self.committed_phase_kw[phase] += sign * weight * needed_kw
                    self.max_phase_kw[phase] += sign * weight * session.max_kw
            if session.circuit is not None:
                for index, weight in self.circuits.counts(session.circuit, session.weights):
                    self.ev_circuit_kw[index - BASE_LIMITS] += sign * weight * session.allocated_kw
                    self.committed_circuit_kw[index - BASE_LIMITS] += sign * weight * needed_kw
            if session.state == SessionState.CHARGING:
                self.excess_kw[session.priority] += sign * (session.allocated_kw - session.min_kw)
                self.charging[session.priority] += sign
            else:
                self.paused += sign
        elif session.state == SessionState.QUEUED:
            self.queued_max_kw += sign * session.max_kw

    def change_power(self, session: Session, delta_kw: float) -> None:
        """A charging session that goes on charging, at `delta_kw` more (or less)."""
        self.ev_power_kw += delta_kw
        self.excess_kw[session.priority] += delta_kw
        weights, ev = session.weights, self.ev_phase_kw  # unrolled: this runs for every session at every step
        ev[0] += weights[0] * delta_kw
        ev[1] += weights[1] * delta_kw
        ev[2] += weights[2] * delta_kw
        if session.circuit is not None:
            for index, weight in self.circuits.counts(session.circuit, session.weights):
                self.ev_circuit_kw[index - BASE_LIMITS] += weight * delta_kw
