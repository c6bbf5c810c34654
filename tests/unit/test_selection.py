"""Selection strategies and the balancer's view: pure domain, no Flask, no network."""

import random

import pytest

from load_balancer.strategies import LeastUtilization, Random, RoundRobin
from load_balancer.view import GridView, MalformedReport, SubstationView


def view(name, capacity, load=0.0, *, healthy=True, pending_kw=0.0, sessions=0):
    return SubstationView(
        name, f"http://{name}", healthy=healthy, capacity_kw=capacity, load_kw=load,
        pending_kw=pending_kw, active_sessions=sessions,
    )  # fmt: skip


def test_least_utilization_picks_lowest_utilization_after_placement():
    small, big = view("small", 150), view("big", 300)
    assert LeastUtilization().choose([small, big], 11) is big, "11/300 < 11/150"
    busy_big = view("big", 300, load=200)
    assert LeastUtilization().choose([small, busy_big], 11) is small


def test_least_utilization_skips_substations_without_room():
    nearly_full = view("a", 100, load=95)
    roomy = view("b", 100, load=97 - 50)
    assert LeastUtilization().choose([nearly_full, roomy], 11) is roomy
    assert LeastUtilization().choose([nearly_full], 11) is None


def test_ties_break_by_session_count_then_name():
    a, b = view("a", 100, sessions=2), view("b", 100, sessions=1)
    assert LeastUtilization().choose([a, b], 11) is b
    assert LeastUtilization().choose([view("b", 100), view("a", 100)], 11).name == "a"


def test_pending_sessions_spread_a_burst_evenly():
    """Decisions made before any answer returns must still spread: in-flight power counts."""
    grid = GridView([("s1", "u1"), ("s2", "u2"), ("s3", "u3")])
    for name in ("s1", "s2", "s3"):
        grid.apply_report(name, report(capacity=150), now=0)
    strategy = LeastUtilization()
    for _ in range(30):
        choice = strategy.choose(grid.eligible(), 11)
        grid.reserve(choice.name, 11)
    assert sorted(v.pending_sessions for v in grid.all()) == [10, 10, 10]


def test_round_robin_cycles_and_skips_full_ones():
    a, b, c = view("a", 100), view("b", 100, load=95), view("c", 100)
    strategy = RoundRobin()
    assert [strategy.choose([a, b, c], 11).name for _ in range(4)] == ["a", "c", "a", "c"]


def test_random_only_picks_substations_with_room():
    a, b = view("a", 100), view("b", 100, load=95)
    strategy = Random(random.Random(7))
    assert {strategy.choose([a, b], 11).name for _ in range(50)} == {"a"}


def test_power_is_capped_by_each_substations_charger():
    slow = view("slow", 100)
    slow.charger_max_power_kw = 7
    assert slow.power_for(11) == 7


def report(capacity=150.0, load=0.0, active=0, epoch="e1", sequence=1):
    return {
        "capacity_kw": capacity, "load_kw": load, "active_sessions": active,
        "charger_max_power_kw": 22, "epoch": epoch, "sequence": sequence,
    }  # fmt: skip


def test_view_ignores_reports_older_than_the_last_applied():
    grid = GridView([("s1", "u1")])
    assert grid.apply_report("s1", report(load=11, sequence=5), now=1)
    assert not grid.apply_report("s1", report(load=0, sequence=4), now=2), "a stale poll must not undo an admission"
    assert grid.get("s1").load_kw == 11
    assert grid.apply_report("s1", report(load=0, epoch="restarted", sequence=1), now=3), "a restarted process"
    assert grid.get("s1").load_kw == 0


def test_view_marks_unhealthy_after_failures_and_heals_on_report():
    grid = GridView([("s1", "u1")], unhealthy_after_failures=2)
    grid.apply_report("s1", report(), now=0)
    grid.record_failure("s1")
    assert grid.get("s1").healthy, "one timeout may be a blip"
    grid.record_failure("s1")
    assert not grid.get("s1").healthy
    assert grid.eligible() == []
    grid.apply_report("s1", report(sequence=2), now=1)
    assert grid.get("s1").healthy
    grid.record_failure("s1", certain=True)
    assert not grid.get("s1").healthy, "connection refused is certain"


def test_view_rejects_malformed_reports():
    grid = GridView([("s1", "u1")])
    for bad in [None, [], {"capacity_kw": 1}, report(capacity=0), report(capacity="x")]:
        with pytest.raises(MalformedReport):
            grid.apply_report("s1", bad, now=0)


def test_reserve_and_release_balance():
    grid = GridView([("s1", "u1")])
    grid.reserve("s1", 11)
    grid.reserve("s1", 22)
    grid.release("s1", 11)
    assert grid.get("s1").pending_kw == pytest.approx(22)
    grid.release("s1", 22)
    assert grid.get("s1").pending_kw == 0 and grid.get("s1").pending_sessions == 0
