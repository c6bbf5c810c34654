"""The simulated chargers (load_tester/fleet) against a minimal CSMS started here: an `ocpp` ChargePoint server
per connection over websockets, both subprotocols, on a free loopback port. Each test runs its own asyncio
loop (asyncio.run) and waits for conditions by polling with a deadline, never by sleeping a fixed time."""

from __future__ import annotations

import asyncio
import base64
import itertools
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import pytest
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from load_tester.fleet import Car, ChargerRefused, Fleet, FleetConfig, SimulatedCharger

pytestmark = pytest.mark.integration

VERSIONS = ("1.6", "2.0.1")
FOLLOW_DELAY_S = 0.5
METER_INTERVAL_S = 0.2
WAIT_S = 10.0


# --- a minimal CSMS ----------------------------------------------------------------------------------------
@dataclass
class Message:
    at: float
    action: str
    payload: dict[str, Any]


@dataclass
class Csms:
    """Accepts every charger (or only `known`, 404 for others; with `passwords`, HTTP Basic checked: 401),
    answers everything Accepted, and logs each charger's messages."""

    known: set[str] | None = None
    passwords: dict[str, str] = field(default_factory=dict)
    heartbeat_interval_s: int = 30
    log: dict[str, list[Message]] = field(default_factory=lambda: defaultdict(list))
    points: dict[str, ChargePoint16 | ChargePoint201] = field(default_factory=dict)
    disconnects: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    server: Server | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp"

    async def __aenter__(self) -> Csms:
        self.server = await serve(
            self._serve,
            "127.0.0.1",
            0,
            subprotocols=["ocpp1.6", "ocpp2.0.1"],  # type: ignore[list-item]
            process_request=self._admit,
            compression=None,
            ping_interval=None,
            max_queue=None,
        )
        self.port = next(iter(self.server.sockets)).getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    def _admit(self, connection: ServerConnection, request: Request) -> Response | None:
        charger_id = request.path.rsplit("/", 1)[-1]
        if self.known is not None and charger_id not in self.known:
            return connection.respond(HTTPStatus.NOT_FOUND, "unknown charger\n")
        if charger_id in self.passwords:
            expected = base64.b64encode(f"{charger_id}:{self.passwords[charger_id]}".encode()).decode()
            if request.headers.get("Authorization") != f"Basic {expected}":
                return connection.respond(HTTPStatus.UNAUTHORIZED, "wrong password\n")
        return None

    async def _serve(self, connection: ServerConnection) -> None:
        charger_id = connection.request.path.rsplit("/", 1)[-1] if connection.request else "?"
        point_class = Point16 if connection.subprotocol == "ocpp1.6" else Point201
        point = point_class(charger_id, connection, self)
        self.points[charger_id] = point
        try:
            await point.start()
        except ConnectionClosed:
            pass
        finally:
            self.disconnects[charger_id] += 1

    def note(self, charger_id: str, action: str, payload: dict[str, Any]) -> None:
        self.log[charger_id].append(Message(time.time(), action, payload))

    def messages(self, charger_id: str, action: str) -> list[Message]:
        return [message for message in self.log[charger_id] if message.action == action]

    async def send(self, charger_id: str, payload: Any) -> Any:
        return await self.points[charger_id].call(payload, suppress=False)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


_transaction_ids = itertools.count(1)


class Point16(ChargePoint16):
    def __init__(self, charger_id: str, connection: Any, csms: Csms) -> None:
        super().__init__(charger_id, connection)
        self.csms = csms

    @on("BootNotification")
    def on_boot_notification(self, **payload: Any) -> Any:
        self.csms.note(self.id, "BootNotification", payload)
        return result16.BootNotification(
            current_time=now_iso(), interval=self.csms.heartbeat_interval_s, status="Accepted"
        )

    @on("StatusNotification")
    def on_status_notification(self, **payload: Any) -> Any:
        self.csms.note(self.id, "StatusNotification", payload)
        return result16.StatusNotification()

    @on("Heartbeat")
    def on_heartbeat(self, **payload: Any) -> Any:
        self.csms.note(self.id, "Heartbeat", payload)
        return result16.Heartbeat(current_time=now_iso())

    @on("StartTransaction")
    def on_start_transaction(self, **payload: Any) -> Any:
        transaction_id = next(_transaction_ids)
        self.csms.note(self.id, "StartTransaction", {**payload, "transaction_id": transaction_id})
        return result16.StartTransaction(transaction_id=transaction_id, id_tag_info={"status": "Accepted"})

    @on("MeterValues")
    def on_meter_values(self, **payload: Any) -> Any:
        self.csms.note(self.id, "MeterValues", payload)
        return result16.MeterValues()

    @on("StopTransaction")
    def on_stop_transaction(self, **payload: Any) -> Any:
        self.csms.note(self.id, "StopTransaction", payload)
        return result16.StopTransaction(id_tag_info={"status": "Accepted"})


