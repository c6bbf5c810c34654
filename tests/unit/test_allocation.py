"""The allocator against a slow oracle written independently (bisection on the water level), and its
properties for any sessions hypothesis can think of."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from substation_service.allocation import Demand, allocate, fitting_prefix, jain_index, water_level

TOLERANCE_KW = 1e-6


def oracle(headroom_kw: float, demands: list[Demand]) -> dict[str, float]:
    """Minimums, then each priority from the highest, its level found by bisection: slow and obvious."""
    shares = {d.key: d.min_kw for d in demands}
    left = headroom_kw - sum(d.min_kw for d in demands)
    for priority in sorted({d.priority for d in demands}, reverse=True):
        group = [d for d in demands if d.priority == priority]
        budget = left + sum(d.min_kw for d in group)

        def total(level, group=group):
            return sum(min(d.max_kw, max(d.min_kw, level)) for d in group)

        low, high = 0.0, max(d.max_kw for d in group)
        if total(high) <= budget:
            level = high
        else:
            for _ in range(100):
                middle = (low + high) / 2
                low, high = (middle, high) if total(middle) <= budget else (low, middle)
            level = low
        for d in group:
            shares[d.key] = min(d.max_kw, max(d.min_kw, level))
        left -= total(level) - sum(d.min_kw for d in group)
    return shares


@st.composite
def sessions(draw, max_sessions=40):
    count = draw(st.integers(0, max_sessions))
    demands = []
    for index in range(count):
        low = draw(st.floats(0.5, 22, allow_nan=False))
        high = draw(st.floats(low, 50, allow_nan=False))
        demands.append(Demand(f"s{index}", low, high, draw(st.integers(0, 3))))
    spare = draw(st.floats(0, 600, allow_nan=False))
    headroom = sum(d.min_kw for d in demands) + spare  # the minimums fit: fitting_prefix saw to it
    return headroom, demands


@settings(max_examples=150, deadline=None)
@given(sessions())
def test_the_allocation_is_the_oracles_and_keeps_every_promise(case):
    headroom, demands = case
    shares = allocate(headroom, demands)
    assert set(shares) == {d.key for d in demands}
    total = sum(shares.values())
    assert total <= headroom + TOLERANCE_KW, "never more than the headroom"
    assert total == pytest.approx(min(headroom, sum(d.max_kw for d in demands)), abs=TOLERANCE_KW), "none idle"
    expected = oracle(headroom, demands)
    for d in demands:
        assert d.min_kw - TOLERANCE_KW <= shares[d.key] <= d.max_kw + TOLERANCE_KW, "within its minimum and maximum"
        assert shares[d.key] == pytest.approx(expected[d.key], abs=0.01), "max-min fair, as the oracle finds"


@settings(max_examples=100, deadline=None)
@given(sessions())
def test_max_min_fair_within_a_priority_and_priorities_in_order(case):
    headroom, demands = case
    shares = allocate(headroom, demands)
    for a in demands:
        for b in demands:
            if a.priority == b.priority and shares[a.key] < shares[b.key] - 0.01:
                # a gets less than b: only because a is at its maximum or b at its minimum.
                assert shares[a.key] >= a.max_kw - 0.01 or shares[b.key] <= b.min_kw + 0.01
            if a.priority > b.priority and shares[a.key] < a.max_kw - 0.01:
                assert shares[b.key] <= b.min_kw + 0.01, (
                    "a lower priority gets more than its minimum only once higher ones are full"
                )


@settings(max_examples=100, deadline=None)
@given(sessions(), st.randoms(use_true_random=False))
def test_the_same_inputs_give_the_same_allocation_in_any_order(case, rng):
    headroom, demands = case
    first = allocate(headroom, demands)
    shuffled = list(demands)
    rng.shuffle(shuffled)
    assert allocate(headroom, shuffled) == first == allocate(headroom, demands)


def test_equal_sessions_share_equally_and_a_small_one_leaves_its_rest_to_the_others():
    shares = allocate(30, [Demand("a", 1.4, 22), Demand("b", 1.4, 22), Demand("c", 1.4, 3.7)])
    assert shares == {"a": pytest.approx(13.15), "b": pytest.approx(13.15), "c": 3.7}


def test_a_minimum_above_the_level_is_kept():
    shares = allocate(12, [Demand("big", 6, 22), Demand("a", 1.4, 22), Demand("b", 1.4, 22)])
    assert shares == {"big": 6, "a": pytest.approx(3), "b": pytest.approx(3)}


def test_the_highest_priority_is_served_first():
    shares = allocate(30, [Demand("low", 1.4, 22, 0), Demand("high", 1.4, 22, 3)])
    assert shares == {"high": 22, "low": pytest.approx(8)}


def test_the_level_is_infinite_when_every_maximum_fits_and_zero_at_the_minimums():
    kinds = [(1, 5, 1), (2, 6, 1)]  # (min, max, sessions alike)
    assert water_level(11, kinds) == math.inf
    assert water_level(3, kinds) == 0.0
    assert water_level(7, kinds) == pytest.approx(3.5)
    assert water_level(10.5, [(1, 5, 2), (2, 6, 1)]) == pytest.approx(3.5), "two alike count twice"


def test_who_charges_is_the_longest_prefix_whose_minimums_fit():
    ordered = [Demand("a", 5, 11), Demand("b", 5, 11), Demand("c", 1, 11), Demand("d", 1, 11)]
    fitting, waiting = fitting_prefix(10.5, ordered)
    assert [d.key for d in fitting] == ["a", "b"]
    assert [d.key for d in waiting] == ["c", "d"], "c would fit, but it never overtakes b's place in line"


def test_jain_index():
    assert jain_index([3, 3, 3]) == 1
    assert jain_index([1, 0, 0, 0]) == pytest.approx(0.25)
    assert jain_index([]) == 1


def test_allocating_10_000_sessions_stays_fast():
    rng = random.Random(1)
    demands = [Demand(f"s{i}", 1.4, rng.choice((7.4, 11, 22)), rng.randrange(4)) for i in range(10_000)]
    shares = allocate(30_000, demands)
    assert sum(shares.values()) == pytest.approx(30_000)
