"""The OCPP 1.6J side of a simulated charger: its messages out, and the CSMS's requests in.

A `V16Session` is the `ocpp` library's 1.6 ChargePoint on one WebSocket connection. It holds no charging state:
it words what the charger decides (session.Session) and hands requests to the charger (ChargerHandlers).
Handlers never await a call of their own: the library answers requests on the loop that also reads the
answers to our calls, so a call from inside a handler would wait for itself.
"""

from __future__ import annotations

import logging
from typing import Any

from ocpp.routing import on  # type: ignore[import-untyped, unused-ignore]
from ocpp.v16 import ChargePoint, call, call_result  # type: ignore[import-untyped, unused-ignore]
from ocpp.v16.enums import (  # type: ignore[import-untyped, unused-ignore]
    Action,
    AuthorizationStatus,
    ChargePointErrorCode,
    ChargingProfileStatus,
    ClearChargingProfileStatus,
    Measurand,
    Phase,
    ReadingContext,
    Reason,
    RemoteStartStopStatus,
    UnitOfMeasure,
)

from grid_common.ocpp_lean.calls import LeanCalls
from load_tester.fleet.profiles import PURPOSE_NAMES, parse_v16
from load_tester.fleet.session import (
    BootAnswer,
    ChargerHandlers,
    ConnectorState,
    MeterReading,
    StartRefused,
    StopReason,
    Transaction,
    ocpp_time,
    summarise_profile,
)

CONNECTOR_ID = 1
STOP_REASONS = {
    StopReason.ENERGY_MET: Reason.ev_disconnected,  # the car is full and its driver takes it away
    StopReason.UNPLUGGED: Reason.ev_disconnected,
    StopReason.REMOTE: Reason.remote,
    StopReason.LOCAL: Reason.local,
}


def sampled_values(reading: MeterReading, context: ReadingContext) -> list[dict[str, Any]]:
    """Power.Active.Import (W), Current.Import on L1, L2, L3 (A), Energy.Active.Import.Register (Wh); 1.6
    carries values as strings."""
    values: list[dict[str, Any]] = [
        {
            "value": f"{reading.power_w:.1f}",
            "context": context,
            "measurand": Measurand.power_active_import,
            "unit": UnitOfMeasure.w,
        }
    ]
    for phase, current in zip((Phase.l1, Phase.l2, Phase.l3), reading.currents_a, strict=True):
        values.append(
            {
                "value": f"{current:.2f}",
                "context": context,
                "measurand": Measurand.current_import,
                "phase": phase,
                "unit": UnitOfMeasure.a,
            }
        )
    values.append(
        {
            "value": f"{reading.energy_wh:.1f}",
            "context": context,
            "measurand": Measurand.energy_active_import_register,
            "unit": UnitOfMeasure.wh,
        }
    )
    return values


class V16Session(LeanCalls, ChargePoint):
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
            call.BootNotification(charge_point_model=self._model, charge_point_vendor=self._vendor)
        )
        return BootAnswer(status=str(answer.status), interval_s=float(answer.interval))

    async def heartbeat(self) -> None:
        await self._request(call.Heartbeat())

    async def status(self, state: ConnectorState) -> None:
        await self._request(
            call.StatusNotification(
                connector_id=CONNECTOR_ID, error_code=ChargePointErrorCode.no_error, status=state.value
            )
        )

    async def start_transaction(self, transaction: Transaction, reading: MeterReading) -> str:
        answer = await self._request(
            call.StartTransaction(
                connector_id=CONNECTOR_ID,
                id_tag=transaction.id_tag,
                meter_start=round(reading.energy_wh),
                timestamp=ocpp_time(reading.at),
            )
        )
        status = answer.id_tag_info.get("status") if isinstance(answer.id_tag_info, dict) else None
        if status != AuthorizationStatus.accepted:
            raise StartRefused(f"id tag {transaction.id_tag!r}: {status}")
        return str(answer.transaction_id)

    async def meter_values(self, transaction: Transaction, reading: MeterReading) -> None:
        await self._request(
            call.MeterValues(
                connector_id=CONNECTOR_ID,
                transaction_id=int(transaction.id),
                meter_value=[
                    {
                        "timestamp": ocpp_time(reading.at),
                        "sampled_value": sampled_values(reading, ReadingContext.sample_periodic),
                    }
                ],
            )
        )

    async def notify_charging_needs(self, transaction: Transaction) -> str | None:
        return None  # 1.6 has no message for it: the central system never learns the departure

    async def stop_transaction(self, transaction: Transaction, reading: MeterReading) -> None:
        reason = STOP_REASONS[transaction.stop_reason or StopReason.LOCAL]
        await self._request(
            call.StopTransaction(
                meter_stop=round(reading.energy_wh),
                timestamp=ocpp_time(reading.at),
                transaction_id=int(transaction.id),
                reason=reason,
                id_tag=transaction.id_tag,
                transaction_data=[
                    {
                        "timestamp": ocpp_time(reading.at),
                        "sampled_value": sampled_values(reading, ReadingContext.transaction_end),
                    }
                ],
            )
        )

    # --- in ------------------------------------------------------------------------------------------------
    @on(Action.set_charging_profile)
    async def on_set_charging_profile(
        self, connector_id: int, cs_charging_profiles: dict[str, Any], **_: Any
    ) -> call_result.SetChargingProfile:
        summary = summarise_profile(
            cs_charging_profiles, cs_charging_profiles.get("charging_schedule"), id_key="charging_profile_id"
        )
        accepted, _reason = await self._handlers.set_charging_profile(
            lambda: parse_v16(cs_charging_profiles, int(connector_id)), summary
        )
        return call_result.SetChargingProfile(
            status=ChargingProfileStatus.accepted if accepted else ChargingProfileStatus.rejected
        )

    @on(Action.clear_charging_profile)
    def on_clear_charging_profile(
        self,
        id: int | None = None,  # the field's name in OCPP 1.6
        connector_id: int | None = None,
        charging_profile_purpose: str | None = None,
        stack_level: int | None = None,
        **_: Any,
    ) -> call_result.ClearChargingProfile:
        cleared = self._handlers.clear_charging_profile(
            id,
            connector_id,
            None if charging_profile_purpose is None else PURPOSE_NAMES.get(charging_profile_purpose),
            stack_level,
        )
        return call_result.ClearChargingProfile(
            status=ClearChargingProfileStatus.accepted if cleared else ClearChargingProfileStatus.unknown
        )

    @on(Action.remote_start_transaction)
    def on_remote_start_transaction(
        self,
        id_tag: str,
        connector_id: int | None = None,
        charging_profile: dict[str, Any] | None = None,
        **_: Any,
    ) -> call_result.RemoteStartTransaction:
        profile = charging_profile
        accepted, _id = self._handlers.remote_start(
            id_tag,
            connector_id,
            None,
            None if profile is None else (lambda: parse_v16(profile, CONNECTOR_ID)),
        )
        return call_result.RemoteStartTransaction(
            status=RemoteStartStopStatus.accepted if accepted else RemoteStartStopStatus.rejected
        )

    @on(Action.remote_stop_transaction)
    def on_remote_stop_transaction(self, transaction_id: int, **_: Any) -> call_result.RemoteStopTransaction:
        accepted = self._handlers.remote_stop(str(transaction_id))
        return call_result.RemoteStopTransaction(
            status=RemoteStartStopStatus.accepted if accepted else RemoteStartStopStatus.rejected
        )


_LOGGER = logging.getLogger("load_tester.fleet.ocpp")