class Point201(ChargePoint201):
    def __init__(self, charger_id: str, connection: Any, csms: Csms) -> None:
        super().__init__(charger_id, connection)
        self.csms = csms

    @on("BootNotification")
    def on_boot_notification(self, **payload: Any) -> Any:
        self.csms.note(self.id, "BootNotification", payload)
        return result201.BootNotification(
            current_time=now_iso(), interval=self.csms.heartbeat_interval_s, status="Accepted"
        )

    @on("StatusNotification")
    def on_status_notification(self, **payload: Any) -> Any:
        self.csms.note(self.id, "StatusNotification", payload)
        return result201.StatusNotification()

    @on("Heartbeat")
    def on_heartbeat(self, **payload: Any) -> Any:
        self.csms.note(self.id, "Heartbeat", payload)
        return result201.Heartbeat(current_time=now_iso())

    @on("TransactionEvent")
    def on_transaction_event(self, **payload: Any) -> Any:
        self.csms.note(self.id, "TransactionEvent", payload)
        if "id_token" in payload:
            return result201.TransactionEvent(id_token_info={"status": "Accepted"})
        return result201.TransactionEvent()


# --- what the tests read from the CSMS's log, in either version --------------------------------------------
def starts(csms: Csms, charger_id: str) -> list[Message]:
    return csms.messages(charger_id, "StartTransaction") + [
        m for m in csms.messages(charger_id, "TransactionEvent") if m.payload["event_type"] == "Started"
    ]


def stops(csms: Csms, charger_id: str) -> list[Message]:
    return csms.messages(charger_id, "StopTransaction") + [
        m for m in csms.messages(charger_id, "TransactionEvent") if m.payload["event_type"] == "Ended"
    ]


def meter_messages(csms: Csms, charger_id: str) -> list[Message]:
    return csms.messages(charger_id, "MeterValues") + [
        m
        for m in csms.messages(charger_id, "TransactionEvent")
        if m.payload["event_type"] == "Updated" and m.payload.get("meter_value")
    ]


def transaction_of(message: Message) -> str:
    payload = message.payload
    if "transaction_info" in payload:
        return str(payload["transaction_info"]["transaction_id"])
    return str(payload["transaction_id"])


def sampled(message: Message) -> dict[tuple[str, str | None], float]:
    """(measurand, phase): value, from the last meter value of a message."""
    values = message.payload["meter_value"][-1]["sampled_value"]
    return {(value["measurand"], value.get("phase")): float(value["value"]) for value in values}


async def eventually(condition: Callable[[], object], timeout_s: float = WAIT_S, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.02)


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 60))


# --- profiles the CSMS sends -------------------------------------------------------------------------------
def set_profile(
    version: str,
    *,
    profile_id: int,
    purpose: str,
    limits_a: list[tuple[int, float]],
    stack_level: int = 0,
    transaction_id: str | None = None,
    valid_to: float | None = None,
    connector: int = 1,
) -> Any:
    """A SetChargingProfile request in amperes on 3 phases: a Relative TxProfile, or an Absolute profile from
    now."""
    schedule: dict[str, Any] = {
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [
            {"startPeriod": start, "limit": limit, "numberPhases": 3} for start, limit in limits_a
        ],
    }
    profile: dict[str, Any] = {
        "stackLevel": stack_level,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": "Relative" if purpose == "TxProfile" else "Absolute",
    }
    if purpose != "TxProfile":
        schedule["startSchedule"] = now_iso()
    if valid_to is not None:
        profile["validTo"] = datetime.fromtimestamp(valid_to, UTC).isoformat(timespec="milliseconds")
    if version == "1.6":
        if transaction_id is not None:
            profile["transactionId"] = int(transaction_id)
        profile.update(chargingProfileId=profile_id, chargingSchedule=schedule)
        return call16.SetChargingProfile(connector_id=connector, cs_charging_profiles=profile)
    if transaction_id is not None:
        profile["transactionId"] = transaction_id
    profile.update(id=profile_id, chargingSchedule=[{"id": profile_id, **schedule}])
    return call201.SetChargingProfile(evse_id=connector, charging_profile=profile)


def charger(version: str, name: str = "cp-1", **settings: Any) -> SimulatedCharger:
    settings = {"meter_interval_s": METER_INTERVAL_S, **settings}
    return SimulatedCharger(name, version, **settings)


