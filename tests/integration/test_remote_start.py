"""A client starts a charger it names (`POST /initiate_energy_transfer` with `charger_id`), through the gateway,
the balancer and the OCPP service, to a simulated charger that speaks OCPP 1.6J or 2.0.1 over a real WebSocket:
RemoteStartTransaction / RequestStartTransaction, and the transaction it starts is the client's session."""

from __future__ import annotations

import pytest

from load_tester.fleet.car import Car
from load_tester.fleet.session import StartTrigger
from tests.chargers import ChargerLoop
from tests.helpers import call
from tools.stack import balancer_sees_all_healthy, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.serial, pytest.mark.timeout(120)]

VOLTAGE = 230.0
OCPP = {"FEED_INTERVAL_S": "0.1", "METER_FLUSH_S": "0.2", "CHARGERS_PER_SUBSTATION": "4",
        "FLEET_CHARGERS_PER_SUBSTATION": "0"}  # fmt: skip


def a_car() -> Car:
    return Car(phases=3, max_current_a=32, energy_need_wh=200_000)


@pytest.fixture
def grid(services):
    substation = services.substation("s", 44.0, ALLOCATION_STEP_S="0.25")
    ocpp = services.ocpp({"s": substation}, **OCPP)
    balancer = services.balancer({"s": substation}, OCPP_URL=ocpp.api_url)
    wait_for(lambda: balancer_sees_all_healthy(balancer.url), 10, "the balancer sees the substation")
    gateway = services.gateway(balancer.url)
    with ChargerLoop() as chargers:
        yield substation, ocpp, gateway, chargers, f"ws://127.0.0.1:{ocpp.port}/ocpp"


