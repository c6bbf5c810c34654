"""A simulated OCPP charger with one connector: it connects to a CSMS, charges cars under the CSMS's profiles,
and records what it was told and what it drew.

One `SimulatedCharger` is a few objects and two asyncio tasks (the library's read loop, and a loop of its own
that sends meter values and heartbeats and applies the limit), so that one process holds thousands. It speaks
OCPP 1.6J or 2.0.1 through a session (v16.py, v201.py); the rules (profiles.py) and the car (car.py) are pure.

What a real charger does and this one does too: it keeps charging through a network drop under the profiles it
has, and tells the CSMS about a transaction that ended meanwhile once it is back; it sends BootNotification
again only when it reboots. What it does not: it starts no transaction offline, queues no meter values, and
answers only the requests it needs (profiles, remote start and stop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from enum import Enum
from operator import methodcaller
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

from ocpp.exceptions import OCPPError  # type: ignore[import-untyped, unused-ignore]
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.headers import build_authorization_basic
from websockets.typing import Subprotocol

from load_tester.fleet.car import Car
from load_tester.fleet.profiles import DEFAULT_VOLTAGE, ChargingProfile, ProfileError, ProfileStore, Purpose
from load_tester.fleet.session import (
    BootRefused,
    ConnectorState,
    MeterReading,
    OcppVersion,
    ProfileSummary,
    Session,
    StartRefused,
    StartTrigger,
    StopReason,
    Transaction,
)
from load_tester.fleet.v16 import V16Session
from load_tester.fleet.v201 import V201Session

LOGGER = logging.getLogger(__name__)
T = TypeVar("T")

START_WAIT_S = 2.0  # what a TxProfile that came with a start's answer waits for the start to be done
HEARTBEAT_MAX_S = 60.0  # whatever interval the CSMS answers, a heartbeat at least this often
BOOT_RETRY_S = 10.0  # after a Pending boot whose answer gives no interval
BOOT_ATTEMPTS = 10
RECONNECT_MIN_S = 1.0
RECONNECT_MAX_S = 30.0
DEFAULT_ID_TAG = "FLEET-TAG"


class ChargerState(Enum):
    NEW = "new"
    CONNECTING = "connecting"
    ONLINE = "online"  # connected and booted
    OFFLINE = "offline"  # was online; the connection is gone
    REFUSED = "refused"  # the CSMS refused the handshake (unknown id, wrong password) or the boot
    CLOSED = "closed"


class ChargerError(Exception):
    """Something a charger could not do; the message says what."""


class ChargerRefused(ChargerError):
    """The CSMS refused this charger at the WebSocket handshake (HTTP `status`: 404 for an unknown id, 401 for
    a wrong password) or chose another subprotocol; retrying would not help."""

    def __init__(self, charger_id: str, status: int | None, detail: str) -> None:
        super().__init__(f"{charger_id}: refused by the CSMS: {detail}")
        self.charger_id = charger_id
        self.status = status


class ChargerUnreachable(ChargerError):
    """No WebSocket to the CSMS could be opened (nothing listening, timeout, a broken handshake)."""


class ChargerOffline(ChargerError):
    """The charger has no connection to the CSMS (never connected, or the connection dropped)."""


class ChargerBusy(ChargerError):
    """A transaction is running or starting: the connector is taken."""


@dataclass(frozen=True, slots=True)
class ProfileEvent:
    """A SetChargingProfile received: when, what it said, and the answer."""

    at: float
    profile_id: int | None
    purpose: str | None
    stack_level: int | None
    unit: str | None
    limits: tuple[float, ...]
    valid_to: str | None
    transaction_id: str | None
    accepted: bool
    reason: str | None  # why it was rejected
    starts: tuple[float, ...] = ()  # each period's startPeriod, s
    start_schedule: str | None = None  # an Absolute schedule's start


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    limit_w: float
    draw_w: float


@dataclass(frozen=True, slots=True)
class TransactionRecord:
    id: str
    car: str
    started_at: float
    ended_at: float
    energy_wh: float
    stop_reason: str


@dataclass
class ChargerRecord:
    """What happened to one charger, for inspection by tests and for the fleet's summary."""

    profiles: list[ProfileEvent] = field(default_factory=list)
    samples: deque[Sample] = field(default_factory=lambda: deque(maxlen=10_000))
    transactions: list[TransactionRecord] = field(default_factory=list)
    errors: deque[str] = field(default_factory=lambda: deque(maxlen=50))
    error_count: int = 0
    messages_sent: int = 0
    profiles_cleared: int = 0
    connects: int = 0
    boots: int = 0
    needs_answers: list[str] = field(default_factory=list)  # the CSMS's to NotifyEVChargingNeeds

    def error(self, text: str) -> None:
        self.error_count += 1
        self.errors.append(text)

    def as_json(self, *, samples: bool = True) -> dict[str, Any]:
        return {
            "profiles": [asdict(event) for event in self.profiles],
            "samples": [asdict(sample) for sample in self.samples] if samples else [],
            "transactions": [asdict(transaction) for transaction in self.transactions],
            "errors": list(self.errors),
            "error_count": self.error_count,
            "messages_sent": self.messages_sent,
            "profiles_cleared": self.profiles_cleared,
            "connects": self.connects,
            "boots": self.boots,
            "needs_answers": self.needs_answers,
        }


