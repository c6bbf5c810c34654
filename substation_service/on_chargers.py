"""What a substation does for sessions on chargers (over OCPP): the power capacity is checked against (what
meters measure, what silent chargers may draw on their own), meter readings, and the feed of changes the OCPP
service sends limits down from. A part of Substation (substation.py), kept apart as one concern; the rules for
a single meter are meter.py's."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from grid_common.protocol import (
    MAX_PLANNED_LIMITS,
    ChargerSession,
    MeterReading,
    PlannedLimit,
    SessionReport,
    SessionState,
)
from substation_service.meter import MeterSettings, phases_to_reshape, read

if TYPE_CHECKING:
    from substation_service.background import BackgroundDemand
    from substation_service.book import SessionBook
    from substation_service.counters import Counters
    from substation_service.grid_limits import GridLimits
    from substation_service.journal import JournalWriter
    from substation_service.phases import PhaseSupply
    from substation_service.planning import Plan
    from substation_service.policy import Policy
    from substation_service.sessions import Session


def planned_limits(plan: Plan | None, session: Session, now: float) -> list[PlannedLimit]:
    """The limits ahead in a charging session's plan, after the one in force at `now` (none without a plan)."""
    if plan is None or session.state != SessionState.CHARGING or session.session_id not in plan.power_kw:
        return []
    ahead = [PlannedLimit(start, kw) for start, kw in plan.periods(session.session_id) if start > now]
    return ahead[:MAX_PLANNED_LIMITS]


