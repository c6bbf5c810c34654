"""grid_common.ocpp_lean.calls against the `ocpp` library itself: the same peer's call handled by a library
ChargePoint and by one with LeanCalls before it must send the same answer (results, CallErrors, schema
refusals), and the same call of our own must send the same message and return the same result."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ocpp.charge_point import camel_to_snake_case, serialize_as_dict, snake_to_camel_case
from ocpp.exceptions import OCPPError
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v16.enums import RegistrationStatus
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.datatypes import StatusInfoType
from ocpp.v201.enums import Action as Action201
from ocpp.v201.enums import RegistrationStatusEnumType

from grid_common.ocpp_lean.calls import LeanCalls, as_dict, to_camel_case, to_snake_case


class Wire:
    """A connection that keeps what is sent and answers our calls with what the test gives it."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.answer: Any = None

    async def send(self, message: str) -> None:
        self.sent.append(message)

    async def recv(self) -> str:
        await asyncio.sleep(3600)
        return ""


class Station16(ChargePoint16):
    @on(Action16.boot_notification)
    def on_boot(self, charge_point_vendor: str, charge_point_model: str, **_: Any) -> result16.BootNotification:
        return result16.BootNotification(current_time="2026-12-07T00:00:00Z", interval=60,
                                         status=RegistrationStatus.accepted)  # fmt: skip

    @on(Action16.meter_values)
    def on_meter_values(self, connector_id: int, meter_value: list, call_unique_id: str, **_: Any) -> Any:
        assert meter_value[0]["sampled_value"][0]["value"] == "7400.0"
        assert call_unique_id
        return result16.MeterValues()

    @on(Action16.heartbeat)
    async def on_heartbeat(self) -> result16.Heartbeat:
        raise ValueError("a handler that fails")


class Station201(ChargePoint201):
    @on(Action201.boot_notification)
    def on_boot(self, charging_station: dict, reason: str, **_: Any) -> result201.BootNotification:
        busy = StatusInfoType(reason_code="Busy", additional_info=None)
        return result201.BootNotification(current_time="2026-12-07T00:00:00Z", interval=60,
                                          status=RegistrationStatusEnumType.rejected, status_info=busy)  # fmt: skip


class Lean16(LeanCalls, Station16):
    pass


class Lean201(LeanCalls, Station201):
    pass


METER_VALUE_16 = [{"timestamp": "2026-12-07T00:00:00Z", "sampledValue": [
    {"value": "7400.0", "measurand": "Power.Active.Import", "unit": "W"}]}]  # fmt: skip