def car(**settings: Any) -> Car:
    return Car(
        **{"phases": 3, "max_current_a": 16.0, "energy_need_wh": 50_000.0, "follow_delay_s": FOLLOW_DELAY_S, **settings}
    )


# --- the tests ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", VERSIONS)
def test_boot_start_and_meter_values_with_the_three_measurands(version):
    async def test() -> None:
        async with Csms() as csms, charger(version) as cp:
            await cp.connect(csms.url)
            await eventually(lambda: csms.messages("cp-1", "StatusNotification"), what="StatusNotification")
            assert len(csms.messages("cp-1", "BootNotification")) == 1
            first_status = csms.messages("cp-1", "StatusNotification")[0].payload
            assert first_status.get("status", first_status.get("connector_status")) == "Available"

            transaction = await cp.plug(car(), id_tag="TAG-1")
            await eventually(lambda: len(meter_messages(csms, "cp-1")) >= 2, what="meter values")
            (start,) = starts(csms, "cp-1")
            assert transaction_of(start) == transaction.id
            if version == "1.6":
                assert start.payload["id_tag"] == "TAG-1" and start.payload["connector_id"] == 1
                assert start.payload["meter_start"] == 0
            else:
                assert start.payload["evse"] == {"id": 1, "connector_id": 1}
                assert start.payload["id_token"]["id_token"] == "TAG-1"
                assert len(transaction.id) == 32  # uuid4 hex
                seq_nos = [m.payload["seq_no"] for m in csms.messages("cp-1", "TransactionEvent")]
                assert seq_nos == sorted(seq_nos) and len(set(seq_nos)) == len(seq_nos)
            meter = meter_messages(csms, "cp-1")[-1]
            assert transaction_of(meter) == transaction.id
            values = sampled(meter)
            assert values[("Power.Active.Import", None)] == pytest.approx(11_040, abs=1)  # 3 x 16 A x 230 V
            for phase in ("L1", "L2", "L3"):
                assert values[("Current.Import", phase)] == pytest.approx(16, abs=0.01)
            registers = [sampled(m)[("Energy.Active.Import.Register", None)] for m in meter_messages(csms, "cp-1")]
            assert registers == sorted(registers) and registers[-1] > 0

    run(test)


@pytest.mark.parametrize("version", VERSIONS)
def test_heartbeats_go_out_when_nothing_else_does_and_are_skipped_while_meter_values_do(version):
    async def test() -> None:
        async with Csms(heartbeat_interval_s=1) as csms, charger(version) as idle, charger(version, "cp-2") as busy:
            await idle.connect(csms.url)
            await busy.connect(csms.url)
            await busy.plug(car(), id_tag="TAG-2")
            await eventually(lambda: len(csms.messages("cp-1", "Heartbeat")) >= 2, what="an idle charger's heartbeats")
            before = len(csms.messages("cp-2", "Heartbeat"))
            await asyncio.sleep(2.5)  # more than two intervals, in which meter values go out every 0.2 s
            assert len(csms.messages("cp-2", "Heartbeat")) == before
            assert len(meter_messages(csms, "cp-2")) >= 10

    run(test)


@pytest.mark.parametrize("version", VERSIONS)
def test_a_tx_profile_in_amperes_is_accepted_and_followed_within_the_follow_delay(version):
    async def test() -> None:
        async with Csms() as csms, charger(version) as cp:
            await cp.connect(csms.url)
            transaction = await cp.plug(car())
            await eventually(lambda: cp.draw_w == pytest.approx(11_040), what="full draw")
            answer = await csms.send(
                "cp-1",
                set_profile(
                    version, profile_id=7, purpose="TxProfile", limits_a=[(0, 8.0)], transaction_id=transaction.id
                ),
            )
            sent_at = time.time()
            assert answer.status == "Accepted"
            assert cp.limit_w == pytest.approx(8 * 3 * 230)
            await eventually(lambda: cp.draw_w == pytest.approx(5_520), FOLLOW_DELAY_S + 2, "the car to follow")
            lowered = next(s for s in cp.record.samples if s.draw_w == pytest.approx(5_520))
            assert sent_at - 0.1 + FOLLOW_DELAY_S <= lowered.at + 0.1  # not before the car's delay ...
            assert lowered.at <= sent_at + FOLLOW_DELAY_S + 0.5  # ... and not much after it
            (event,) = cp.record.profiles
            assert (event.purpose, event.unit, event.limits, event.accepted) == ("TxProfile", "A", (8.0,), True)
            # The CSMS sees it in the meter values too.
            await eventually(
                lambda: sampled(meter_messages(csms, "cp-1")[-1])[("Current.Import", "L1")] == pytest.approx(8),
                what="8 A in the meter values",
            )

    run(test)


