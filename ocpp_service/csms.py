"""The central system's state and its loops, whatever the protocol version: every registered charger's link
(connected or not, its transaction, the session it is at the substation, what it was told last), the feeds of
the substations' changes that send limits down, and the meter readings that go up.

Each charger has one sender task: it sends the newest limit only (a change superseded before it went out is
never sent), one call at a time as OCPP wants, and renews the profile before it expires. A handler never waits
for a charger's answer: the library reads that connection's messages one after another, so a handler that
called the charger would wait for an answer it cannot read.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Protocol

from grid_common.protocol import (
    GRID_PHASES,
    MAX_ENERGY_KWH,
    ChargeRequest,
    MeterReading,
    PlannedLimit,
    SessionChange,
    SessionState,
    kw_of,
    new_session_id,
)
from ocpp_service import metrics
from ocpp_service.config import OcppConfig
from ocpp_service.grid_client import GridClient, GridUnavailable
from ocpp_service.limits import Profile, limit_a, limits_ahead, safe_default_a
from ocpp_service.meters import Reading
from ocpp_service.registry import MIN_CURRENT_A, Charger
from ocpp_service.remote_start import (
    ANSWER_MARGIN_S,
    PendingStart,
    admission_limits,
    ask_charger,
    new_pending,
    not_deliverable,
    problem,
    session_of,
)

log = logging.getLogger(__name__)

MAX_READINGS_PER_POST = 64
RETRY_S = 1.0
MAX_RETRY_S = 10.0
# A car that says it needs nothing more: its session is for what it has (a session's energy is more than 0).
MIN_SESSION_KWH = 0.001


class ChargerConnection(Protocol):
    """What the central system asks of a connected charger, in either protocol version."""

    protocol: str

    async def send_profile(self, profile: Profile) -> bool:
        """Whether the charger accepted it; raises on no answer."""
        ...

    async def remote_start(self, id_tag: str, remote_start_id: int) -> bool:
        """Whether the charger accepted to start a transaction for `id_tag`; raises on no answer or a CallError."""
        ...


# Charging needs a car sent before its transaction started (OCPP 2.0.1 may start one once the power path is
# closed, after ISO 15118's parameters are known) belong to the transaction that starts within this long.
EARLY_NEEDS_S = 60.0


@dataclass(frozen=True)
class ChargingNeeds:
    """What a car says it needs (OCPP 2.0.1 NotifyEVChargingNeeds, from ISO 15118): the energy still wanted
    when it said so, and when its driver leaves (wall seconds); None: not said."""

    energy_wh: float | None
    departure_at: float | None
    said_at: float = 0.0  # monotonic


@dataclass
class Transaction:
    transaction_id: str
    session_id: str
    meter_start_wh: float | None = None
    id_tag: str = ""
    admitted: bool = False
    ended: bool = False
    # The charger has the answer that started it: only then can a profile for it be understood (a 1.6
    # charger learns the transaction's id from that answer).
    announced: bool = False
    start: PendingStart | None = None  # the remote start it answers, whose client's request it serves
    # The default (A) its session was admitted with: the substation counts that much for the charger while its
    # meter is silent, so its default is never raised above it while the transaction lasts (a grid limit lifting).
    failsafe_a: float | None = None
    phases: int | None = None  # what its session was admitted on: the charger's, or fewer (a 1-phase car)
    register_wh: float | None = None  # the meter's register as last read
    # Its car's needs as a change of its session (once said), and the change its session has been told.
    needs: SessionChange | None = None
    needs_told: SessionChange | None = None


@dataclass
class Link:
    """One registered charger, as the central system knows it."""

    charger: Charger
    connection: ChargerConnection | None = None
    transaction: Transaction | None = None
    allocated_kw: float = 0.0  # what its session may draw now (0: queued, paused, or no session yet)
    state: SessionState | None = None
    sent: Profile | None = None  # the TxProfile it accepted last
    default_sent: float | None = None  # the default it accepted last, in A
    measured_kw: float | None = None
    changed_at: float = 0.0  # monotonic: when the newest limit was learned
    pending_start: PendingStart | None = None  # a remote start it accepted, until its transaction starts
    early_needs: ChargingNeeds | None = None  # said with no transaction yet: for the one about to start
    ahead: list[PlannedLimit] = field(default_factory=list)  # its session's planned limits after the one now
    one_period: bool = False  # it refused a schedule of several periods: it is sent one (until it reconnects)
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def connected(self) -> bool:
        return self.connection is not None

    @property
    def protocol(self) -> str | None:
        return None if self.connection is None else self.connection.protocol


@dataclass
class SubstationFeed:
    epoch: str = ""
    cursor: int = 0
    capacity_kw: float | None = None
    background_peak_kw: float = 0.0
    background_shares: tuple[float, ...] = (1 / 3, 1 / 3, 1 / 3)  # the background's share of L1, L2, L3
    read: bool = False  # read once at least: what it holds is known


class Csms:
    def __init__(self, config: OcppConfig, registry: dict[str, Charger], grid: GridClient) -> None:
        self.config = config
        self.grid = grid
        self.links = {charger_id: Link(charger) for charger_id, charger in registry.items()}
        self.feeds = {name: SubstationFeed() for name, _ in config.substations}
        # How many of each substation's chargers draw on L1, L2, L3 under their defaults (a 3-phase charger on all
        # three, a 1-phase one on its wired phase): every phase must hold them all at once.
        self.on_phases = {name: [0, 0, 0] for name in self.feeds}
        for charger in registry.values():
            counts = self.on_phases.get(charger.substation)
            if counts is not None:
                for phase in range(3) if charger.phases == 3 else (GRID_PHASES.index(charger.grid_phase),):
                    counts[phase] += 1
        self.by_session: dict[str, Link] = {}
        self.pending_meters: dict[str, dict[str, MeterReading]] = {name: {} for name in self.feeds}
        self._next_transaction = int(time.time() * 10) % 2**30
        # Sessions on chargers the substations hold for transactions this process did not see start (it
        # restarted): matched when their chargers speak of them again.
        self.orphans: dict[tuple[str, str], str] = {}
        self._tasks: set[asyncio.Task] = set()
        self._senders: dict[str, asyncio.Task] = {}

    # --- state ---------------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        """Every substation's sessions on chargers are known: transactions can be matched after a restart."""
        return all(feed.read for feed in self.feeds.values())

    def default_a(self, link: Link) -> float | None:
        """The charger's safe default, once its substation's capacity is known."""
        feed = self.feeds[link.charger.substation]
        if feed.capacity_kw is None:
            return None
        on_phases = self.on_phases[link.charger.substation]
        return safe_default_a(feed.capacity_kw, feed.background_peak_kw, on_phases, link.charger, self.config.voltage_v,
                              feed.background_shares)  # fmt: skip

    def next_transaction_id(self) -> str:
        """1.6's transaction ids are the central system's to give: integers, never one given before."""
        self._next_transaction += 1
        return str(self._next_transaction)

    # --- what chargers say ---------------------------------------------------------------------------
    def connected(self, charger_id: str, connection: ChargerConnection) -> Link:
        link = self.links[charger_id]
        link.connection = connection
        link.default_sent = None  # a charger that reconnects may have rebooted: its default is sent again
        link.one_period = False  # and may have been updated
        if link.sent is not None:
            link.sent = None  # and its transaction's limit too
        metrics.CONNECTED.labels(connection.protocol).inc()
        self._ensure_sender(link)
        link.wake.set()
        return link

    def disconnected(self, charger_id: str, connection: ChargerConnection) -> None:
        link = self.links[charger_id]
        if link.connection is connection:
            link.connection = None
            metrics.CONNECTED.labels(connection.protocol).dec()

    def transaction_started(self, charger_id: str, transaction_id: str, meter_start_wh: float | None,
                            id_tag: str, phases_used: int | None = None) -> None:  # fmt: skip
        """`phases_used`: what the charger says its car draws on (2.0.1's numberOfPhasesUsed), if it says."""
        link = self.links[charger_id]
        if link.transaction is not None and link.transaction.transaction_id == transaction_id:
            return  # said again (a retry after a lost answer): the same transaction
        if link.transaction is not None and not link.transaction.ended:
            self._end(link)  # a new car: the old transaction's end was never heard
        start = link.pending_start if link.pending_start is not None and link.pending_start.matches(id_tag) else None
        link.pending_start = None
        token = secrets.token_hex(12) if start is None else start.token
        link.transaction = Transaction(transaction_id, new_session_id(link.charger.substation, token),
                                       meter_start_wh, id_tag, start=start)  # fmt: skip
        if phases_used == 1 and link.charger.phases == 3:
            # A 1-phase car on a 3-phase charger: admitted on one phase at once, not after its meter shows it.
            link.transaction.phases = 1
        link.allocated_kw, link.state, link.sent, link.ahead = 0.0, SessionState.QUEUED, None, []
        link.changed_at = time.monotonic()
        self.by_session[link.transaction.session_id] = link
        self._spawn(self._admit(link, link.transaction))
        early, link.early_needs = link.early_needs, None
        if early is not None and time.monotonic() - early.said_at < EARLY_NEEDS_S:
            self.charging_needs(charger_id, early)

    def transaction_announced(self, charger_id: str, transaction_id: str) -> None:
        """The answer that started the transaction has gone out: profiles for it may follow (limit 0 until
        the substation says more: a queued car does not charge)."""
        link = self.links[charger_id]
        if link.transaction is not None and link.transaction.transaction_id == transaction_id:
            link.transaction.announced = True
            link.wake.set()

    def meter(self, charger_id: str, transaction_id: str | None, reading: Reading) -> None:
        link = self.links[charger_id]
        transaction = link.transaction
        if transaction is None or (transaction_id is not None and transaction.transaction_id != transaction_id):
            transaction = self._adopt(link, transaction_id)
            if transaction is None:
                return
        if reading.energy_wh is not None and transaction.meter_start_wh is None:
            transaction.meter_start_wh = reading.energy_wh  # 2.0.1 need not say where the register stood
        if reading.energy_wh is not None:
            transaction.register_wh = reading.energy_wh
        if reading.power_w is None:
            return
        link.measured_kw = reading.power_w / 1000.0
        energy_kwh = None
        if reading.energy_wh is not None and transaction.meter_start_wh is not None:
            energy_kwh = max(0.0, reading.energy_wh - transaction.meter_start_wh) / 1000.0
        if transaction.admitted:
            # On a 3-phase charger, the phases the car draws on (the substation shares by them: meter.py).
            phases = reading.phases_drawn() if link.charger.phases == 3 else None
            self.pending_meters[link.charger.substation][transaction.session_id] = MeterReading(
                transaction.session_id, link.measured_kw, energy_kwh, phases
            )

    def charging_needs(self, charger_id: str, needs: ChargingNeeds) -> None:
        """The car on the charger says what it needs: its session is told (a new plan, and the limits ahead
        follow as a profile). Said before its transaction started: kept for the one that starts next."""
        link = self.links[charger_id]
        transaction = link.transaction
        if transaction is None or transaction.ended:
            link.early_needs = needs
            return
        telling = transaction.needs is not None and transaction.needs is not transaction.needs_told
        transaction.needs = self._session_change(transaction, needs)
        if not telling:
            self._spawn(self._tell_needs(link, transaction))

    def transaction_ended(self, charger_id: str, transaction_id: str | None, reading: Reading) -> None:
        link = self.links[charger_id]
        if link.transaction is None or (
            transaction_id is not None and link.transaction.transaction_id != transaction_id
        ):
            return
        self.meter(charger_id, transaction_id, reading)
        self._end(link)

    def _end(self, link: Link) -> None:
        transaction = link.transaction
        assert transaction is not None
        transaction.ended = True
        link.transaction, link.allocated_kw, link.state, link.sent, link.measured_kw = None, 0.0, None, None, None
        # Its last reading (the stop's) goes with the stop, not after it: the session's energy is the meter's.
        final = self.pending_meters[link.charger.substation].pop(transaction.session_id, None)
        self._spawn(self._stop(link.charger.substation, transaction, final))

    def _adopt(self, link: Link, transaction_id: str | None) -> Transaction | None:
        """A transaction this process did not see start (it restarted, or the charger reconnected): the
        substation's feed named its session, kept in `orphans` until the charger is heard."""
        if transaction_id is None:
            return None
        session_id = self.orphans.pop((link.charger.charger_id, transaction_id), None)
        if session_id is None:
            return None
        link.transaction = Transaction(transaction_id, session_id, None, admitted=True, announced=True)
        self.by_session[session_id] = link
        link.sent = None
        link.wake.set()
        return link.transaction

    async def remote_start(self, charger_id: str, request: ChargeRequest, token: str, by: float) -> tuple[int, dict]:
        """A client's session at this charger, `<substation>.<token>`: (status, the session or a problem), by
        `by` (wall time). The same token again is the same start."""
        link = self.links.get(charger_id)
        if link is None:
            return problem(HTTPStatus.NOT_FOUND, "Not Found", f"No charger {charger_id} is registered here.")
        refused = not_deliverable(link.charger, request, self.config.voltage_v)
        if refused is not None:
            return refused
        transaction, pending = link.transaction, link.pending_start
        if transaction is not None and not transaction.ended:
            if transaction.start is not None and transaction.start.token == token:
                return await session_of(transaction.start, charger_id, by)  # started already: that session
            return problem(HTTPStatus.CONFLICT, "Charger busy", f"Charger {charger_id} is charging a car "
                           f"(transaction {transaction.transaction_id}): nothing was started.")  # fmt: skip
        if pending is not None and not pending.expired:
            if pending.token == token:
                return await session_of(pending, charger_id, by)
            return problem(HTTPStatus.CONFLICT, "Charger busy", f"Charger {charger_id} is being started for "
                           "another request: nothing was started.")  # fmt: skip
        if link.connection is None:
            return problem(HTTPStatus.CONFLICT, "Charger offline", f"Charger {charger_id} is not connected to "
                           "this OCPP service: nothing was started.")  # fmt: skip
        pending = link.pending_start = new_pending(request, token, link.charger, self.config.remote_start_timeout_s)
        answer = await ask_charger(link.connection, pending, charger_id, by - time.time() - ANSWER_MARGIN_S)
        if answer is None:
            return await session_of(pending, charger_id, by)
        if answer[0] != HTTPStatus.GATEWAY_TIMEOUT and link.pending_start is pending:
            link.pending_start = None  # refused: nothing will start under it
        return answer

    # --- the substations -----------------------------------------------------------------------------
    async def _admit(self, link: Link, transaction: Transaction) -> None:
        """The session for a transaction, at the charger's own substation: asked again (the same session id:
        the same session) until it is known to be there or the transaction ends."""
        charger = link.charger
        voltage = self.config.voltage_v
        phases = transaction.phases or charger.phases  # fewer when the charger said its car draws on fewer
        vehicle = "".join(c for c in transaction.id_tag if c.isalnum() or c in "._:-")[:64].lstrip("._:-")
        body = {
            "session_id": transaction.session_id,
            "vehicle_id": vehicle or f"EV-{charger.charger_id}"[:64],
            "energy_kwh": self.config.session_energy_kwh,
            "max_power_kw": round(kw_of(charger.max_current_a, phases, voltage), 3),
            "min_power_kw": round(kw_of(MIN_CURRENT_A, phases, voltage), 3),
            "wait": True,
            "charger_id": charger.charger_id,
            "transaction_id": transaction.transaction_id,
            "phases": phases,
            "grid_phase": charger.grid_phase.value,
        }
        if charger.circuit is not None:
            body["circuit"] = charger.circuit
        if charger.phase_switching and phases == 3:
            body["phase_switching"] = True
        if transaction.start is not None:  # the client's request, as far as the charger can serve it
            request = transaction.start.request
            body["max_power_kw"], body["min_power_kw"], phases = admission_limits(request, charger, voltage)
            body.update(vehicle_id=request.vehicle_id, energy_kwh=request.energy_kwh, priority=request.priority)
            if request.departure_time is not None:
                body["departure_time"] = request.departure_time.isoformat()
            body["phases"] = phases
        transaction.phases = phases
        transaction.failsafe_a = self.default_a(link) or charger.max_current_a
        # Under its charger's default (amperes a phase) the car draws on its own phases.
        body["failsafe_kw"] = kw_of(transaction.failsafe_a, phases, voltage)
        pause = RETRY_S
        while not transaction.ended:
            try:
                status, answer = await self.grid.admit(charger.substation, body)
            except GridUnavailable as error:
                log.warning("admission of %s at %s: no answer (%s); asking again", transaction.session_id,
                            charger.substation, error)  # fmt: skip
                await asyncio.sleep(pause * random.uniform(0.5, 1.0))  # apart, not all at once
                pause = min(pause * 2, MAX_RETRY_S)
                continue
            if status in (200, 201, 202):
                transaction.admitted = True
                session = answer.get("session", {})
                start = transaction.start
                if start is not None and not start.admitted.done():
                    start.admitted.set_result((202 if session.get("state") == SessionState.QUEUED else 201, session))
                if link.transaction is transaction:
                    self._set_limit(link, float(session.get("allocated_kw", 0.0)), SessionState(session["state"]))
                return
            retry = float(answer.get("retry_after", 0) or 0) if status == 409 else 0
            log.warning("admission of %s at %s: %s %s", transaction.session_id, charger.substation, status,
                        answer.get("detail"))  # fmt: skip
            await asyncio.sleep(max(pause, min(retry, MAX_RETRY_S)) * random.uniform(0.5, 1.0))
            pause = min(pause * 2, MAX_RETRY_S)

    async def _tell_needs(self, link: Link, transaction: Transaction) -> None:
        """Tell the transaction's session what its car said it needs, the latest of it, until the substation
        has it or the transaction ends."""
        pause = RETRY_S
        while not transaction.ended and transaction.needs is not transaction.needs_told:
            if not transaction.admitted:
                await asyncio.sleep(RETRY_S / 4)  # its session is on its way: it is told once it is there
                continue
            needs = transaction.needs
            assert needs is not None
            try:
                status, answer = await self.grid.amend(transaction.session_id, link.charger.substation, needs)
            except GridUnavailable as error:
                log.info("needs of %s: no answer (%s); telling again", transaction.session_id, error)
                status, answer = 0, {}
            if status == 200 or status in (404, 409, 422):  # told, or never to be: it ended, or cannot be said
                if status != 200:
                    log.warning("needs of %s: %s %s", transaction.session_id, status, answer.get("detail"))
                transaction.needs_told = needs
                continue
            await asyncio.sleep(pause * random.uniform(0.5, 1.0))
            pause = min(pause * 2, MAX_RETRY_S)

    @staticmethod
    def _session_change(transaction: Transaction, needs: ChargingNeeds) -> SessionChange:
        """A car says the energy it still wants; a session is for its energy in all: what the meter counted
        by then, and that."""
        energy_kwh = None
        if needs.energy_wh is not None:
            so_far_wh = 0.0
            if transaction.register_wh is not None and transaction.meter_start_wh is not None:
                so_far_wh = max(0.0, transaction.register_wh - transaction.meter_start_wh)
            energy_kwh = min(MAX_ENERGY_KWH, max(MIN_SESSION_KWH, (so_far_wh + needs.energy_wh) / 1000.0))
        departure = None if needs.departure_at is None else datetime.fromtimestamp(needs.departure_at, UTC)
        return SessionChange(energy_kwh, needs.departure_at is not None, departure)

    async def _stop(self, substation: str, transaction: Transaction, final: MeterReading | None = None) -> None:
        for _ in range(30):
            if not transaction.admitted:
                await asyncio.sleep(RETRY_S)  # its admission may still be on its way: stop what it makes
                continue
            try:
                if final is not None:
                    await self.grid.meters(substation, [final])
                    final = None
                status, _ = await self.grid.stop(transaction.session_id, substation)
            except GridUnavailable:
                await asyncio.sleep(RETRY_S)
                continue
            if status in (200, 404):
                self.by_session.pop(transaction.session_id, None)
                return
            await asyncio.sleep(RETRY_S)

    async def follow_feed(self, substation: str) -> None:
        """Read the substation's changes, forever: every limit that changed goes to its charger's sender."""
        feed = self.feeds[substation]
        while True:
            try:
                if feed.read:
                    answer = await self.grid.feed(substation, feed.cursor, feed.epoch, self.config.feed_wait_s)
                else:
                    answer = await self.grid.feed(substation, 0)
            except GridUnavailable as error:
                log.debug("feed of %s: %s", substation, error)
                await asyncio.sleep(self.config.feed_interval_s)
                continue
            if feed.read and answer.epoch != feed.epoch:
                feed.read = False  # it restarted: read everything it holds again
                feed.epoch = answer.epoch
                continue
            feed.epoch, feed.cursor = answer.epoch, answer.cursor
            shares = tuple(answer.background_phase_shares)
            if (feed.capacity_kw, feed.background_peak_kw, feed.background_shares) != (
                answer.capacity_kw,
                answer.background_peak_kw,
                shares,
            ):
                feed.capacity_kw, feed.background_peak_kw, feed.background_shares = (
                    answer.capacity_kw,
                    answer.background_peak_kw,
                    shares,
                )
                for link in self.links.values():
                    if link.charger.substation == substation:
                        link.wake.set()  # its safe default may differ
            for session in answer.sessions:
                self._learn(session.session_id, session.charger_id, session.transaction_id, session.state,
                            session.allocated_kw, session.phases, session.plan)  # fmt: skip
            feed.read = True
            if self.config.feed_wait_s <= 0:
                await asyncio.sleep(self.config.feed_interval_s)
            else:
                await asyncio.sleep(0)  # held by the substation until something changed: read again at once

    def _learn(self, session_id: str, charger_id: str | None, transaction_id: str | None, state: SessionState,
               allocated_kw: float, phases: int | None = None, ahead: list[PlannedLimit] | None = None,
               ) -> None:  # fmt: skip
        link = self.by_session.get(session_id)
        if link is None:
            if charger_id in self.links and transaction_id is not None and not state.ended:
                known = self.links[charger_id]
                if known.transaction is None:
                    self.orphans[(charger_id, transaction_id)] = session_id  # matched when the charger speaks
                    self._bump_transactions(transaction_id)
            return
        transaction = link.transaction
        if transaction is None or transaction.session_id != session_id:
            return
        if state.ended:
            # Ended at the substation (its energy delivered, or stopped there): the car may charge no more.
            self._set_limit(link, 0.0, state)
            if not link.connected:
                link.transaction = None  # nothing is left to tell it: it is no longer offline mid-transaction
            return
        if phases is not None and phases != transaction.phases:
            transaction.phases = phases  # switched (phase_switching): its next profile says so
            link.changed_at = time.monotonic()
            link.wake.set()
        ahead = ahead or []
        if ahead != link.ahead:
            link.ahead = ahead  # a new plan: its next profile says the limits ahead
            link.changed_at = time.monotonic()
            link.wake.set()
        self._set_limit(link, allocated_kw, state)

    def _bump_transactions(self, transaction_id: str) -> None:
        if transaction_id.isdigit():
            self._next_transaction = max(self._next_transaction, int(transaction_id))

    def _set_limit(self, link: Link, kw: float, state: SessionState) -> None:
        link.state = state
        kw = kw if state == SessionState.CHARGING else 0.0
        if kw != link.allocated_kw:
            link.allocated_kw = kw
            link.changed_at = time.monotonic()
            link.wake.set()

    async def flush_meters(self) -> None:
        """Send the readings gathered since the last flush, per substation, in batches."""
        while True:
            await asyncio.sleep(self.config.meter_flush_s)
            for substation, pending in self.pending_meters.items():
                if not pending:
                    continue
                readings = list(pending.values())
                pending.clear()
                for start in range(0, len(readings), MAX_READINGS_PER_POST):
                    try:
                        await self.grid.meters(substation, readings[start : start + MAX_READINGS_PER_POST])
                    except GridUnavailable as error:
                        log.debug("meters to %s: %s", substation, error)  # the next readings will say it again

    async def renew_profiles(self) -> None:
        """Wake the senders of transactions whose profiles expire within half their validity."""
        validity = self.config.profile_validity_s
        while True:
            await asyncio.sleep(validity / 6)
            now = time.time()
            for link in self.links.values():
                sent = link.sent
                if (
                    link.connected
                    and sent is not None
                    and sent.valid_to is not None
                    and sent.valid_to - now < validity / 2
                ):
                    link.wake.set()

    # --- the chargers --------------------------------------------------------------------------------
    def _ensure_sender(self, link: Link) -> None:
        if link.charger.charger_id not in self._senders:
            self._senders[link.charger.charger_id] = self._spawn(self._send(link))

    async def _send(self, link: Link) -> None:
        """Tell the charger its newest limit, forever: the default once it connects, then its transaction's."""
        validity = self.config.profile_validity_s
        while True:
            await link.wake.wait()
            link.wake.clear()
            connection = link.connection
            if connection is None:
                continue
            try:
                default = self.default_a(link)
                if default is not None and link.transaction is not None and link.transaction.failsafe_a is not None:
                    default = min(default, link.transaction.failsafe_a)
                if (
                    default is not None
                    and link.default_sent != default
                    and await self._deliver(connection, Profile(default, link.charger.phases), None)
                ):
                    link.default_sent = default
                transaction = link.transaction
                if transaction is None or not transaction.announced:
                    continue
                voltage, phases = self.config.voltage_v, transaction.phases or link.charger.phases
                amperes = limit_a(link.allocated_kw, link.charger, voltage, phases)
                now = time.time()
                start, valid_to = math.floor(now), now + validity
                ahead: tuple[tuple[int, float], ...] = ()
                if link.ahead and amperes > 0 and not link.one_period:
                    planned = [(p.start, limit_a(p.limit_kw, link.charger, voltage, phases)) for p in link.ahead]
                    ahead = limits_ahead(planned, amperes, start, valid_to)
                profile = Profile(amperes, phases, transaction.transaction_id, valid_to, ahead, start)
                sent = link.sent
                due = sent is None or sent.valid_to is None or sent.valid_to - now < validity / 2
                new_limit = sent is None or not sent.same_limits(profile)
                if not new_limit and not due:
                    continue  # below the charger's resolution, and not about to expire
                learned = link.changed_at
                if await self._deliver(connection, profile, transaction.transaction_id):
                    link.sent = profile
                    if new_limit:  # a renewal carries no news: only a new limit's way down is a delivery
                        metrics.DELIVERY.observe(time.monotonic() - learned)
                elif profile.ahead:
                    # A charger that takes fewer periods than the plan has (its ChargingScheduleMaxPeriods) or no
                    # Absolute schedule still needs its limit: one period from now on, for as long as it is here.
                    log.info("%s: a schedule of %d periods refused; one period from now on",
                             link.charger.charger_id, len(profile.ahead) + 1)  # fmt: skip
                    link.one_period = True
                    link.wake.set()
            except Exception as error:  # a charger's fault is its own: try again, never end the sender
                log.info("%s: profile not delivered (%r); trying again", link.charger.charger_id, error)
                await asyncio.sleep(RETRY_S)
                link.wake.set()

    async def _deliver(self, connection: ChargerConnection, profile: Profile, transaction_id: str | None) -> bool:
        accepted = await connection.send_profile(profile)
        purpose = "TxProfile" if transaction_id else "TxDefaultProfile"
        metrics.PROFILES.labels(purpose, "accepted" if accepted else "rejected").inc()
        return accepted

    def _spawn(self, work: Awaitable) -> asyncio.Task:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def start(self) -> list[asyncio.Task]:
        loops: list[Callable[[], Awaitable]] = [self.flush_meters, self.renew_profiles]
        tasks = [self._spawn(loop()) for loop in loops]
        tasks += [self._spawn(self.follow_feed(name)) for name in self.feeds]
        return tasks

    # --- what is shown -------------------------------------------------------------------------------
    def describe(self, link: Link) -> dict:
        transaction = link.transaction
        return {
            "charger_id": link.charger.charger_id,
            "substation": link.charger.substation,
            "connected": link.connected,
            "protocol": link.protocol,
            "phases": link.charger.phases,
            "max_current_a": link.charger.max_current_a,
            "grid_phase": link.charger.grid_phase.value,
            "circuit": link.charger.circuit,
            "transaction_id": None if transaction is None else transaction.transaction_id,
            "session_id": None if transaction is None else transaction.session_id,
            "state": None if link.state is None else str(link.state),
            "limit_kw": round(link.allocated_kw, 3) if transaction is not None else None,
            "limit_a": None if link.sent is None else link.sent.amperes,
            "default_a": link.default_sent,
            "measured_kw": link.measured_kw,
            "fleet": link.charger.fleet,
        }