@pytest.mark.parametrize("protocol", ["1.6", "2.0.1"])
def test_a_client_starts_a_charger_it_names_and_gets_the_session_of_its_transaction(grid, protocol):
    substation, ocpp, gateway, chargers, url = grid
    charger = chargers.connect(url, "s-cp1", protocol, car_factory=a_car)
    request = {"charger_id": "s-cp1", "vehicle_id": "fleet-van-7", "energy_kwh": 30, "max_power_kw": 11, "priority": 2}
    started = call("POST", f"{gateway.url}/initiate_energy_transfer", request, headers={"Idempotency-Key": "k-1"})
    assert started.status == 201, started.body
    session = started.body
    assert session["result"] == "Charging started" and session["substation"] == "s"
    assert session["charger_id"] == "s-cp1" and session["vehicle_id"] == "fleet-van-7"
    assert session["energy_kwh"] == 30 and session["max_power_kw"] == 11 and session["priority"] == 2
    assert session["allocated_kw"] == pytest.approx(11, abs=0.01)
    assert started.headers["Location"] == f"/sessions/{session['session_id']}"
    # The charger started it because it was asked, under the id tag it was given, and was told its limit.
    transaction = charger.transaction
    assert transaction is not None and transaction.trigger is StartTrigger.REMOTE
    assert transaction.id_tag == "fleet-van-7"
    wait_for(lambda: abs(charger.limit_w - 11_000) < 200, 5, "the charger at its 11 kW")
    told = [p for p in charger.record.profiles if p.purpose == "TxProfile" and p.accepted]
    assert told and told[-1].limits[0] == pytest.approx(11_000 / (3 * VOLTAGE), abs=0.1)
    described = call("GET", f"{ocpp.url}/chargers/s-cp1").body
    assert described["session_id"] == session["session_id"]
    assert described["transaction_id"] == transaction.id
    # Read through the gateway as any other session; the same key again is the same session, not a second start.
    read = call("GET", f"{gateway.url}/sessions/{session['session_id']}").body
    assert read["state"] == "charging" and read["charger_id"] == "s-cp1"
    again = call("POST", f"{gateway.url}/initiate_energy_transfer", request, headers={"Idempotency-Key": "k-1"})
    assert again.status == 201 and again.body["session_id"] == session["session_id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert call("GET", f"{substation.url}/load").body["active_sessions"] == 1
    # Another client, the same charger: it is busy, and nothing is started.
    busy = call("POST", f"{gateway.url}/initiate_energy_transfer", {"charger_id": "s-cp1"})
    assert busy.status == 409 and busy.body["title"] == "Charger busy", busy.body
    assert busy.headers["Content-Type"] == "application/problem+json"


def test_a_charger_that_cannot_start_is_a_refusal_and_nothing_is_started(grid):
    substation, ocpp, gateway, chargers, url = grid

    def refuse_remote_starts(charger) -> None:
        charger.remote_start = lambda *_: (False, None)  # as a charger whose connector is out of order

    chargers.connect(url, "s-cp2", "2.0.1", prepare=refuse_remote_starts)
    start = "/initiate_energy_transfer"
    rejected = call("POST", f"{gateway.url}{start}", {"charger_id": "s-cp2"})
    assert rejected.status == 409 and rejected.body["title"] == "Remote start rejected", rejected.body
    offline = call("POST", f"{gateway.url}{start}", {"charger_id": "s-cp3"})
    assert offline.status == 409 and offline.body["title"] == "Charger offline", offline.body
    unknown = call("POST", f"{gateway.url}{start}", {"charger_id": "s-cp99"})
    assert unknown.status == 404, unknown.body
    too_much = call("POST", f"{gateway.url}{start}", {"charger_id": "s-cp2", "min_power_kw": 40, "max_power_kw": 50})
    assert too_much.status == 422 and too_much.body["errors"][0]["field"] == "min_power_kw", too_much.body
    malformed = call("POST", f"{gateway.url}{start}", {"charger_id": "not a charger!"})
    assert malformed.status == 422 and malformed.body["errors"][0]["field"] == "charger_id"
    load = call("GET", f"{substation.url}/load").body
    assert load["active_sessions"] == 0 and load["queued_sessions"] == 0
    counted = call("GET", f"{ocpp.url}/metrics").raw.decode()
    assert 'ocpp_remote_starts_total{result="rejected"} 1.0' in counted


def test_a_balancer_without_an_ocpp_service_says_no_charger_can_be_started(services):
    grid = services.grid({"s": 44.0})
    refused = call("POST", f"{grid.gateway.url}/initiate_energy_transfer", {"charger_id": "s-cp1"})
    assert refused.status == 404 and "no OCPP service" in refused.body["detail"], refused.body


def test_a_charger_that_accepts_but_starts_later_is_an_outcome_unknown_whose_session_is_named(grid):
    _, _, gateway, chargers, url = grid

    def accept_but_wait_for_the_driver(charger) -> None:
        charger.remote_start = lambda *_: (True, None)  # the car is not plugged in yet

    charger = chargers.connect(url, "s-cp4", "1.6", prepare=accept_but_wait_for_the_driver)
    late = call("POST", f"{gateway.url}/initiate_energy_transfer", {"charger_id": "s-cp4", "vehicle_id": "late-car",
                                                                     "energy_kwh": 20})  # fmt: skip
    assert late.status == 504 and late.body["title"] == "Outcome unknown", late.body
    named = late.body["session_id"]
    assert named.startswith("s.") and "GET /sessions/" in late.body["detail"]
    assert call("GET", f"{gateway.url}/sessions/{named}").status == 404  # not yet: the car is not there
    chargers.run(charger.plug(a_car(), id_tag="late-car"))  # the driver plugs in: the accepted start goes on
    wait_for(lambda: call("GET", f"{gateway.url}/sessions/{named}").status == 200, 5, "the named session")
    session = call("GET", f"{gateway.url}/sessions/{named}").body
    assert session["charger_id"] == "s-cp4" and session["vehicle_id"] == "late-car" and session["energy_kwh"] == 20


def test_the_api_port_answers_problems_for_what_it_cannot_do(grid):
    _, ocpp, _, _, _ = grid
    start = f"{ocpp.api_url}/chargers/s-cp1/remote_start"
    no_token = call("POST", start, {})
    assert no_token.status == 400 and no_token.content_type == "application/problem+json"
    wrong_method = call("GET", start)
    assert wrong_method.status == 405 and wrong_method.content_type == "application/problem+json"
    late = call("POST", start, {}, headers={"Session-Token": "a" * 24, "Request-Deadline": "1000"})
    assert late.status == 408
    bad = call("POST", start, body=b"{not json", headers={"Session-Token": "a" * 24})
    assert bad.status == 400
    listed = call("GET", f"{ocpp.api_url}/chargers")
    assert listed.status == 200 and len(listed.body["chargers"]) == 4


def one_phase_car() -> Car:
    return Car(phases=1, max_current_a=32, energy_need_wh=200_000)


def test_a_one_phase_car_started_at_a_three_phase_charger_is_a_one_phase_session_told_in_amperes_on_one_phase(grid):
    _, ocpp, gateway, chargers, url = grid
    # The default registry wires chargers in turn: cp2's L1 is on the grid's L2.
    charger = chargers.connect(url, "s-cp2", "2.0.1", car_factory=one_phase_car)
    started = call("POST", f"{gateway.url}/initiate_energy_transfer",
                   {"charger_id": "s-cp2", "phases": 1, "max_current_a": 16, "energy_kwh": 30})  # fmt: skip
    assert started.status == 201, started.body
    session = started.body
    assert (session["phases"], session["grid_phase"]) == (1, "L2")
    assert (session["max_power_kw"], session["min_power_kw"]) == (3.68, 1.38), "16 A and 6 A on one phase"
    assert session["current_a"] == {"L1": 0.0, "L2": pytest.approx(16.0, abs=0.01), "L3": 0.0}
    wait_for(lambda: abs(charger.limit_w - 3_680) < 60, 5, "the charger at its 16 A on one phase")
    tx = [p for p in charger.profiles.profiles if p.purpose.value == "TxProfile"]
    assert tx and tx[-1].unit.value == "A"
    assert (tx[-1].periods[0].limit, tx[-1].periods[0].number_phases) == (16.0, 1)
    assert call("GET", f"{ocpp.url}/chargers/s-cp2").body["grid_phase"] == "L2"
