"""A substation's three phases: 1-phase cars spread over them, no phase over its third of the rating (with its
share of the background), and 3-phase cars bound by the most loaded phase. Domain only: no Flask."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grid_common.protocol import ChargerLink, GridPhase, SessionState
from substation_service.circuits import CircuitError, parse_circuits
from substation_service.grid_limits import LimitPeriod
from substation_service.phases import PhaseSupply
from substation_service.sessions import Admitted, Refused
from substation_service.sqlite_journal import SqliteJournal
from substation_service.substation import UnknownCircuit
from tests.helpers import charge
from tests.substations import make_substation

TOLERANCE_KW = 1e-6


def phase_loads(substation) -> list[float]:
    """kW allocated on each phase, walked from the sessions (not the kept sums)."""
    loads = [0.0, 0.0, 0.0]
    for session in substation.book.started:
        for phase, weight in enumerate(session.weights):
            loads[phase] += weight * session.allocated_kw
    return loads


def one_phase_car(vehicle: str, max_kw: float = 7.36, min_kw: float = 1.38):
    return charge(vehicle, 30, max_kw, min_power_kw=min_kw, phases=1)


def test_one_phase_cars_without_a_charger_spread_over_the_phases():
    substation = make_substation(69.0, allocation="fair")
    placed = [substation.admit(one_phase_car(f"EV-{n}"), now=0).session.grid_phase for n in range(6)]
    assert sorted(placed) == [GridPhase.L1, GridPhase.L1, GridPhase.L2, GridPhase.L2, GridPhase.L3, GridPhase.L3]
    assert phase_loads(substation) == pytest.approx([2 * 7.36] * 3), "two cars at their maximum on each phase"


def test_a_phase_full_of_one_phase_cars_holds_its_third_and_the_others_stay_free():
    substation = make_substation(33.0, allocation="fair")  # 11 kW (47.8 A) a phase
    on_l1 = ChargerLink("s1-cp1", "1", 0.0, GridPhase.L1)
    for n in range(3):
        link = ChargerLink(f"s1-cp{n}", str(n), 0.0, GridPhase.L1)
        assert isinstance(substation.admit(one_phase_car(f"EV-{n}"), now=0, charger=link), Admitted)
    loads = phase_loads(substation)
    assert loads == pytest.approx([11.0, 0.0, 0.0]), "three 7.36 kW cars share L1's 11 kW"
    assert [s.allocated_kw for s in substation.book.started] == pytest.approx([11 / 3] * 3)
    refused = substation.admit(one_phase_car("EV-late", min_kw=7.0), now=0, charger=on_l1)
    assert isinstance(refused, Refused), "L1 has no room for another minimum of 7 kW, though L2 and L3 are free"
    three_phase = substation.admit(charge("EV-3p", 30, 11.04, min_power_kw=4.14), now=0)
    assert isinstance(three_phase, Admitted), "a third of its minimum fits on L1 beside the 1-phase cars' minimums"
    assert substation.session(three_phase.session.session_id, 0).allocated_kw >= 4.14 - TOLERANCE_KW
    assert phase_loads(substation)[0] == pytest.approx(11.0), "L1 still holds its third, shared by four cars"


def test_a_three_phase_car_is_bound_by_the_most_loaded_phase():
    substation = make_substation(33.0, allocation="fair")
    substation.admit(
        one_phase_car("EV-1", max_kw=7.36, min_kw=7.36), now=0, charger=ChargerLink("a", "1", 0.0, GridPhase.L1)
    )
    three = substation.admit(charge("EV-3p", 30, 22.0, min_power_kw=1.4), now=0).session
    # L1 has 11 - 7.36 = 3.64 kW left: a third of the 3-phase car's power, so it gets 10.92 kW, not 33 - 7.36.
    assert three.allocated_kw == pytest.approx(3 * (11 - 7.36))
    assert three.to_json()["current_a"] == {
        phase: pytest.approx(3.64 * 1000 / 230, abs=1e-3) for phase in ["L1", "L2", "L3"]
    }


def test_an_imbalanced_background_leaves_less_on_its_heaviest_phase():
    supply = PhaseSupply(background_split=(0.5, 0.25, 0.25))
    substation = make_substation(30.0, background_peak_kw=12.0, allocation="fair", supply=supply)
    background = substation.background.peak_between(0, 1)
    session = substation.admit(charge("EV-3p", 30, 30.0, min_power_kw=1.4), now=0).session
    assert session.allocated_kw == pytest.approx(3 * (10 - 0.5 * background), abs=1e-6), "L1 binds"


CAR = st.tuples(
    st.sampled_from([1, 3]),
    st.floats(1.4, 22.0),  # maximum
    st.floats(0.0, 1.0),  # minimum, as a share of the maximum
    st.sampled_from([None, GridPhase.L1, GridPhase.L2, GridPhase.L3]),  # wired there, or placed by the substation
    st.integers(0, 3),  # priority
)


@settings(max_examples=150, deadline=None)
@given(
    capacity=st.floats(10.0, 200.0),
    background_share=st.floats(0.0, 0.6),
    split=st.sampled_from([(1 / 3, 1 / 3, 1 / 3), (0.5, 0.3, 0.2), (0.2, 0.2, 0.6), (1.0, 0.0, 0.0)]),
    cars=st.lists(CAR, min_size=1, max_size=25),
    fair=st.booleans(),
)
def test_no_phase_and_no_total_is_ever_over_its_limit(capacity, background_share, split, cars, fair):
    substation = make_substation(
        capacity,
        background_peak_kw=capacity * background_share,
        allocation="fair" if fair else "fixed",
        supply=PhaseSupply(background_split=split),
    )
    for number, (phases, max_kw, min_share, wired, priority) in enumerate(cars):
        minimum = max(1.0, min(max_kw, max_kw * min_share))
        request = charge(f"EV-{number}", 5.0, max_kw, min_power_kw=minimum, phases=phases, priority=priority, wait=True)
        link = None if wired is None else ChargerLink(f"s1-cp{number}", str(number), 0.0, wired)
        substation.admit(request, now=number * 0.1, charger=link)
    for moment in (3.0, 7.5, 20.0):
        substation.advance(moment)
        background = substation.background.peak_between(moment, moment + substation.step_s)
        loads = phase_loads(substation)
        for phase in range(3):
            assert loads[phase] + background * split[phase] <= capacity / 3 + TOLERANCE_KW, f"phase {phase + 1}"
        assert sum(loads) + background <= capacity + TOLERANCE_KW
        for session in substation.book.started:
            if session.state == SessionState.CHARGING:
                assert session.min_kw - TOLERANCE_KW <= session.allocated_kw <= session.max_kw + TOLERANCE_KW
    assert substation.counters.overload_seconds == 0


# --- circuits -------------------------------------------------------------------------------------------


def test_a_tree_of_circuits_is_checked_and_numbers_its_limits_after_the_substations_own():
    tree = parse_circuits(
        '[{"name": "feeder", "max_current_a": 63}, {"name": "garage", "parent": "feeder", "max_power_kw": 22}]',
        230,
    )
    assert tree.chain("garage") == ("garage", "feeder")
    assert tree.capacities() == pytest.approx([63 * 0.23] * 3 + [22])
    one_phase_on_l2 = (0.0, 1.0, 0.0)
    assert tree.counts("garage", one_phase_on_l2) == ((7, 1.0), (5, 1.0)), "the garage's power, the feeder's L2"
    for text, message in [
        ('[{"name": "a", "parent": "b", "max_power_kw": 1}]', "parent 'b' is not a circuit"),
        ('[{"name": "a", "max_power_kw": 1, "max_current_a": 16}]', "one of them"),
        ('[{"name": "a"}]', "one of them"),
        ('[{"name": "a", "parent": "b", "max_power_kw": 1}, {"name": "b", "parent": "a", "max_power_kw": 1}]', "loop"),
        ('[{"name": "a", "max_power_kw": 1}, {"name": "a", "max_power_kw": 2}]', "its own"),
        ('[{"name": "a", "max_power_kw": -1}]', "above 0"),
        ('{"name": "a"}', "a JSON list"),
    ]:
        with pytest.raises(CircuitError, match=message):
            parse_circuits(text, 230)


def on_circuit(substation, vehicle: str, circuit: str, *, phases: int = 3, grid_phase=GridPhase.L1, **fields):
    fields.setdefault("min_power_kw", 4.14 if phases == 3 else 1.38)
    request = charge(vehicle, 30, 22.08 if phases == 3 else 7.36, phases=phases, **fields)
    return substation.admit(request, now=0, charger=ChargerLink(f"cp-{vehicle}", vehicle, 0.0, grid_phase, circuit))


def test_a_circuit_limit_is_shared_by_its_cars_while_cars_elsewhere_rise_on():
    tree = parse_circuits('[{"name": "garage", "max_current_a": 16}]', 230)  # 11.04 kW on three phases
    substation = make_substation(100.0, allocation="fair", circuits=tree)
    in_garage = [on_circuit(substation, f"g{n}", "garage").session.session_id for n in range(2)]
    elsewhere = substation.admit(charge("free", 30, 22.08, min_power_kw=4.14), now=0).session.session_id
    assert [substation.session(key, 0).allocated_kw for key in in_garage] == pytest.approx([11.04 / 2] * 2)
    assert substation.session(elsewhere, 0).allocated_kw == pytest.approx(22.0), "at its charger's 22 kW"
    refused = on_circuit(substation, "g3", "garage", min_power_kw=6.0)
    assert isinstance(refused, Refused), "two minimums of 4.14 kW and one of 6 do not fit in the garage's 11.04"
    assert substation.circuit_report(0) == [
        {
            "name": "garage",
            "parent": None,
            "max_current_a": 16.0,
            "current_a": {"L1": 16.0, "L2": 16.0, "L3": 16.0},
            "grid_limit_kw": None,
        }
    ]
    with pytest.raises(UnknownCircuit):
        on_circuit(substation, "x", "attic")


CIRCUIT_TREES = st.sampled_from(
    [
        '[{"name": "f", "max_current_a": 32}]',
        '[{"name": "f", "max_current_a": 63}, {"name": "a", "parent": "f", "max_power_kw": 15},'
        ' {"name": "b", "parent": "f", "max_current_a": 16}]',
        '[{"name": "f", "max_power_kw": 30}, {"name": "a", "parent": "f", "max_current_a": 20},'
        ' {"name": "a1", "parent": "a", "max_current_a": 10}]',
    ]
)


@settings(max_examples=120, deadline=None)
@given(
    tree_text=CIRCUIT_TREES,
    capacity=st.floats(10.0, 120.0),
    cars=st.lists(st.tuples(CAR, st.sampled_from([None, "f", "a", "b", "a1"])), min_size=1, max_size=20),
    fair=st.booleans(),
)
def test_no_circuit_is_ever_over_its_limit(tree_text, capacity, cars, fair):
    tree = parse_circuits(tree_text, 230)
    substation = make_substation(capacity, allocation="fair" if fair else "fixed", circuits=tree)
    for number, ((phases, max_kw, min_share, wired, priority), circuit) in enumerate(cars):
        circuit = circuit if circuit in tree else None
        minimum = max(1.0, min(max_kw, max_kw * min_share))
        request = charge(f"EV-{number}", 5.0, max_kw, min_power_kw=minimum, phases=phases, priority=priority, wait=True)
        link = ChargerLink(f"s1-cp{number}", str(number), 0.0, wired, circuit)
        substation.admit(request, now=number * 0.1, charger=link)
    for moment in (3.0, 9.0):
        substation.advance(moment)
        used = tree.loads((s.circuit, s.weights, s.allocated_kw) for s in substation.book.started if s.circuit)
        for load, limit in zip(used, tree.limits, strict=True):
            assert load <= limit.capacity_kw + TOLERANCE_KW, limit
        assert sum(phase_loads(substation)) <= capacity + TOLERANCE_KW
    assert substation.counters.overload_seconds == 0


def test_a_grid_operators_limit_on_a_circuit_holds_and_lapses_and_outlives_a_restart(tmp_path):
    tree = parse_circuits('[{"name": "garage", "max_current_a": 32}]', 230)  # 22.08 kW on three phases
    journal = SqliteJournal(str(tmp_path / "sessions.sqlite3"))
    substation = make_substation(100.0, allocation="fair", circuits=tree, journal=journal, now=0.0)
    cars = [on_circuit(substation, f"g{n}", "garage").session.session_id for n in range(2)]
    assert sum(substation.session(key, 0).allocated_kw for key in cars) == pytest.approx(22.08), "the garage's 32 A"
    substation.set_grid_limits([LimitPeriod(0.0, 10.0, 9.0)], 0.0, circuit="garage")
    assert sum(substation.session(key, 0.0).allocated_kw for key in cars) == pytest.approx(9.0), "at once"
    assert substation.circuit_report(0.0)[0]["grid_limit_kw"] == 9.0
    with pytest.raises(UnknownCircuit):
        substation.set_grid_limits([LimitPeriod(0.0, 10.0, 9.0)], 0.0, circuit="attic")
    again = make_substation(
        100.0, allocation="fair", circuits=tree, journal=SqliteJournal(str(tmp_path / "sessions.sqlite3")), now=1.0
    )
    assert sum(again.session(key, 1.0).allocated_kw for key in cars) == pytest.approx(9.0), "kept in the journal"
    assert sum(again.session(key, 12.0).allocated_kw for key in cars) == pytest.approx(22.08), "lapsed at its end"
    assert again.circuit_report(12.0)[0]["grid_limit_kw"] is None
    assert again.counters.overload_seconds == 0
