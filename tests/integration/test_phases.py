"""Amps and phases on real processes: 1-phase and 3-phase cars sharing a substation with no phase over its
third of the rating, requests in amperes through the gateway, and the currents shown per phase."""

from __future__ import annotations

import pytest

from tests.helpers import call, metric_value, wait_until

PHASES = ("L1", "L2", "L3")


def phase_metrics(url: str, source: str = "ev") -> list[float | None]:
    text = call("GET", f"{url}/metrics").raw.decode()
    return [
        metric_value(text, "substation_phase_current_amperes", substation="s", phase=phase, source=source)
        for phase in PHASES
    ]


def test_one_phase_cars_spread_over_the_phases_and_share_each_phase_with_three_phase_cars(services):
    # 69 kW: 23 kW (100 A at 230 V) a phase, no background.
    substation = services.substation("s", 69, BACKGROUND_PEAK_FRACTION="0", TIME_SCALE="1")
    url = substation.url
    one_phase = {"energy_kwh": 100, "phases": 1, "max_current_a": 32, "wait": True}
    placed = [call("POST", f"{url}/begin_charging", one_phase).body["session"] for _ in range(6)]
    assert sorted(s["grid_phase"] for s in placed) == ["L1", "L1", "L2", "L2", "L3", "L3"]
    assert {s["max_power_kw"] for s in placed} == {7.36}, "32 A on one phase at 230 V"

    three = {"energy_kwh": 100, "max_current_a": 32, "min_current_a": 6, "wait": True}
    big = [call("POST", f"{url}/begin_charging", three).body["session"]["session_id"] for _ in range(2)]
    sessions = [call("GET", f"{url}/sessions/{s['session_id']}").body for s in placed] + [
        call("GET", f"{url}/sessions/{key}").body for key in big
    ]
    per_phase = {phase: sum(s["current_a"][phase] for s in sessions) for phase in PHASES}
    assert per_phase == {phase: pytest.approx(100.0, abs=0.01) for phase in PHASES}, "every phase full, none over"
    # Max-min fair in power under the three phases: the 1-phase cars' 7.36 kW maximum is below a fair share, so
    # they draw it (32 A); the two 3-phase cars share what is left of every phase, 100 - 64 = 36 A: 18 A each.
    assert [s["current_a"][s["grid_phase"]] for s in sessions[:6]] == [pytest.approx(32.0, abs=0.01)] * 6
    assert [s["current_a"] for s in sessions[6:]] == [{p: pytest.approx(18.0, abs=0.01) for p in PHASES}] * 2
    assert phase_metrics(url) == [pytest.approx(100.0, abs=0.01)] * 3
    text = call("GET", f"{url}/metrics").raw.decode()
    assert metric_value(text, "substation_phase_limit_amperes", substation="s", phase="L2") == pytest.approx(100.0)
    assert metric_value(text, "substation_overload_seconds_total", substation="s") == 0


def test_a_phase_full_of_one_phase_cars_refuses_another_while_three_phase_cars_still_start(services):
    substation = services.substation("s", 33, BACKGROUND_PEAK_FRACTION="0", TIME_SCALE="1")  # 47.8 A a phase
    url = substation.url
    on_l1 = {"energy_kwh": 100, "phases": 1, "min_current_a": 16, "max_current_a": 16, "charger_id": "cp-a",
             "transaction_id": "1", "grid_phase": "L1"}  # fmt: skip
    for number in range(2):
        answer = call("POST", f"{url}/begin_charging", {**on_l1, "charger_id": f"cp-{number}"})
        assert answer.status == 201 and answer.body["session"]["grid_phase"] == "L1", "wired to L1"
    refused = call("POST", f"{url}/begin_charging", {**on_l1, "charger_id": "cp-3"})
    assert refused.status == 409, "a third 16 A car does not fit on L1's 47.8 A, though L2 and L3 are free"
    three = call("POST", f"{url}/begin_charging", {"energy_kwh": 100, "max_current_a": 16, "min_current_a": 6})
    assert three.status == 201
    session = call("GET", f"{url}/sessions/{three.body['session']['session_id']}").body
    assert session["current_a"]["L1"] <= 47.83 - 32 + 0.01, "bound by L1, the most loaded phase"
    assert phase_metrics(url)[0] <= 47.83 + 0.01


def test_the_gateway_takes_amperes_and_phases_and_a_body_less_request_is_3_x_16_a(services):
    gateway_url = services.grid({"a": 150}, substation_env={"TIME_SCALE": "1"}).gateway.url
    answer = call("POST", f"{gateway_url}/initiate_energy_transfer", {"phases": 1, "max_current_a": 32})
    assert answer.status == 201
    assert (answer.body["phases"], answer.body["max_power_kw"], answer.body["min_power_kw"]) == (1, 7.36, 1.38)
    assert answer.body["grid_phase"] in PHASES
    default = call("POST", f"{gateway_url}/initiate_energy_transfer").body
    assert (default["phases"], default["max_current_a"], default["min_current_a"]) == (3, 16.0, 6.0)
    assert (default["max_power_kw"], default["min_power_kw"]) == (11.04, 4.14)
    wrong = call("POST", f"{gateway_url}/initiate_energy_transfer", {"max_current_a": 16, "max_power_kw": 11})
    assert wrong.status == 422 and wrong.content_type == "application/problem+json"
    assert wrong.body["errors"] == [
        {"field": "max_current_a", "message": "give max_current_a or max_power_kw, not both"}
    ]