@pytest.mark.parametrize("version", VERSIONS)
def test_profiles_that_break_the_rules_are_rejected(version):
    async def test() -> None:
        async with Csms() as csms, charger(version) as cp:
            await cp.connect(csms.url)
            transaction = await cp.plug(car())
            not_increasing = set_profile(
                version,
                profile_id=8,
                purpose="TxProfile",
                limits_a=[(0, 16.0), (60, 10.0), (60, 8.0)],
                transaction_id=transaction.id,
            )
            assert (await csms.send("cp-1", not_increasing)).status == "Rejected"
            other_transaction = "999" if version == "1.6" else "f" * 32
            unknown = set_profile(
                version, profile_id=9, purpose="TxProfile", limits_a=[(0, 8.0)], transaction_id=other_transaction
            )
            assert (await csms.send("cp-1", unknown)).status == "Rejected"
            assert [event.accepted for event in cp.record.profiles] == [False, False]
            assert "does not increase" in (cp.record.profiles[0].reason or "")
            assert cp.limit_w == pytest.approx(32 * 3 * 230)  # nothing installed

    run(test)


@pytest.mark.parametrize("version", VERSIONS)
def test_when_a_tx_profile_expires_the_draw_falls_back_to_the_tx_default_profile(version):
    async def test() -> None:
        async with Csms() as csms, charger(version) as cp:
            await cp.connect(csms.url)
            default = set_profile(version, profile_id=1, purpose="TxDefaultProfile", limits_a=[(0, 10.0)], connector=0)
            assert (await csms.send("cp-1", default)).status == "Accepted"
            transaction = await cp.plug(car())
            await eventually(lambda: cp.draw_w == pytest.approx(6_900), what="the TxDefault limit")  # 3 x 10 A
            valid_to = time.time() + 1.5
            tx = set_profile(
                version,
                profile_id=2,
                purpose="TxProfile",
                limits_a=[(0, 6.0)],
                transaction_id=transaction.id,
                valid_to=valid_to,
            )
            assert (await csms.send("cp-1", tx)).status == "Accepted"
            await eventually(lambda: cp.draw_w == pytest.approx(4_140), what="the TxProfile limit")  # 3 x 6 A
            await eventually(lambda: cp.draw_w == pytest.approx(6_900), what="the fallback to TxDefault")
            assert time.time() >= valid_to

    run(test)


@pytest.mark.parametrize("version", VERSIONS)
def test_the_transaction_stops_when_the_cars_need_is_met(version):
    async def test() -> None:
        # 11 kW at 360x: 20 Wh take 0.02 wall seconds.
        async with Csms() as csms, charger(version, time_scale=360.0) as cp:
            await cp.connect(csms.url)
            transaction = await cp.plug(car(energy_need_wh=20.0))
            await eventually(lambda: stops(csms, "cp-1"), what="the stop")
            (stop,) = stops(csms, "cp-1")
            assert transaction_of(stop) == transaction.id
            if version == "1.6":
                assert stop.payload["meter_stop"] == 20
            else:
                assert stop.payload["transaction_info"]["stopped_reason"] == "StoppedByEV"
                assert sampled(stop)[("Energy.Active.Import.Register", None)] == pytest.approx(20)
            assert cp.transaction is None and cp.meter_wh == pytest.approx(20)
            (record,) = cp.record.transactions
            assert record.energy_wh == pytest.approx(20) and record.stop_reason == "energy met"
            await eventually(
                lambda: any(
                    m.payload.get("status", m.payload.get("connector_status")) == "Available"
                    for m in csms.messages("cp-1", "StatusNotification")
                    if m.at >= stop.at
                ),
                what="Available after the stop",
            )

    run(test)


@pytest.mark.parametrize("version", VERSIONS)
def test_a_reconnected_charger_goes_on_with_the_same_transaction(version):
    async def test() -> None:
        async with Csms() as csms, charger(version) as cp:
            await cp.connect(csms.url)
            transaction = await cp.plug(car())
            await eventually(lambda: meter_messages(csms, "cp-1"), what="meter values")
            await cp.disconnect()
            await eventually(lambda: csms.disconnects["cp-1"] == 1, what="the CSMS to see the drop")
            dropped_at = time.time()
            await cp.reconnect()
            await eventually(
                lambda: any(m.at > dropped_at for m in meter_messages(csms, "cp-1")), what="meter values again"
            )
            assert {transaction_of(m) for m in meter_messages(csms, "cp-1")} == {transaction.id}
            assert len(starts(csms, "cp-1")) == 1
            assert len(csms.messages("cp-1", "BootNotification")) == 1
            await cp.reconnect(reboot=True)
            assert len(csms.messages("cp-1", "BootNotification")) == 2
            assert cp.transaction is transaction and len(starts(csms, "cp-1")) == 1
            await cp.unplug()
            await eventually(lambda: stops(csms, "cp-1"), what="the stop")

    run(test)


