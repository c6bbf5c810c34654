"""A simulated fleet of OCPP chargers with cars: the client side of OCPP 1.6J and 2.0.1 over WebSocket.

For integration tests against the CSMS (ocpp_service/), for benchmarks with thousands of chargers in one
process, for `make up`'s default fleet, and for people: `python -m load_tester.fleet --help`. See docs/fleet.md.

    charger = SimulatedCharger("cp-1", "2.0.1")
    await charger.connect("ws://127.0.0.1:9000/ocpp")
    await charger.plug(Car(phases=3, max_current_a=16, energy_need_wh=10_000))

    async with Fleet(FleetConfig(chargers=100)) as fleet:
        await fleet.run()
    print(fleet.result)
"""

from load_tester.fleet.car import CAR_MIX, Car, CarModel, random_car
from load_tester.fleet.charger import (
    ChargerBusy,
    ChargerError,
    ChargerOffline,
    ChargerRecord,
    ChargerRefused,
    ChargerState,
    ChargerUnreachable,
    ProfileEvent,
    Sample,
    SimulatedCharger,
    TransactionRecord,
)
from load_tester.fleet.cli import main
from load_tester.fleet.fleet import Fleet, FleetConfig, FleetResult, run_fleet
from load_tester.fleet.profiles import ChargingProfile, ProfileError, ProfileStore, Purpose, RateUnit
from load_tester.fleet.session import BootRefused, ConnectorState, OcppVersion, StartRefused, StopReason

__all__ = [
    "CAR_MIX",
    "BootRefused",
    "Car",
    "CarModel",
    "ChargerBusy",
    "ChargerError",
    "ChargerOffline",
    "ChargerRecord",
    "ChargerRefused",
    "ChargerState",
    "ChargerUnreachable",
    "ChargingProfile",
    "ConnectorState",
    "Fleet",
    "FleetConfig",
    "FleetResult",
    "OcppVersion",
    "ProfileError",
    "ProfileEvent",
    "ProfileStore",
    "Purpose",
    "RateUnit",
    "Sample",
    "SimulatedCharger",
    "StartRefused",
    "StopReason",
    "TransactionRecord",
    "main",
    "random_car",
    "run_fleet",
]