def test_a_circuit_limit_holds_on_a_real_substation_and_shows_in_circuits(services):
    circuits = '[{"name": "feeder", "max_current_a": 32}, {"name": "garage", "parent": "feeder", "max_power_kw": 11}]'
    substation = services.substation("s", 150, BACKGROUND_PEAK_FRACTION="0", TIME_SCALE="1", CIRCUITS=circuits)
    url = substation.url

    def plug(number: int, circuit: str | None, **fields) -> dict:
        body = {"energy_kwh": 100, "max_current_a": 32, "charger_id": f"cp-{number}", "transaction_id": str(number),
                "wait": True, **fields}  # fmt: skip
        if circuit is not None:
            body["circuit"] = circuit
        return call("POST", f"{url}/begin_charging", body)

    garage = [plug(n, "garage").body["session"]["session_id"] for n in range(2)]
    feeder = [plug(n, "feeder").body["session"]["session_id"] for n in range(2, 4)]
    free = plug(9, None).body["session"]["session_id"]
    power = {key: call("GET", f"{url}/sessions/{key}").body["allocated_kw"] for key in [*garage, *feeder, free]}
    assert [power[key] for key in garage] == [pytest.approx(5.5)] * 2, "the garage's 11 kW, shared"
    # The feeder's 32 A a phase (22.08 kW) less the garage's 11 kW: 11.08 kW for the two cars on it alone.
    assert [power[key] for key in feeder] == [pytest.approx(11.08 / 2, abs=1e-3)] * 2
    assert power[free] == pytest.approx(22.0), "a car on no circuit is held by neither (its charger's 22 kW)"
    shown = {c["name"]: c for c in call("GET", f"{url}/circuits").body["circuits"]}
    assert shown["garage"]["power_kw"] == pytest.approx(11.0)
    assert shown["feeder"]["current_a"] == {phase: pytest.approx(32.0, abs=0.01) for phase in PHASES}
    assert call("GET", f"{url}/sessions/{garage[0]}").body["circuit"] == "garage"

    unknown = plug(20, "attic")
    assert unknown.status == 422 and unknown.body["errors"][0]["field"] == "circuit"
    call("POST", f"{url}/sessions/{garage[0]}/stop")
    after = [call("GET", f"{url}/sessions/{key}").body["allocated_kw"] for key in [garage[1], *feeder]]
    assert after == [pytest.approx(22.08 / 3, abs=1e-3)] * 3, "the garage's car below its 11 kW: the feeder binds"
    text = call("GET", f"{url}/metrics").raw.decode()
    assert metric_value(text, "substation_overload_seconds_total", substation="s") == 0


def test_a_grid_operators_limit_on_a_circuit_holds_within_a_step_and_lapses(services):
    token = "a-grid-operator-token-for-tests"
    auth = {"Authorization": f"Bearer {token}"}
    circuits = '[{"name": "garage", "max_current_a": 32}]'
    substation = services.substation("s", 150, TIME_SCALE="1", CIRCUITS=circuits, GRID_LIMIT_TOKEN=token,
                                     ALLOCATION_STEP_S="0.2")  # fmt: skip
    url = substation.url
    body = {"energy_kwh": 100, "max_current_a": 32, "circuit": "garage", "wait": True}
    cars = [call("POST", f"{url}/begin_charging", {**body, "charger_id": f"cp-{n}", "transaction_id": str(n)})
            .body["session"]["session_id"] for n in range(2)]  # fmt: skip

    def total() -> float:
        return sum(call("GET", f"{url}/sessions/{key}").body["allocated_kw"] for key in cars)

    assert total() == pytest.approx(22.08), "the garage's 32 A a phase"
    window = {"limit_kw": 9, "duration_s": 2}
    assert call("PUT", f"{url}/circuits/garage/grid_limit", window).status == 401
    assert call("PUT", f"{url}/circuits/attic/grid_limit", window, headers=auth).status == 404
    answer = call("PUT", f"{url}/circuits/garage/grid_limit", window, headers=auth)
    assert answer.status == 200 and answer.body["circuit"] == "garage" and answer.body["limit_in_force_kw"] == 9
    assert total() <= 9 + 1e-6, "held from the answer on"
    assert call("GET", f"{url}/circuits").body["circuits"][0]["grid_limit_kw"] == 9
    wait_until(lambda: total() == pytest.approx(22.08), timeout=2 + 2)
    assert call("GET", f"{url}/circuits/garage/grid_limit").body["limit_in_force_kw"] is None
    text = call("GET", f"{url}/metrics").raw.decode()
    assert metric_value(text, "substation_overload_seconds_total", substation="s") == 0