def default_car() -> Car:
    return Car(phases=3, max_current_a=16.0, energy_need_wh=20_000.0, name="3-phase 11 kW")


class SimulatedCharger:
    """One charger with one connector (connector / EVSE 1), speaking OCPP `protocol` ("1.6" or "2.0.1").

    `max_current_a` on `phases` is the charger's own limit; `meter_interval_s` the wall seconds between meter
    values; `time_scale` how much faster than the wall the grid's clock (and so the cars' energy) runs;
    `car_factory` makes the car of a remote start; `validate_messages=False` skips the library's schema
    checks of what this charger sends (a benchmark's saving: the CSMS checks them anyway) and of the CSMS's
    requests it answers (the CSMS's profiles are checked against the schemas by its unit tests); `auto_reconnect`
    reopens a dropped connection with backoff (not after `disconnect()`, nor after a refusal).
    """

    def __init__(
        self,
        charger_id: str,
        protocol: str | OcppVersion = "1.6",
        *,
        password: str | None = None,
        max_current_a: float = 32.0,
        phases: int = 3,
        voltage: float = DEFAULT_VOLTAGE,
        meter_interval_s: float = 1.0,
        time_scale: float = 1.0,
        car_factory: Callable[[], Car] = default_car,
        validate_messages: bool = True,
        response_timeout_s: float = 30.0,
        open_timeout_s: float = 10.0,
        ping_interval_s: float | None = None,
        heartbeat_max_s: float = HEARTBEAT_MAX_S,
        auto_reconnect: bool = False,
        sample_limit: int = 10_000,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if meter_interval_s <= 0 or time_scale <= 0:
            raise ValueError("meter_interval_s and time_scale must be more than 0")
        self.id = charger_id
        self.protocol = protocol if isinstance(protocol, OcppVersion) else OcppVersion.parse(protocol)
        self.password = password
        self.voltage = voltage
        self.meter_interval_s = meter_interval_s
        self.time_scale = time_scale
        self.car_factory = car_factory
        self.validate_messages = validate_messages
        self.response_timeout_s = response_timeout_s
        self.open_timeout_s = open_timeout_s
        self.ping_interval_s = ping_interval_s
        self.heartbeat_max_s = heartbeat_max_s
        self.auto_reconnect = auto_reconnect
        self.clock = clock
        self.rng = rng or random.Random()
        self.url: str | None = None
        self.state = ChargerState.NEW
        self.refusal: ChargerRefused | None = None
        self.profiles = ProfileStore(max_current_a=max_current_a, phases=phases)
        self.record = ChargerRecord(samples=deque(maxlen=sample_limit))
        self.transaction: Transaction | None = None
        self.heartbeat_interval_s = heartbeat_max_s
        self.limit_w = self.profiles.max_w(phases, voltage)  # as of the last evaluation
        self._meter_base_wh = 0.0  # the register at the end of the last transaction
        self._connection: ClientConnection | None = None
        self._session: V16Session | V201Session | None = None
        self._serve_task: asyncio.Task[None] | None = None
        self._run_task: asyncio.Task[None] | None = None  # the physics: never waits for the network
        self._send_task: asyncio.Task[None] | None = None  # what is due to the CSMS, one message at a time
        self._reconnect_task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Future[Any]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wake = asyncio.Event()  # the physics loop's
        self._send_wake = asyncio.Event()  # the sender's
        self._transaction_lock = asyncio.Lock()  # one transaction message at a time, in order
        self._starting: asyncio.Future[None] | None = None  # set while a start is on its way
        self._unsent_stops: list[tuple[Transaction, MeterReading]] = []  # ended, not yet told
        self._stops_retry_at = 0.0  # after a stop the CSMS answered with an error
        self._status_due = False
        self._user_offline = False
        self._idle = asyncio.Event()  # set while no transaction runs
        self._idle.set()
        self._next_meter_at = 0.0
        self._next_heartbeat_at = 0.0
        self._last_sent_at = float("-inf")  # when the last call to the CSMS was answered
        self._next_reconnect_at = 0.0
        self._reconnect_delay_s = RECONNECT_MIN_S

    # --- what tests and the fleet read ---------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._session is not None

    @property
    def online(self) -> bool:
        return self.state is ChargerState.ONLINE

    @property
    def car(self) -> Car | None:
        return None if self.transaction is None else self.transaction.car

    @property
    def draw_w(self) -> float:
        return 0.0 if self.transaction is None else self.transaction.car.power_w

    @property
    def meter_wh(self) -> float:
        """The energy register since the charger was created: it never goes back."""
        return self._meter_base_wh + (0.0 if self.transaction is None else self.transaction.car.delivered_wh)

    @property
    def charging(self) -> bool:
        return self.draw_w > 0

    async def __aenter__(self) -> SimulatedCharger:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    # --- connection ----------------------------------------------------------------------------------------
    def charger_url(self, url: str) -> str:
        """`url` is the CSMS's base (ws://host:9000/ocpp) or already this charger's (…/ocpp/<id>)."""
        path = urlsplit(url).path.rstrip("/")
        quoted = quote(self.id, safe="")
        if path.rsplit("/", 1)[-1] in (self.id, quoted):
            return url
        return url.rstrip("/") + "/" + quoted

    async def connect(self, url: str | None = None, *, boot: bool = True) -> None:
        """Open the WebSocket (`url` as in charger_url; the last one again if None), send BootNotification and
        StatusNotification, and start sending. Raises ChargerRefused (404, 401: do not retry),
        ChargerUnreachable, or BootRefused."""
        if url is not None:
            self.url = self.charger_url(url)
        if self.url is None:
            raise ChargerError(f"{self.id}: no CSMS URL to connect to")
        if self._session is not None:
            raise ChargerError(f"{self.id}: already connected")
        self._user_offline = False
        previous = self.state
        self.state = ChargerState.CONNECTING
        try:
            await self._open(self.url)
            if boot or previous is ChargerState.NEW:
                await self._boot()
        except ChargerRefused as refusal:
            self.state = ChargerState.REFUSED
            self.refusal = refusal
            raise
        except BaseException:
            await self._drop_connection()
            self.state = ChargerState.OFFLINE if previous is not ChargerState.NEW else ChargerState.NEW
            raise
        self.state = ChargerState.ONLINE
        self._reconnect_delay_s = RECONNECT_MIN_S
        if boot or previous is ChargerState.NEW:
            self._status_due = True
        if self._run_task is None:
            self._run_task = asyncio.create_task(self._run(), name=f"charger {self.id}")
            self._send_task = asyncio.create_task(self._send_loop(), name=f"send {self.id}")
        self._wake.set()
        # Said before connect() returns, so that a plug() right after comes after it.
        await self._send_status_if_due()
        self._send_wake.set()

    async def _open(self, url: str) -> None:
        headers = {}
        if self.password is not None:
            headers["Authorization"] = build_authorization_basic(self.id, self.password)
        wanted = Subprotocol(self.protocol.value)
        try:
            connection = await connect(
                url,
                subprotocols=[wanted],
                additional_headers=headers,
                open_timeout=self.open_timeout_s,
                ping_interval=self.ping_interval_s,
                close_timeout=2,
                compression=None,  # a deflate context per socket costs memory; chargers rarely ask for it
                proxy=None,
            )
        except InvalidStatus as error:
            status = error.response.status_code
            raise ChargerRefused(self.id, status, f"HTTP {status} at the handshake") from error
        except (OSError, TimeoutError, InvalidHandshake) as error:
            raise ChargerUnreachable(f"{self.id}: cannot reach {url}: {error!r}") from error
        if connection.subprotocol != wanted:
            await connection.close()
            raise ChargerRefused(self.id, None, f"subprotocol {connection.subprotocol!r} instead of {wanted!r}")
        session_class = V16Session if self.protocol is OcppVersion.V16 else V201Session
        session = session_class(
            self.id,
            connection,
            self,
            validate=self.validate_messages,
            response_timeout_s=self.response_timeout_s,
        )
        self._connection, self._session = connection, session
        self.record.connects += 1
        self._serve_task = asyncio.create_task(self._serve(session, connection), name=f"ocpp {self.id}")

    async def _serve(self, session: Session, connection: ClientConnection) -> None:
        try:
            await session.serve()
        except ConnectionClosed:
            pass  # the CSMS went, or we closed: _went_offline says which matters
        except Exception as error:  # the library's read loop should not fail; if it does, say so
            self.record.error(f"read loop: {error!r}")
            LOGGER.exception("%s: the OCPP read loop failed", self.id)
            await connection.close()
        finally:
            if self._connection is connection:
                self._went_offline()

    def _went_offline(self) -> None:
        self._connection, self._session = None, None
        for call in list(self._inflight):
            call.cancel()  # their answers will not come: fail them now rather than at the response timeout
        if self.state in (ChargerState.ONLINE, ChargerState.CONNECTING):
            self.state = ChargerState.OFFLINE
            self._next_reconnect_at = self.clock() + self._reconnect_delay_s * self.rng.uniform(0.5, 1.0)
        self._wake.set()

    async def _boot(self) -> None:
        for _ in range(BOOT_ATTEMPTS):
            answer = await self._call(lambda session: session.boot())
            self.record.boots += 1
            if answer.status == "Accepted":
                interval = answer.interval_s if answer.interval_s > 0 else self.heartbeat_max_s
                self.heartbeat_interval_s = min(interval, self.heartbeat_max_s)
                # A random first beat, so that chargers booted together do not beat together.
                self._next_heartbeat_at = self.clock() + self.heartbeat_interval_s * self.rng.uniform(0.5, 1.0)
                return
            if answer.status == "Rejected":
                raise ChargerRefused(self.id, None, "BootNotification Rejected")
            await asyncio.sleep(answer.interval_s if answer.interval_s > 0 else BOOT_RETRY_S)
        raise BootRefused(f"{self.id}: BootNotification still Pending after {BOOT_ATTEMPTS} tries")

    async def _drop_connection(self, *, abort: bool = False) -> None:
        connection, serve_task = self._connection, self._serve_task
        self._went_offline()
        if connection is not None:
            if abort and connection.transport is not None:
                connection.transport.abort()  # no closing handshake: the network dropped
            else:
                await connection.close()
        if serve_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await serve_task

    async def disconnect(self, *, abort: bool = True) -> None:
        """Drop the connection as a network failure would (`abort=False`: a clean WebSocket close); the
        transaction and the car go on, under the profiles installed. No automatic reconnection after this."""
        self._user_offline = True
        await self._drop_connection(abort=abort)

    async def reconnect(self, *, reboot: bool = False) -> None:
        """Connect again to the same URL, keeping the transaction: meter values go on for it. BootNotification
        only if `reboot`."""
        if self._session is not None:
            await self._drop_connection(abort=True)
        await self.connect(boot=reboot)

    async def close(self, *, stop_transaction: bool = False) -> None:
        """Stop the charger for good (with `stop_transaction`, end a running transaction first, reason Local)."""
        if stop_transaction and self.transaction is not None and self.online:
            with contextlib.suppress(ChargerError, OCPPError, TimeoutError):
                await self.unplug(reason=StopReason.LOCAL)
        self._user_offline = True
        tasks = [
            task for task in (self._run_task, self._send_task, self._reconnect_task, *self._tasks) if task is not None
        ]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._run_task = self._send_task = self._reconnect_task = None
        await self._drop_connection()
        self.state = ChargerState.CLOSED

    # --- calls to the CSMS ---------------------------------------------------------------------------------
    async def _call(self, send: Callable[[Any], Awaitable[T]]) -> T:
        """Send through the current session; ChargerOffline if there is none or it drops before the answer."""
        session = self._session
        if session is None:
            raise ChargerOffline(f"{self.id}: offline")
        call = asyncio.ensure_future(send(session))
        self._inflight.add(call)
        self.record.messages_sent += 1
        try:
            answer = await call
            self._last_sent_at = self.clock()
            return answer
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # we are being cancelled ourselves
            raise ChargerOffline(f"{self.id}: the connection dropped before the answer") from None
        except ConnectionClosed as error:
            raise ChargerOffline(f"{self.id}: the connection dropped: {error}") from None
        finally:
            self._inflight.discard(call)

    # --- transactions --------------------------------------------------------------------------------------
    def _reserve_start(self) -> asyncio.Future[None]:
        if self.transaction is not None or self._starting is not None:
            raise ChargerBusy(f"{self.id}: the connector is taken")
        if not self.online:
            raise ChargerOffline(f"{self.id}: cannot start a transaction offline")
        self._starting = asyncio.get_running_loop().create_future()
        return self._starting

    async def plug(
        self,
        car: Car | None = None,
        id_tag: str = DEFAULT_ID_TAG,
        *,
        remote_start_id: int | None = None,
        trigger: StartTrigger = StartTrigger.AUTHORIZED,
    ) -> Transaction:
        """Plug `car` in (the car factory's if None) and start a transaction for `id_tag`; returns it.
        Raises ChargerBusy, ChargerOffline, StartRefused (the CSMS did not accept the tag)."""
        self._reserve_start()
        return await self._start_transaction(car or self.car_factory(), id_tag, trigger, remote_start_id)

    async def _start_transaction(
        self, car: Car, id_tag: str, trigger: StartTrigger, remote_start_id: int | None
    ) -> Transaction:
        starting = self._starting
        assert starting is not None
        try:
            async with self._transaction_lock:
                now = self.clock()
                car.plugged_in(now)
                v201 = self.protocol is OcppVersion.V201
                transaction = Transaction(
                    id=uuid.uuid4().hex if v201 else "",
                    car=car,
                    id_tag=id_tag,
                    started_at=now,
                    meter_start_wh=self.meter_wh,
                    trigger=trigger,
                    remote_start_id=remote_start_id,
                )
                await self._call(lambda session: session.status(ConnectorState.PREPARING))
                if v201 and car.departure_at is not None:
                    # ISO 15118 learns the car's needs before power flows (ChargeParameterDiscovery), so they
                    # come before the transaction starts; the CSMS keeps them for it.
                    answer = await self._call(lambda session: session.notify_charging_needs(transaction))
                    if answer is not None:
                        self.record.needs_answers.append(answer)
                if v201:
                    # Known before it is sent: a TxProfile may follow the Started event at once.
                    self._begin(transaction, now)
                try:
                    transaction.id = await self._call(
                        lambda session: session.start_transaction(transaction, self._reading(now))
                    )
                except BaseException:
                    if v201:
                        self._forget(transaction)
                    raise
                if not v201:
                    self._begin(transaction, now)
                self._finish_start(starting)  # profiles for it may be handled from here on
                self._evaluate(self.clock())
                self._status_due = self.protocol is OcppVersion.V16  # 2.0.1 said Occupied already
                self._next_meter_at = now + self.meter_interval_s
        except BaseException:
            self._finish_start(starting)
            if self.online:
                with contextlib.suppress(ChargerError, OCPPError, TimeoutError):
                    await self._call(lambda session: session.status(ConnectorState.AVAILABLE))
            raise
        self._wake.set()
        self._send_wake.set()
        await self._send_status_if_due()  # 1.6 Charging (or suspended) before plug() returns
        return transaction

    def _finish_start(self, starting: asyncio.Future[None]) -> None:
        if not starting.done():
            starting.set_result(None)
        if self._starting is starting:
            self._starting = None

    def _begin(self, transaction: Transaction, now: float) -> None:
        self.transaction = transaction
        self.profiles.begin_transaction(transaction.id, now)
        self._idle.clear()

    def _forget(self, transaction: Transaction) -> None:
        if self.transaction is transaction:
            self.transaction = None
            self.profiles.end_transaction()
            self._idle.set()

    async def wait_idle(self) -> None:
        """Until no transaction runs (at once if none does)."""
        await self._idle.wait()

    async def unplug(self, *, reason: StopReason = StopReason.UNPLUGGED) -> TransactionRecord | None:
        """End the running transaction (StopTransaction / TransactionEvent Ended) and take the car away; the
        record of the transaction, or None if there was none. Offline, the stop is sent once back online."""
        ended = self._end_transaction(reason)
        await self._send_stops()
        return ended

    def _end_transaction(self, reason: StopReason) -> TransactionRecord | None:
        """Ends it here and now (the physics may not wait for the network); its stop is queued, to be sent
        after whatever is on its way for it (the transaction lock keeps the order)."""
        transaction = self.transaction
        if transaction is None:
            return None
        now = self.clock()
        self._evaluate(now)
        reading = self._reading(now)
        transaction.ended_at = now
        transaction.stop_reason = reason
        transaction.meter_stop_wh = reading.energy_wh
        self._meter_base_wh = reading.energy_wh
        self._forget(transaction)
        ended = TransactionRecord(
            id=transaction.id,
            car=transaction.car.name,
            started_at=transaction.started_at,
            ended_at=now,
            energy_wh=reading.energy_wh - transaction.meter_start_wh,
            stop_reason=reason.value,
        )
        self.record.transactions.append(ended)
        self._unsent_stops.append((transaction, reading))
        self._status_due = False
        self._send_wake.set()
        return ended

    async def _send_stops(self) -> None:
        async with self._transaction_lock:
            while self._unsent_stops and self.connected:
                transaction, reading = self._unsent_stops[0]
                await self._call(methodcaller("stop_transaction", transaction, reading))
                self._unsent_stops.pop(0)
                if not self._unsent_stops and self.transaction is None:
                    await self._call(lambda session: session.status(ConnectorState.AVAILABLE))

    # --- the limit, the car, the meter ---------------------------------------------------------------------
    def _evaluate(self, now: float) -> None:
        """Count the energy to `now`, then offer the car the limit in force and see what it draws."""
        transaction = self.transaction
        if transaction is None:
            return
        car = transaction.car
        car.advance(now, self.time_scale)
        self.limit_w, phases = self.profiles.in_force(now, car.phases, self.voltage)
        draw = car.draw_w(self.limit_w, now, phases)
        if draw > 0:
            state = ConnectorState.CHARGING
        elif self.limit_w < car.min_power_on(phases) and not car.need_met:
            state = ConnectorState.SUSPENDED_EVSE
        else:
            state = ConnectorState.SUSPENDED_EV
        if state is not transaction.state:
            transaction.state = state
            transaction.extra["state_changed"] = True  # 2.0.1: the next Updated event says why it is sent
            if self.protocol is OcppVersion.V16:
                self._status_due = True  # 1.6 tells a charging state as a connector status
            self._send_wake.set()
        self.record.samples.append(Sample(now, self.limit_w, draw))

    def _reading(self, now: float) -> MeterReading:
        transaction = self.transaction
        if transaction is None:
            return MeterReading(now, 0.0, (0.0, 0.0, 0.0), self.meter_wh)
        car = transaction.car
        current = car.current_per_phase_a
        currents = tuple(current if phase < car.phases_in_use else 0.0 for phase in range(3))
        return MeterReading(now, car.power_w, (currents[0], currents[1], currents[2]), self.meter_wh)

    # --- the charger's own loops ---------------------------------------------------------------------------
    async def _run(self) -> None:
        """The physics, at least every meter interval whatever the network does: a real charger applies its
        profiles (and lets one expire) on its own clock, not when the CSMS answers. Nothing here waits for
        the network: sending is the sender's (_send_loop), reconnecting a task of its own."""
        while True:
            self._wake.clear()
            now = self.clock()
            self._evaluate(now)
            transaction = self.transaction
            if transaction is not None and transaction.car.need_met:
                self._end_transaction(StopReason.ENERGY_MET)
            elif self._reconnecting() and now >= self._next_reconnect_at and not self._reconnect_running():
                self._reconnect_task = asyncio.create_task(self._try_reconnect(), name=f"reconnect {self.id}")
            await self._sleep_until(self._next_evaluation(now), self._wake)

    def _next_evaluation(self, now: float) -> float:
        wake = now + self.heartbeat_max_s
        if self.transaction is not None:
            wake = min(wake, now + self.meter_interval_s)
            deadline = self.transaction.car.follow_deadline()
            if deadline is not None:
                wake = min(wake, deadline)
        if self._reconnecting() and not self._reconnect_running():
            wake = min(wake, max(now, self._next_reconnect_at))
        return wake

    async def _send_loop(self) -> None:
        """What is due to the CSMS, in order, one message at a time; woken by the physics and by connect()."""
        while True:
            self._send_wake.clear()
            await self._send_due()
            await self._sleep_until(self._next_send(self.clock()), self._send_wake)

    def _next_send(self, now: float) -> float:
        if not self.online:
            return now + self.heartbeat_max_s  # connect() wakes us
        wake = self._next_heartbeat_at
        if self._status_due:
            wake = now
        if self._unsent_stops:
            wake = min(wake, max(now, self._stops_retry_at))
        if self.transaction is not None:
            wake = min(wake, self._next_meter_at)
        return wake

    async def _send_status_if_due(self) -> None:
        if not self._status_due or not self.online:
            return
        self._status_due = False
        transaction = self.transaction
        state = ConnectorState.AVAILABLE if transaction is None else transaction.state
        try:
            await self._call(lambda session: session.status(state))
        except ChargerOffline:
            pass
        except (OCPPError, TimeoutError) as error:
            self.record.error(f"StatusNotification: {type(error).__name__}: {error}")

    async def _send_due(self) -> None:
        """Whatever is due now and can be sent: ended transactions, a status change, meter values, a
        heartbeat. Failures are recorded, never raised: the loop goes on."""
        if not self.online:
            return
        now = self.clock()
        try:
            if self._unsent_stops and now >= self._stops_retry_at:
                try:
                    await self._send_stops()
                except (OCPPError, TimeoutError):
                    self._stops_retry_at = self.clock() + self.heartbeat_interval_s  # kept; tried again later
                    raise
            await self._send_status_if_due()
            if self.transaction is not None and now >= self._next_meter_at:
                await self._send_meter_values(now)
            if now >= self._next_heartbeat_at:
                if now - self._last_sent_at < self.heartbeat_interval_s:
                    # OCPP 1.6 (section 4.6) lets a charger skip its heartbeat when it sent something else within the
                    # interval; ours do so in both versions: a charging one, whose meter values say it is alive,
                    # hardly ever sends one.
                    self._next_heartbeat_at = self._last_sent_at + self.heartbeat_interval_s
                else:
                    self._next_heartbeat_at = now + self.heartbeat_interval_s * self.rng.uniform(0.9, 1.0)
                    await self._call(lambda session: session.heartbeat())
        except ChargerOffline:
            pass
        except (OCPPError, TimeoutError) as error:
            self.record.error(f"{type(error).__name__}: {error}")

    async def _send_meter_values(self, now: float) -> None:
        # A steady cadence: the next tick one interval after this one's due time, skipping those overrun.
        self._next_meter_at += self.meter_interval_s
        if self._next_meter_at <= now:
            self._next_meter_at = now + self.meter_interval_s
        async with self._transaction_lock:
            transaction = self.transaction
            if transaction is None:
                return
            self._evaluate(now)
            reading = self._reading(now)
            await self._call(lambda session: session.meter_values(transaction, reading))

    async def _try_reconnect(self) -> None:
        try:
            await self.connect(boot=False)
        except ChargerRefused as refusal:
            self.record.error(str(refusal))  # state is REFUSED: no more tries
        except (ChargerError, OCPPError, TimeoutError, BootRefused) as error:
            self.record.error(f"reconnect: {error}")
            self._reconnect_delay_s = min(self._reconnect_delay_s * 2, RECONNECT_MAX_S)
            self._next_reconnect_at = self.clock() + self._reconnect_delay_s * self.rng.uniform(0.5, 1.0)

    def _reconnect_running(self) -> bool:
        return self._reconnect_task is not None and not self._reconnect_task.done()

    def _reconnecting(self) -> bool:
        return self.state is ChargerState.OFFLINE and self.auto_reconnect and not self._user_offline

    async def _sleep_until(self, moment: float, wake: asyncio.Event) -> None:
        """Until `moment` or `wake`; always yields to the loop, even when already due, so that no loop of
        ours can hold the others up however its clocks stand."""
        delay = moment - self.clock()
        if delay <= 0 or wake.is_set():
            await asyncio.sleep(0)
            return
        # The timer sets `wake` itself: both loops clear it as they start over. (asyncio.timeout would cancel the
        # task and turn the cancellation into an exception at every wake-up: thousands a second in a fleet.)
        timer = asyncio.get_running_loop().call_later(delay, wake.set)
        try:
            await wake.wait()
        finally:
            timer.cancel()

    def _spawn(self, work: Awaitable[Any], what: str) -> None:
        async def guarded() -> None:
            try:
                await work
            except (ChargerError, OCPPError, TimeoutError, StartRefused) as error:
                self.record.error(f"{what}: {error}")

        task = asyncio.create_task(guarded(), name=f"{what} {self.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- requests from the CSMS (ChargerHandlers, called by the session) -----------------------------------
    async def set_charging_profile(
        self, parse: Callable[[], ChargingProfile], summary: ProfileSummary
    ) -> tuple[bool, str | None]:
        starting = self._starting
        if starting is not None and summary.purpose == Purpose.TX.value:
            # A TxProfile right after our StartTransaction's answer: its id is known once the start is done.
            # Briefly: this handler holds the connection's read loop, so a CSMS that sent the profile before
            # the answer would have it wait for an answer it cannot read.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(self.response_timeout_s, START_WAIT_S)):
                    await asyncio.shield(starting)
        now = self.clock()
        reason: str | None = None
        try:
            self.profiles.install(parse(), now)
        except ProfileError as error:
            reason = str(error)
        self.record.profiles.append(
            ProfileEvent(
                at=now,
                profile_id=summary.id,
                purpose=summary.purpose,
                stack_level=summary.stack_level,
                unit=summary.unit,
                limits=summary.limits,
                valid_to=summary.valid_to,
                transaction_id=summary.transaction_id,
                accepted=reason is None,
                reason=reason,
                starts=summary.starts,
                start_schedule=summary.start_schedule,
            )
        )
        if reason is None:
            car = self.car
            deadline = None if car is None else car.follow_deadline()
            self._evaluate(now)
            # The physics loop sleeps until the car's next follow deadline at most: woken only when a lower limit
            # set a new one (a rise is drawn at once, by the evaluation here). _evaluate wakes the sender itself
            # when the connector's state changed; nothing else a profile changes is the sender's.
            if car is not None and car.follow_deadline() != deadline:
                self._wake.set()
        return reason is None, reason

    def clear_charging_profile(
        self, profile_id: int | None, connector_id: int | None, purpose: Purpose | None, stack_level: int | None
    ) -> bool:
        cleared = self.profiles.clear(
            profile_id=profile_id, connector_id=connector_id, purpose=purpose, stack_level=stack_level
        )
        if cleared:
            self.record.profiles_cleared += 1
            self._evaluate(self.clock())
            self._wake.set()
        return cleared

    def remote_start(
        self,
        id_tag: str,
        connector_id: int | None,
        remote_start_id: int | None,
        profile: Callable[[], ChargingProfile] | None,
    ) -> tuple[bool, str | None]:
        if connector_id not in (None, 0, self.profiles.connector_id):
            return False, None
        try:
            self._reserve_start()
        except ChargerError:
            return False, None

        async def begin() -> None:
            await self._start_transaction(self.car_factory(), id_tag, StartTrigger.REMOTE, remote_start_id)
            if profile is not None:
                with contextlib.suppress(ProfileError):
                    self.profiles.install(profile(), self.clock())
                    self._evaluate(self.clock())

        # Started after the answer has gone: the library sends it when this handler returns.
        self._spawn(begin(), "remote start")
        return True, None

    def remote_stop(self, transaction_id: str) -> bool:
        if self.transaction is None or self.transaction.id != transaction_id:
            return False
        self._spawn(self.unplug(reason=StopReason.REMOTE), "remote stop")
        return True