CALLS = [
    ("1.6", [2, "a", "BootNotification", {"chargePointVendor": "v", "chargePointModel": "m"}]),
    ("1.6", [2, "b", "MeterValues", {"connectorId": 1, "transactionId": 3, "meterValue": METER_VALUE_16}]),
    ("1.6", [2, "c", "Heartbeat", {}]),  # the handler raises: an InternalError
    ("1.6", [2, "d", "MeterValues", {"connectorId": "one", "meterValue": METER_VALUE_16}]),  # the schema refuses
    ("1.6", [2, "e", "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}]),
    ("2.0.1", [2, "f", "BootNotification", {"chargingStation": {"model": "m", "vendorName": "v"}, "reason": "Reset"}]),
    ("2.0.1", [2, "g", "BootNotification", {"chargingStation": {"model": "m"}, "reason": "PowerUp"}]),  # refused
]


def pair(version: str) -> tuple[Any, Any]:
    if version == "1.6":
        return Station16("cp", Wire()), Lean16("cp", Wire())
    return Station201("cp", Wire()), Lean201("cp", Wire())


@pytest.mark.parametrize(("version", "message"), CALLS, ids=[f"{v}-{m[2]}-{m[1]}" for v, m in CALLS])
def test_a_peers_call_is_answered_as_the_library_answers_it(version, message):
    library, lean = pair(version)

    async def handle(station: Any) -> list:
        await station.route_message(json.dumps(message))
        return [json.loads(sent) for sent in station._connection.sent]

    expected, got = asyncio.run(handle(library)), asyncio.run(handle(lean))
    assert len(expected) == 1
    assert got == expected


@pytest.mark.parametrize(
    ("version", "request_payload", "answer", "expected"),
    [
        ("1.6", call16.Heartbeat(), {"currentTime": "2026-12-07T00:00:00Z"}, None),
        ("1.6", call16.StatusNotification(connector_id=1, error_code="NoError", status="Charging"), {}, None),
        (
            "2.0.1",
            call201.BootNotification(charging_station={"model": "m", "vendor_name": "v"}, reason="PowerUp"),
            {
                "currentTime": "2026-12-07T00:00:00Z",
                "interval": 30,
                "status": "Accepted",
                "statusInfo": {"reasonCode": "ok"},
            },
            None,
        ),
        ("1.6", call16.Heartbeat(), [4, "x", "NotImplemented", "no", {}], OCPPError),
    ],
)
def test_a_call_of_our_own_is_sent_and_read_as_the_library_does(version, request_payload, answer, expected):
    async def make(station: Any) -> tuple[list, Any]:
        async def reply() -> None:
            while not station._connection.sent:
                await asyncio.sleep(0)
            unique_id = json.loads(station._connection.sent[0])[1]
            text = [3, unique_id, answer] if isinstance(answer, dict) else [4, unique_id, *answer[2:]]
            await station.route_message(json.dumps(text))

        replying = asyncio.ensure_future(reply())
        try:
            async with asyncio.timeout(5):
                result: Any = await station.call(request_payload, suppress=False, unique_id="u1")
        except OCPPError as error:
            result = type(error)
        finally:
            replying.cancel()
        return [json.loads(sent) for sent in station._connection.sent], result

    library, lean = pair(version)
    expected_sent, expected_result = asyncio.run(make(library))
    got_sent, got_result = asyncio.run(make(lean))
    assert got_sent == expected_sent
    assert got_result == expected_result
    if expected is not None:
        assert issubclass(got_result, expected)


KEYS = st.sampled_from(["connectorId", "meterValue", "sampledValue", "chargingProfileId", "evseId", "idTag",
                        "transactionId", "x", "numberPhases", "startPeriod", "customData", "vendorId"])  # fmt: skip
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=12,
)


@given(JSON)
def test_keys_are_renamed_as_the_library_renames_them(data):
    assert to_snake_case(data) == camel_to_snake_case(data)
    snake = camel_to_snake_case(data)
    assert to_camel_case(snake) == snake_to_camel_case(snake)


@dataclass
class Inner:
    reason_code: str
    additional_info: str | None = None


@dataclass
class Outer:
    status: str
    inner: Inner | None
    items: list
    mapping: dict
    pair: tuple


@given(st.text(max_size=3), st.lists(st.integers(), max_size=3), st.booleans())
def test_dataclasses_become_the_dicts_the_library_makes(status, numbers, nested):
    value = Outer(status, Inner("r") if nested else None, [Inner("a"), *numbers], {"k": numbers}, (1, 2))
    assert as_dict(value) == serialize_as_dict(value)
    assert as_dict(Inner("r", "more")) == serialize_as_dict(Inner("r", "more"))


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_a_late_answer_to_an_abandoned_call_is_dropped_quietly_and_the_awaited_one_returned(version, caplog):
    """A call given up (timed out, or cancelled as a fleet closes) is answered later: the next call skips that
    answer, as the library does, but at debug level rather than with an error line per charger."""

    async def make(station: Any) -> Any:
        async def answer_late_then_right() -> None:
            while not station._connection.sent:
                await asyncio.sleep(0)
            await station.route_message(json.dumps([3, "given-up", {}]))
            await station.route_message(json.dumps([3, "u1", {"currentTime": "2026-12-07T00:00:00Z"}]))

        replying = asyncio.ensure_future(answer_late_then_right())
        request = call16.Heartbeat() if version == "1.6" else call201.Heartbeat()
        try:
            return await station.call(request, suppress=False, unique_id="u1")
        finally:
            replying.cancel()

    library, lean = pair(version)
    expected = asyncio.run(make(library))
    caplog.clear()
    with caplog.at_level("DEBUG"):
        assert asyncio.run(make(lean)) == expected
    assert [record.levelname for record in caplog.records if "given-up" in record.getMessage()] == ["DEBUG"]


def test_no_answer_within_the_timeout_is_a_timeout_as_with_the_library():
    async def wait(station: Any) -> type[BaseException] | None:
        station._response_timeout = 0.05
        try:
            await station.call(call16.Heartbeat(), unique_id="u1")
        except TimeoutError as error:
            return type(error)
        return None

    library, lean = pair("1.6")
    assert asyncio.run(wait(lean)) is asyncio.run(wait(library)) is TimeoutError
