"""OCPP 1.6J: what a charger says, handed to the central system; what the central system tells it."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from ocpp.routing import after, on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import (
    Action,
    AuthorizationStatus,
    ChargingProfileStatus,
    RegistrationStatus,
    RemoteStartStopStatus,
)

from ocpp_service.csms import Csms
from ocpp_service.limits import Profile
from ocpp_service.meters import read_meter_values
from ocpp_service.protocol_base import HEARTBEAT_S, PROFILE_ANSWER_S, Guarded


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _wh(value: int | float | Decimal | None) -> float | None:
    return None if value is None else float(value)


class ChargerV16(Guarded, ChargePoint):
    protocol = "ocpp1.6"

    def __init__(self, charger_id: str, connection, csms: Csms) -> None:
        super().__init__(charger_id, connection, response_timeout=10)
        self.csms = csms
        self._started = ""  # the transaction id the last StartTransaction was given

    @on(Action.boot_notification)
    def on_boot(self, charge_point_vendor: str, charge_point_model: str, **_) -> call_result.BootNotification:
        self.csms.links[self.id].wake.set()  # its default profile goes (again) once it has booted
        return call_result.BootNotification(now_iso(), HEARTBEAT_S, RegistrationStatus.accepted)

    @on(Action.heartbeat)
    def on_heartbeat(self) -> call_result.Heartbeat:
        return call_result.Heartbeat(now_iso())

    @on(Action.status_notification)
    def on_status(self, **_) -> call_result.StatusNotification:
        return call_result.StatusNotification()

    @on(Action.authorize)
    def on_authorize(self, id_tag: str) -> call_result.Authorize:
        return call_result.Authorize({"status": AuthorizationStatus.accepted})

    @on(Action.start_transaction)
    def on_start_transaction(self, connector_id: int, id_tag: str, meter_start: int, timestamp: str,
                             **_) -> call_result.StartTransaction:  # fmt: skip
        transaction_id = self._started = self.csms.next_transaction_id()
        self.csms.transaction_started(self.id, transaction_id, _wh(meter_start), id_tag)
        return call_result.StartTransaction(int(transaction_id), {"status": AuthorizationStatus.accepted})

    @after(Action.start_transaction)
    def after_start_transaction(self, **_) -> None:
        self.csms.transaction_announced(self.id, self._started)

    @on(Action.meter_values)
    def on_meter_values(self, connector_id: int, meter_value: list, transaction_id: int | None = None,
                        **_) -> call_result.MeterValues:  # fmt: skip
        tx = None if transaction_id is None else str(transaction_id)
        self.csms.meter(self.id, tx, read_meter_values(meter_value))
        return call_result.MeterValues()

    @on(Action.stop_transaction)
    def on_stop_transaction(self, meter_stop: int, timestamp: str, transaction_id: int,
                            **kwargs) -> call_result.StopTransaction:  # fmt: skip
        reading = read_meter_values(kwargs.get("transaction_data") or [])
        reading.energy_wh = _wh(meter_stop)
        self.csms.transaction_ended(self.id, str(transaction_id), reading)
        return call_result.StopTransaction({"status": AuthorizationStatus.accepted})

    async def send_profile(self, profile: Profile) -> bool:
        answer = await self.quick_call("SetChargingProfile", profile.v16_payload(), PROFILE_ANSWER_S)
        return answer.get("status") == ChargingProfileStatus.accepted

    async def remote_start(self, id_tag: str, remote_start_id: int) -> bool:
        answer = await self.call(call.RemoteStartTransaction(id_tag=id_tag, connector_id=1), suppress=False)
        return answer.status == RemoteStartStopStatus.accepted