def test_a_charger_dropped_by_the_csms_reconnects_by_itself_and_goes_on():
    async def test() -> None:
        async with Csms() as csms, charger("2.0.1", auto_reconnect=True) as cp:
            await cp.connect(csms.url)
            transaction = await cp.plug(car())
            await csms.points["cp-1"]._connection.close()  # the CSMS restarts, say
            await eventually(lambda: csms.disconnects["cp-1"] == 1, what="the drop")
            dropped_at = time.time()
            await eventually(
                lambda: any(m.at > dropped_at for m in meter_messages(csms, "cp-1")), what="meter values again"
            )
            assert cp.online and cp.record.connects == 2
            assert {transaction_of(m) for m in meter_messages(csms, "cp-1")} == {transaction.id}
            assert len(csms.messages("cp-1", "BootNotification")) == 1

    run(test)


@pytest.mark.parametrize("version", VERSIONS)
def test_remote_start_and_stop(version):
    async def test() -> None:
        async with Csms() as csms, charger(version) as cp:
            await cp.connect(csms.url)
            if version == "1.6":
                request: Any = call16.RemoteStartTransaction(id_tag="REMOTE-1", connector_id=1)
            else:
                request = call201.RequestStartTransaction(
                    id_token={"idToken": "REMOTE-1", "type": "Central"}, remote_start_id=5, evse_id=1
                )
            assert (await csms.send("cp-1", request)).status == "Accepted"
            await eventually(lambda: cp.transaction is not None and starts(csms, "cp-1"), what="the remote start")
            (start,) = starts(csms, "cp-1")
            if version == "2.0.1":
                assert start.payload["trigger_reason"] == "RemoteStart"
                assert start.payload["transaction_info"]["remote_start_id"] == 5
            assert cp.transaction is not None
            transaction_id = cp.transaction.id
            if version == "1.6":
                stop_request: Any = call16.RemoteStopTransaction(transaction_id=int(transaction_id))
            else:
                stop_request = call201.RequestStopTransaction(transaction_id=transaction_id)
            assert (await csms.send("cp-1", stop_request)).status == "Accepted"
            await eventually(lambda: stops(csms, "cp-1"), what="the remote stop")
            assert cp.record.transactions[0].stop_reason == "remote"

    run(test)


def test_an_unknown_charger_is_refused_with_its_status_and_a_password_is_sent():
    async def test() -> None:
        async with Csms(known={"cp-known"}, passwords={"cp-known": "s3cret"}) as csms:
            async with charger("1.6", "cp-unknown") as stranger:
                with pytest.raises(ChargerRefused) as refused:
                    await stranger.connect(csms.url)
                assert refused.value.status == 404
                assert stranger.state.value == "refused"
            async with charger("2.0.1", "cp-known", password="wrong") as impostor:
                with pytest.raises(ChargerRefused) as refused:
                    await impostor.connect(csms.url)
                assert refused.value.status == 401
            async with charger("2.0.1", "cp-known", password="s3cret") as known:
                await known.connect(csms.url)
                assert known.online

    run(test)


def test_a_small_mixed_fleet_connects_and_charges():
    async def test() -> None:
        async with Csms() as csms:
            config = FleetConfig(
                url=csms.url,
                chargers=6,
                prefix="fleet-",
                meter_interval_s=METER_INTERVAL_S,
                duration_s=None,
                progress_interval_s=None,
                connect_rate=50,
            )
            async with Fleet(config, progress=None) as fleet:
                await eventually(lambda: fleet.counts()["charging"] == 6, what="every charger charging")
                protocols = {cp.id: cp.protocol.version for cp in fleet.chargers}
                assert protocols == {
                    "fleet-1": "1.6",
                    "fleet-2": "2.0.1",
                    "fleet-3": "1.6",
                    "fleet-4": "2.0.1",
                    "fleet-5": "1.6",
                    "fleet-6": "2.0.1",
                }
            result = fleet.result
            assert result is not None and result.ok
            assert result.ever_connected == 6 and result.online_at_end == 6 and result.transactions == 6
            assert all(len(stops(csms, f"fleet-{n}")) == 1 for n in range(1, 7))
            assert result.as_json()["per_charger"][0]["id"] == "fleet-1"

    run(test)
