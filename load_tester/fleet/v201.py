"""The OCPP 2.0.1 side of a simulated charger: its messages out, and the CSMS's requests in.

A `V201Session` is the `ocpp` library's 2.0.1 ChargePoint on one WebSocket connection; like the 1.6 one it
holds no charging state. A transaction is told in TransactionEvents (Started, Updated, Ended) numbered by
seqNo; its id is the charger's. Handlers never await a call of their own (see v16.py).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ocpp.routing import on  # type: ignore[import-untyped, unused-ignore]
from ocpp.v201 import ChargePoint, call, call_result  # type: ignore[import-untyped, unused-ignore]
from ocpp.v201.enums import (  # type: ignore[import-untyped, unused-ignore]
    Action,
    AuthorizationStatusEnumType,
    BootReasonEnumType,
    ChargingProfileStatusEnumType,
    ChargingStateEnumType,
    ClearChargingProfileStatusEnumType,
    ConnectorStatusEnumType,
    EnergyTransferModeEnumType,
    IdTokenEnumType,
    MeasurandEnumType,
    PhaseEnumType,
    ReadingContextEnumType,
    ReasonEnumType,
    RequestStartStopStatusEnumType,
    TransactionEventEnumType,
    TriggerReasonEnumType,
)

from grid_common.ocpp_lean.calls import LeanCalls
from load_tester.fleet.profiles import PURPOSE_NAMES, parse_v201
from load_tester.fleet.session import (
    BootAnswer,
    ChargerHandlers,
    ConnectorState,
    MeterReading,
    StartRefused,
    StartTrigger,
    StopReason,
    Transaction,
    ocpp_time,
    summarise_profile,
)

EVSE_ID = 1
CONNECTOR_ID = 1
CHARGING_STATES = {
    ConnectorState.AVAILABLE: ChargingStateEnumType.idle,
    ConnectorState.PREPARING: ChargingStateEnumType.ev_connected,
    ConnectorState.CHARGING: ChargingStateEnumType.charging,
    ConnectorState.SUSPENDED_EV: ChargingStateEnumType.suspended_ev,
    ConnectorState.SUSPENDED_EVSE: ChargingStateEnumType.suspended_evse,
    ConnectorState.FINISHING: ChargingStateEnumType.ev_connected,
}
# (triggerReason, stoppedReason) of the Ended event.
STOPS = {
    StopReason.ENERGY_MET: (TriggerReasonEnumType.ev_departed, ReasonEnumType.stopped_by_ev),
    StopReason.UNPLUGGED: (TriggerReasonEnumType.ev_communication_lost, ReasonEnumType.ev_disconnected),
    StopReason.REMOTE: (TriggerReasonEnumType.remote_stop, ReasonEnumType.remote),
    StopReason.LOCAL: (TriggerReasonEnumType.stop_authorized, ReasonEnumType.local),
}
STARTS = {
    StartTrigger.AUTHORIZED: TriggerReasonEnumType.authorized,
    StartTrigger.REMOTE: TriggerReasonEnumType.remote_start,
}


def _value(value: float, measurand: str, unit: str, context: str, phase: str | None = None) -> dict[str, Any]:
    sampled: dict[str, Any] = {
        "value": round(value, 2),
        "context": context,
        "measurand": measurand,
        "unit_of_measure": {"unit": unit},
    }
    if phase is not None:
        sampled["phase"] = phase
    return sampled


def meter_value(reading: MeterReading, context: str, *, register_only: bool = False) -> dict[str, Any]:
    """Power.Active.Import (W), Current.Import on L1, L2, L3 (A), Energy.Active.Import.Register (Wh)."""
    energy = _value(reading.energy_wh, MeasurandEnumType.energy_active_import_register, "Wh", context)
    if register_only:
        return {"timestamp": ocpp_time(reading.at), "sampled_value": [energy]}
    values = [_value(reading.power_w, MeasurandEnumType.power_active_import, "W", context)]
    for phase, current in zip((PhaseEnumType.l1, PhaseEnumType.l2, PhaseEnumType.l3), reading.currents_a, strict=True):
        values.append(_value(current, MeasurandEnumType.current_import, "A", context, phase))
    values.append(energy)
    return {"timestamp": ocpp_time(reading.at), "sampled_value": values}


class V201Session(LeanCalls, ChargePoint):
    def __init__(
        self,
        charger_id: str,
        connection: Any,
        handlers: ChargerHandlers,
        *,
        validate: bool = True,
        response_timeout_s: float = 30.0,
        vendor: str = "smart-grid-fleet",  # 1.6 allows 20 characters
        model: str = "fleet-simulator",
        logger: logging.Logger | None = None,
    ) -> None:
        super().__init__(charger_id, connection, response_timeout=response_timeout_s, logger=logger or _LOGGER)
        self._handlers = handlers
        self._skip_validation = not validate
        if not validate:  # nor the CSMS's requests (the answers to our calls are covered by `call`'s flag)
            for route in self.route_map.values():
                route["_skip_schema_validation"] = True
        self._vendor = vendor
        self._model = model

    async def _request(self, payload: Any) -> Any:
        """A call whose CallError raises (the library's default would return None and hide it)."""
        return await self.call(payload, suppress=False, skip_schema_validation=self._skip_validation)

    # --- out -----------------------------------------------------------------------------------------------
    async def serve(self) -> None:
        await self.start()  # the library's read loop

    async def boot(self) -> BootAnswer:
        answer = await self._request(
            call.BootNotification(
                charging_station={"model": self._model, "vendor_name": self._vendor},
                reason=BootReasonEnumType.power_up,
            )
        )
        return BootAnswer(status=str(answer.status), interval_s=float(answer.interval))

    async def heartbeat(self) -> None:
        await self._request(call.Heartbeat())

    async def status(self, state: ConnectorState) -> None:
        connector_status = (
            ConnectorStatusEnumType.available if state is ConnectorState.AVAILABLE else ConnectorStatusEnumType.occupied
        )
        await self._request(
            call.StatusNotification(
                timestamp=ocpp_time(time.time()),
                connector_status=connector_status,
                evse_id=EVSE_ID,
                connector_id=CONNECTOR_ID,
            )
        )

    def _info(self, transaction: Transaction, **more: Any) -> dict[str, Any]:
        info: dict[str, Any] = {"transaction_id": transaction.id, "charging_state": CHARGING_STATES[transaction.state]}
        if transaction.remote_start_id is not None:
            info["remote_start_id"] = transaction.remote_start_id
        info.update(more)
        return info

    async def start_transaction(self, transaction: Transaction, reading: MeterReading) -> str:
        answer = await self._request(
            call.TransactionEvent(
                event_type=TransactionEventEnumType.started,
                timestamp=ocpp_time(reading.at),
                trigger_reason=STARTS[transaction.trigger],
                seq_no=transaction.next_seq_no(),
                transaction_info=self._info(transaction),
                meter_value=[meter_value(reading, ReadingContextEnumType.transaction_begin, register_only=True)],
                number_of_phases_used=transaction.car.phases,
                evse={"id": EVSE_ID, "connector_id": CONNECTOR_ID},
                id_token={"id_token": transaction.id_tag, "type": IdTokenEnumType.iso14443},
            )
        )
        info = answer.id_token_info
        status = info.get("status") if isinstance(info, dict) else None
        if status is not None and status != AuthorizationStatusEnumType.accepted:
            raise StartRefused(f"id token {transaction.id_tag!r}: {status}")
        return transaction.id

    async def meter_values(self, transaction: Transaction, reading: MeterReading) -> None:
        changed = transaction.extra.pop("state_changed", False)
        await self._request(
            call.TransactionEvent(
                event_type=TransactionEventEnumType.updated,
                timestamp=ocpp_time(reading.at),
                trigger_reason=(
                    TriggerReasonEnumType.charging_state_changed
                    if changed
                    else TriggerReasonEnumType.meter_value_periodic
                ),
                seq_no=transaction.next_seq_no(),
                transaction_info=self._info(transaction),
                meter_value=[meter_value(reading, ReadingContextEnumType.sample_periodic)],
            )
        )

    async def notify_charging_needs(self, transaction: Transaction) -> str | None:
        car = transaction.car
        transfer = (
            EnergyTransferModeEnumType.ac_three_phase if car.phases == 3 else EnergyTransferModeEnumType.ac_single_phase
        )
        needs: dict[str, Any] = {
            "requested_energy_transfer": transfer,
            "ac_charging_parameters": {
                "energy_amount": round(car.remaining_wh),
                "ev_min_current": round(car.min_current_a),
                "ev_max_current": round(car.max_current_a),
                "ev_max_voltage": round(car.voltage),
            },
        }
        if car.departure_at is not None:
            needs["departure_time"] = ocpp_time(car.departure_at)
        answer = await self._request(call.NotifyEVChargingNeeds(charging_needs=needs, evse_id=EVSE_ID))
        return str(answer.status)

    async def stop_transaction(self, transaction: Transaction, reading: MeterReading) -> None:
        trigger, reason = STOPS[transaction.stop_reason or StopReason.LOCAL]
        await self._request(
            call.TransactionEvent(
                event_type=TransactionEventEnumType.ended,
                timestamp=ocpp_time(reading.at),
                trigger_reason=trigger,
                seq_no=transaction.next_seq_no(),
                transaction_info=self._info(transaction, stopped_reason=reason),
                meter_value=[meter_value(reading, ReadingContextEnumType.transaction_end)],
                id_token={"id_token": transaction.id_tag, "type": IdTokenEnumType.iso14443},
            )
        )

    # --- in ------------------------------------------------------------------------------------------------
    @on(Action.set_charging_profile)
    async def on_set_charging_profile(
        self, evse_id: int, charging_profile: dict[str, Any], **_: Any
    ) -> call_result.SetChargingProfile:
        schedules = charging_profile.get("charging_schedule")
        first = schedules[0] if isinstance(schedules, list) and schedules else None
        summary = summarise_profile(charging_profile, first, id_key="id")
        accepted, reason = await self._handlers.set_charging_profile(
            lambda: parse_v201(charging_profile, int(evse_id)), summary
        )
        return call_result.SetChargingProfile(
            status=ChargingProfileStatusEnumType.accepted if accepted else ChargingProfileStatusEnumType.rejected,
            status_info=None if reason is None else {"reason_code": "InvalidProfile", "additional_info": reason[:512]},
        )

    @on(Action.clear_charging_profile)
    def on_clear_charging_profile(
        self,
        charging_profile_id: int | None = None,
        charging_profile_criteria: dict[str, Any] | None = None,
        **_: Any,
    ) -> call_result.ClearChargingProfile:
        criteria = charging_profile_criteria or {}
        purpose = criteria.get("charging_profile_purpose")
        cleared = self._handlers.clear_charging_profile(
            charging_profile_id,
            criteria.get("evse_id"),
            None if purpose is None else PURPOSE_NAMES.get(purpose),
            criteria.get("stack_level"),
        )
        return call_result.ClearChargingProfile(
            status=ClearChargingProfileStatusEnumType.accepted
            if cleared
            else ClearChargingProfileStatusEnumType.unknown
        )

    @on(Action.request_start_transaction)
    def on_request_start_transaction(
        self,
        id_token: dict[str, Any],
        remote_start_id: int,
        evse_id: int | None = None,
        charging_profile: dict[str, Any] | None = None,
        **_: Any,
    ) -> call_result.RequestStartTransaction:
        profile = charging_profile
        accepted, transaction_id = self._handlers.remote_start(
            str(id_token.get("id_token", "")),
            evse_id,
            remote_start_id,
            None if profile is None else (lambda: parse_v201(profile, EVSE_ID)),
        )
        return call_result.RequestStartTransaction(
            status=RequestStartStopStatusEnumType.accepted if accepted else RequestStartStopStatusEnumType.rejected,
            transaction_id=transaction_id,
        )

    @on(Action.request_stop_transaction)
    def on_request_stop_transaction(self, transaction_id: str, **_: Any) -> call_result.RequestStopTransaction:
        accepted = self._handlers.remote_stop(transaction_id)
        return call_result.RequestStopTransaction(
            status=RequestStartStopStatusEnumType.accepted if accepted else RequestStartStopStatusEnumType.rejected
        )


_LOGGER = logging.getLogger("load_tester.fleet.ocpp")