class OnChargers:
    if TYPE_CHECKING:  # what Substation has, that these methods use
        book: SessionBook
        meters: MeterSettings
        background: BackgroundDemand
        counters: Counters
        journal: JournalWriter
        limits: GridLimits
        supply: PhaseSupply
        policy: Policy
        _feed_changed: threading.Condition
        epoch: str
        _all_at_max: bool

        def _locked(self) -> contextlib.AbstractContextManager[None]: ...

        def _require_sessions(self) -> None: ...
        def _advance(self, now: float) -> float: ...
        def _reallocate(
            self, moment: float, step_s: float | None = None, *, journaled: Session | None = None
        ) -> None: ...
        def _session_report(self, session: Session, now: float, *, estimate: bool = True) -> SessionReport: ...

    @property
    def background_day_peak_kw(self) -> float:
        """The background's highest over a whole day."""
        return self.background.peak_kw * self.background.profile.peak_between(0.0, 24.0)

    def feed_header(self, moment: float) -> tuple[float, float, tuple[float, float, float]]:
        """What the charger feed says of the substation as a whole, for chargers' safe defaults: the lowest of its
        rating and the limits ahead, the background's peak over the day, and how the background splits over
        the phases."""
        split = self.supply.background_split
        return self.limits.lowest_ahead(moment), self.background_day_peak_kw, (split[0], split[1], split[2])

    def _silent_chargers_kw(self, moment: float) -> float:
        """What chargers whose meters are silent may draw on their own (their default profiles), kept apart from
        what is shared: their limits may not reach them, so they may draw that beside whatever they were given
        (a queued car's too: its charger holds it at 0 kW only while it hears so)."""
        return self.book.draws.at(moment, self.book.on_chargers)[0]

    def _silent_chargers_phase_kw(self, moment: float) -> list[float]:
        """The same on each phase."""
        return self.book.draws.on_phases(moment, self.book.on_chargers)[0]

    def counted_phase_kw(self, moment: float) -> list[float]:
        """The EV power capacity is checked against (counted_ev_power_kw), on each phase."""
        beyond = self.book.draws.on_phases(moment, self.book.on_chargers)[1]
        return [ev + extra for ev, extra in zip(self.book.totals.ev_phase_kw, beyond, strict=True)]

    def _phase_room_kw(self, moment: float, background_kw: float) -> tuple[float, ...]:
        """What each phase has left with the EV power counted on it and its share of `background_kw`: below 0, the
        phase is over its third of the rating."""
        third = self.limits.rated_kw / 3
        split = self.supply.background_split
        counted = self.counted_phase_kw(moment)
        return tuple(third - counted[phase] - background_kw * split[phase] for phase in range(3))

    def counted_ev_power_kw(self, moment: float) -> float:
        """The EV power capacity is checked against: the limits, but what metered cars draw where that is known
        (meter.py), and for a silent charger the more of its limit and its default."""
        return self.book.totals.ev_power_kw + self.book.draws.at(moment, self.book.on_chargers)[1]

    def read_meters(self, readings: Iterable[MeterReading], now: float) -> list[str]:
        """What chargers' meters read now: power drawn, and energy since each session started. A session whose
        meter shows its energy delivered completes. The ids of sessions this substation does not hold."""
        with self._locked():
            self._require_sessions()
            now = self._advance(now)
            book, unknown, completed = self.book, [], False
            reshaped: list[Session] = []
            for reading in readings:
                session = book.sessions.get(reading.session_id)
                if session is None:
                    unknown.append(reading.session_id)
                    continue
                if not session.started:
                    book.heard(session, reading.power_kw, now)
                    continue
                drawn_on = None if reading.phases is None else int(reading.phases)
                if read(session, reading.power_kw, now, self.meters, drawn_on):
                    self._all_at_max = False  # capped or uncapped: the next step shares anew
                book.meter(session, reading.energy_kwh, now)
                phases = phases_to_reshape(session, drawn_on, now, self.meters)
                if phases is not None:
                    self._reshape_by_meter(session, phases, now)
                    reshaped.append(session)
                if session.delivered_kwh >= session.energy_kwh:
                    book.finish(session, SessionState.COMPLETED, now)
                    self.counters.completed += 1
                    completed = True
            if reshaped:
                self.journal.write_behind(reshaped)
                self._all_at_max = False  # its bounds moved: the step that follows shares anew, not at the maxima
            if completed or reshaped:
                self._reallocate(now)
            return unknown

    def _reshape_by_meter(self, session: Session, phases: int, moment: float) -> None:
        """Its car draws on `phases` (meter.phases_to_reshape): its session goes there, on its charger's L1 for one.
        Under its charger's default profile (amperes a phase) a car draws on its own phases too, so what it may
        draw on its own scales with them; not a car a switching charger keeps switching, whose default is counted
        on three phases whatever it switched (Session.draw_weights), unscaled."""
        if phases == 1 or not session.switchable:
            session.failsafe_kw *= phases / session.phases
        self.book.reshape(session, phases, session.wired_phase if phases == 1 else None, moment)
        if phases == 1:
            session.switchable = False  # a 1-phase car: nothing for its charger to switch
        self.counters.phase_switches += 1

    def charger_feed(self, since: int, now: float, *, wait_s: float = 0.0, epoch: str | None = None,
                     clock: Callable[[], float] | None = None) -> tuple[int, list[ChargerSession]]:  # fmt: skip
        """Sessions on chargers that changed since change number `since` (0: all there are), and the latest
        change's number: what the OCPP service reads to send limits down. With `wait_s`, a reader of this
        `epoch` that is up to date is answered when the next change comes (or, with none, after `wait_s`):
        long polling, so that a new limit leaves at once rather than at the reader's next poll."""
        with self._locked():
            self._require_sessions()
            self._advance(now)
            if wait_s > 0 and epoch == self.epoch and self.book.change_count <= since:
                self._feed_changed.wait_for(lambda: self.book.change_count > since, timeout=wait_s)
                if clock is not None:
                    now = clock()
            book = self.book
            changed = (book.get(key) for key, number in book.charger_changes.items() if number > since)
            return book.change_count, [
                ChargerSession(
                    s.session_id,
                    s.charger_id,
                    s.transaction_id,
                    s.state,
                    s.allocated_kw,
                    s.phases,
                    planned_limits(self.policy.plan, s, now),
                )
                for s in changed
                if s is not None and s.charger_id is not None
            ]
