"""Sharing under several limits (substation_service/filling.py): for any sessions and limits hypothesis can think
of, the shares keep every limit and bound, and are max-min fair as the definition says (an oracle that checks
every session's bottleneck, not the algorithm); with one limit, they are allocation.py's to the microwatt."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from substation_service.allocation import Demand, allocate
from substation_service.filling import Filling, Load, fill, fitting_prefix, raise_minimums

TOLERANCE_KW = 1e-6


def loads_on(capacities: list[float], loads: list[Load]) -> list[float]:
    used = [0.0] * len(capacities)
    for load in loads:
        for c, w in load.counts:
            used[c] += w * load.min_kw
    return used


def check_max_min_fair(capacities: list[float], loads: list[Load], shares: dict[str, float]) -> None:
    """The definition: every limit kept, every share within its bounds, and every session below its maximum has
    a bottleneck: a full limit it counts against, on which no session of its priority above its minimum gets
    more, and no session of a lower priority gets more than its minimum."""
    used = [0.0] * len(capacities)
    for load in loads:
        assert load.min_kw - TOLERANCE_KW <= shares[load.key] <= load.max_kw + TOLERANCE_KW
        for c, w in load.counts:
            used[c] += w * shares[load.key]
    for c, capacity in enumerate(capacities):
        assert used[c] <= capacity + TOLERANCE_KW, f"limit {c} kept"
    full = {c for c, capacity in enumerate(capacities) if used[c] >= capacity - 1e-5}
    for load in loads:
        if shares[load.key] >= load.max_kw - 1e-5:
            continue
        mine = shares[load.key]

        def bottleneck(c: int, load: Load = load, mine: float = mine) -> bool:
            for other in loads:
                if not any(oc == c and ow > 0 for oc, ow in other.counts):
                    continue
                above_min = shares[other.key] > other.min_kw + 1e-5
                if other.priority == load.priority and above_min and shares[other.key] > mine + 1e-5:
                    return False
                if other.priority < load.priority and above_min:
                    return False
            return True

        assert any(c in full and w > 0 and bottleneck(c) for c, w in load.counts), f"{load.key} has a bottleneck"


@st.composite
def grids(draw, max_sessions=25):
    """Three phases of a substation (limits 0-2), two feeders (3-5, 6-8: per phase) and a power limit (9) on
    the second; cars of 1 or 3 phases on either feeder, 1-phase ones wired to any phase."""
    count = draw(st.integers(0, max_sessions))
    loads = []
    for index in range(count):
        phases = draw(st.sampled_from([1, 3]))
        low = draw(st.floats(0.5, 11, allow_nan=False))
        high = draw(st.floats(low, 22, allow_nan=False))
        feeder = draw(st.integers(0, 1))
        per_phase = [(p, 1 / 3) for p in range(3)] if phases == 3 else [(draw(st.integers(0, 2)), 1.0)]
        counts = [(p, w) for p, w in per_phase] + [(3 + 3 * feeder + p, w) for p, w in per_phase]
        if feeder == 1:
            counts.append((9, 1.0))
        loads.append(Load(f"s{index}", low, high, draw(st.integers(0, 2)), tuple(counts)))
    capacities = [draw(st.floats(0, 200, allow_nan=False)) for _ in range(10)]
    return capacities, loads


@settings(max_examples=300, deadline=None)
@given(grids())
def test_shares_under_phases_and_circuits_keep_every_limit_and_are_max_min_fair(case):
    capacities, loads = case
    fitting, waiting = fitting_prefix(capacities, loads)
    used = loads_on(capacities, fitting)
    assert all(u <= c + TOLERANCE_KW for u, c in zip(used, capacities, strict=True)), "the minimums fit"
    if waiting:
        first = waiting[0]
        assert any(used[c] + w * first.min_kw > capacities[c] for c, w in first.counts), "the first waits for cause"
    shares, levels = fill(capacities, fitting)
    assert set(shares) == {load.key for load in fitting}
    check_max_min_fair(capacities, fitting, shares)
    for load in fitting:
        if levels.get(load.priority) == math.inf:
            assert shares[load.key] == pytest.approx(load.max_kw)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0.5, 22), st.floats(0, 30), st.integers(0, 3)), max_size=30),
       st.floats(0, 400))  # fmt: skip
def test_with_one_limit_the_shares_are_those_of_the_single_limit_allocator(sessions, spare):
    demands = [Demand(f"s{i}", low, low + extra, priority) for i, (low, extra, priority) in enumerate(sessions)]
    headroom = sum(d.min_kw for d in demands) + spare
    loads = [Load(d.key, d.min_kw, d.max_kw, d.priority, ((0, 1.0),)) for d in demands]
    shares, _ = fill([headroom], loads)
    expected = allocate(headroom, demands)
    for d in demands:
        assert shares[d.key] == pytest.approx(expected[d.key], abs=TOLERANCE_KW)


def test_one_phase_cars_on_different_phases_do_not_hold_each_other_back():
    # 3 x 32 A at 230 V: 7.36 kW per phase. Two 1-phase cars on L1 share it; one on L2 takes its maximum.
    per_phase = 32 * 230 / 1000
    loads = [Load("a", 1.38, 7.36, 0, ((0, 1.0),)), Load("b", 1.38, 7.36, 0, ((0, 1.0),)),
             Load("c", 1.38, 7.36, 0, ((1, 1.0),))]  # fmt: skip
    shares, _ = fill([per_phase] * 3, loads)
    assert shares == pytest.approx({"a": per_phase / 2, "b": per_phase / 2, "c": 7.36})


def test_a_three_phase_car_is_bound_by_its_most_loaded_phase():
    # L1 carries a 1-phase car at 5 kW minimum: the 3-phase car gets 3 x what is left on L1.
    loads = [Load("one", 5.0, 5.0, 0, ((0, 1.0),)), Load("three", 4.14, 22.0, 0, tuple((p, 1 / 3) for p in range(3)))]
    shares, _ = fill([7.36, 7.36, 7.36], loads)
    assert shares["three"] == pytest.approx(3 * (7.36 - 5.0))


def test_a_circuit_limit_holds_its_cars_while_the_others_take_the_rest():
    # Substation 100 kW (limit 0); circuit (limit 1) 20 kW with two cars; two more cars outside it.
    inside = [Load(f"in{i}", 1.0, 22.0, 0, ((0, 1.0), (1, 1.0))) for i in range(2)]
    outside = [Load(f"out{i}", 1.0, 50.0, 0, ((0, 1.0),)) for i in range(2)]
    shares, _ = fill([100.0, 20.0], inside + outside)
    assert shares == pytest.approx({"in0": 10.0, "in1": 10.0, "out0": 40.0, "out1": 40.0})


def test_the_higher_priority_fills_first_across_limits():
    loads = [Load("low", 1.0, 22.0, 0, ((0, 1.0),)), Load("high", 1.0, 22.0, 2, ((0, 1.0),))]
    shares, levels = fill([20.0], loads)
    assert shares == pytest.approx({"high": 19.0, "low": 1.0})
    assert levels[2] == pytest.approx(19.0)


def test_a_limit_that_fills_exactly_where_a_session_starts_or_stops_rising_is_kept():
    # Limit 0 fills at level 5 (10 kW for two sessions from 0), just where "c" would start and "b" stops.
    loads = [Load("a", 0.0, 9.0, 0, ((0, 1.0),)), Load("b", 0.0, 5.0, 0, ((0, 1.0), (1, 1.0))),
             Load("c", 5.0, 9.0, 0, ((1, 1.0),))]  # fmt: skip
    shares, _ = fill([10.0 + 5.0 - 5.0, 12.0], loads)
    check_max_min_fair([10.0, 12.0], loads, shares)
    assert shares == pytest.approx({"a": 5.0, "b": 5.0, "c": 7.0})


@settings(max_examples=150, deadline=None)
@given(grids(), st.lists(st.floats(0, 200, allow_nan=False), min_size=10, max_size=10))
def test_a_filling_kept_from_step_to_step_shares_as_a_new_one_would(case, later_capacities):
    # A substation keeps one Filling: the loads' kinds are grouped once while the same loads come back, and the
    # headroom changes at every step; a load made anew (its bounds changed) is grouped again.
    capacities, loads = case
    kept = Filling()
    fitting, _ = fitting_prefix(capacities, loads)
    assert kept.fill(capacities, fitting) == fill(capacities, fitting)
    still, _ = fitting_prefix(later_capacities, fitting)
    assert kept.fill(later_capacities, still) == fill(later_capacities, still), "the next step"
    if still:
        first = still[0]
        changed = [first._replace(max_kw=first.min_kw), *still[1:]]
        assert kept.fill(later_capacities, changed) == fill(later_capacities, changed), "one load made anew"


@settings(max_examples=150, deadline=None)
@given(grids(), st.lists(st.floats(0, 30, allow_nan=False), min_size=25, max_size=25))
def test_raised_minimums_still_fit_under_every_limit_and_stay_between_the_minimum_and_the_floor(case, wanted):
    capacities, loads = case
    fitting, _ = fitting_prefix(capacities, loads)
    floors = {load.key: kw for load, kw in zip(fitting, wanted, strict=False)}
    raised = raise_minimums(capacities, fitting, floors)
    used = loads_on(capacities, raised)
    assert all(u <= c + TOLERANCE_KW for u, c in zip(used, capacities, strict=True)), "the raised minimums fit"
    for before, after in zip(fitting, raised, strict=True):
        assert before.min_kw <= after.min_kw <= max(before.min_kw, min(floors.get(before.key, 0), before.max_kw))
    shares, _ = fill(capacities, raised)
    check_max_min_fair(capacities, raised, shares)
