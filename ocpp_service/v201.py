"""OCPP 2.0.1: what a charging station says, handed to the central system; what the central system tells it."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from ocpp.routing import after, on
from ocpp.v201 import ChargePoint, call, call_result
from ocpp.v201.enums import (
    Action,
    AuthorizationStatusEnumType,
    ChargingProfileStatusEnumType,
    IdTokenEnumType,
    NotifyEVChargingNeedsStatusEnumType,
    RegistrationStatusEnumType,
    RequestStartStopStatusEnumType,
    TransactionEventEnumType,
)

from ocpp_service.csms import ChargingNeeds, Csms
from ocpp_service.limits import Profile
from ocpp_service.meters import read_meter_values
from ocpp_service.protocol_base import HEARTBEAT_S, PROFILE_ANSWER_S, Guarded
from ocpp_service.v16 import now_iso

# Every registered charger has one EVSE with one connector (the registry's chargers are single-outlet).
EVSE_ID = 1


def read_time(value: str | None) -> float | None:
    """An OCPP dateTime (ISO 8601; without an offset it is UTC, as OCPP's times are) in wall seconds; ValueError
    for one that is not."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value)
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).timestamp()


class ChargerV201(Guarded, ChargePoint):
    protocol = "ocpp2.0.1"

    def __init__(self, charger_id: str, connection, csms: Csms) -> None:
        super().__init__(charger_id, connection, response_timeout=10)
        self.csms = csms

    @on(Action.boot_notification)
    def on_boot(self, charging_station: dict, reason: str, **_) -> call_result.BootNotification:
        self.csms.links[self.id].wake.set()
        return call_result.BootNotification(now_iso(), HEARTBEAT_S, RegistrationStatusEnumType.accepted)

    @on(Action.heartbeat)
    def on_heartbeat(self) -> call_result.Heartbeat:
        return call_result.Heartbeat(now_iso())

    @on(Action.status_notification)
    def on_status(self, **_) -> call_result.StatusNotification:
        return call_result.StatusNotification()

    @on(Action.authorize)
    def on_authorize(self, id_token: dict, **_) -> call_result.Authorize:
        return call_result.Authorize({"status": AuthorizationStatusEnumType.accepted})

    @on(Action.meter_values)
    def on_meter_values(self, evse_id: int, meter_value: list, **_) -> call_result.MeterValues:
        return call_result.MeterValues()  # outside a transaction: nothing to share

    @on(Action.notify_ev_charging_needs)
    def on_charging_needs(self, evse_id: int, charging_needs: dict, **_) -> call_result.NotifyEVChargingNeeds:
        """ISO 15118's energy and departure: the session is planned anew, and its TxProfile says the limits ahead
        (Accepted: a schedule follows, once its transaction has started if it has not yet)."""
        if evse_id != EVSE_ID:
            return call_result.NotifyEVChargingNeeds(
                NotifyEVChargingNeedsStatusEnumType.rejected,
                {
                    "reason_code": "UnknownEvse",
                    "additional_info": f"This charging station has one EVSE: {EVSE_ID}.",
                },
            )
        parameters = charging_needs.get("ac_charging_parameters") or charging_needs.get("dc_charging_parameters") or {}
        energy_wh = parameters.get("energy_amount")
        try:
            departure_at = read_time(charging_needs.get("departure_time"))
        except ValueError:
            return call_result.NotifyEVChargingNeeds(
                NotifyEVChargingNeedsStatusEnumType.rejected,
                {
                    "reason_code": "InvalidValue",
                    "additional_info": "departureTime is not a date and time.",
                },
            )
        needs = ChargingNeeds(None if energy_wh is None else float(energy_wh), departure_at, time.monotonic())
        self.csms.charging_needs(self.id, needs)
        return call_result.NotifyEVChargingNeeds(NotifyEVChargingNeedsStatusEnumType.accepted)

    @on(Action.transaction_event)
    def on_transaction_event(self, event_type: str, timestamp: str, trigger_reason: str, seq_no: int,
                             transaction_info: dict, **kwargs) -> call_result.TransactionEvent:  # fmt: skip
        transaction_id = str(transaction_info["transaction_id"])
        reading = read_meter_values(kwargs.get("meter_value") or [])
        if event_type == TransactionEventEnumType.started:
            id_token = (kwargs.get("id_token") or {}).get("id_token", "")
            self.csms.transaction_started(self.id, transaction_id, reading.energy_wh, id_token,
                                          kwargs.get("number_of_phases_used"))  # fmt: skip
            self.csms.meter(self.id, transaction_id, reading)
        elif event_type == TransactionEventEnumType.updated:
            self.csms.meter(self.id, transaction_id, reading)
        else:
            self.csms.transaction_ended(self.id, transaction_id, reading)
        return call_result.TransactionEvent()

    @after(Action.transaction_event)
    def after_transaction_event(self, event_type: str, transaction_info: dict, **_) -> None:
        if event_type == TransactionEventEnumType.started:
            self.csms.transaction_announced(self.id, str(transaction_info["transaction_id"]))

    async def send_profile(self, profile: Profile) -> bool:
        answer = await self.quick_call("SetChargingProfile", profile.v201_payload(), PROFILE_ANSWER_S)
        return answer.get("status") == ChargingProfileStatusEnumType.accepted

    async def remote_start(self, id_tag: str, remote_start_id: int) -> bool:
        request = call.RequestStartTransaction(
            id_token={"id_token": id_tag, "type": IdTokenEnumType.central}, remote_start_id=remote_start_id, evse_id=1
        )
        answer = await self.call(request, suppress=False)
        return answer.status == RequestStartStopStatusEnumType.accepted
