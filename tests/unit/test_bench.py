"""The benchmark's arithmetic and the profile's reading, without running anything."""

from __future__ import annotations

from bench.measure import STRATEGIES
from bench.profile import bucket_of, parse_collapsed, short
from bench.profile import summarise as summarise_profile
from bench.replicas import counter_total
from bench.summary import summarise


def run(rps, spread=1, errors=0, balancer_ms=1.0):
    return {
        "rps": rps, "p50_ms": 10.0, "p99_ms": 20.0, "errors": errors, "spread_sessions": spread,
        "cpu_ms_per_request": {"gateway": 1.0, "balancer": balancer_ms, "substations": 0.5},
    }  # fmt: skip


def a_round(floor_rps, small_rps, large_rps, spread=1):
    suite = {}
    for strategy in STRATEGIES:
        suite[(strategy, 2)] = run(small_rps, spread)
        suite[(strategy, 64)] = run(large_rps, spread)
    return {"floor": {"rps": floor_rps, "p50_ms": 5.0, "p99_ms": 9.0, "errors": 0}, "suite": suite}


def test_ratios_are_taken_within_each_round_then_their_median():
    # The machine is twice as fast in the second round: per-round ratios stay 0.8 and 0.9.
    rounds = [a_round(1000, 800, 720), a_round(2000, 1600, 1440), a_round(1000, 800, 800)]
    results = summarise(rounds, [2, 64])
    assert results["efficiency"] == 0.8
    assert results["scaling"]["rps_ratio"] == 0.9
    assert results["floor_rps"] == 1000
    least_small = next(r for r in results["runs"] if r["strategy"] == "least_utilization" and r["substations"] == 2)
    assert least_small["rps"] == 800 and least_small["rps_rounds"] == [800, 1600, 800]


def test_the_spread_reported_is_the_worst_round_and_errors_add_up():
    rounds = [a_round(1000, 800, 720, spread=0), a_round(1000, 800, 720, spread=3)]
    rounds[0]["suite"][("random", 64)]["errors"] = 2
    results = summarise(rounds, [2, 64])
    assert {r["spread_sessions"] for r in results["runs"]} == {3}
    assert next(r for r in results["runs"] if r["strategy"] == "random" and r["substations"] == 64)["errors"] == 2


def test_profile_buckets_frames_by_library_and_counts_inclusive_time_once_per_stack():
    collapsed = (
        "handle (/v/gevent/baseserver.py:10);assign (/app/load_balancer/assignment.py:71);"
        "urlopen (/v/urllib3/poolmanager.py:5) 6\n"
        "handle (/v/gevent/baseserver.py:10);choose (/app/load_balancer/strategies.py:40) 2\n"
        "not a stack line\n"
    )
    stacks = parse_collapsed(collapsed)
    assert [count for _, count in stacks] == [6, 2]
    assert bucket_of(stacks[0][0][-1]) == "urllib3 (HTTP client)"
    assert short(stacks[1][0][-1]) == "choose (load_balancer/strategies.py)"
    text = summarise_profile(stacks)
    assert "8 samples" in text
    assert " 75.0  urllib3 (HTTP client)" in text and " 25.0  balancer's own code" in text
    assert "100.0  handle (gevent/baseserver.py)" in text


def test_the_replicas_benchmark_sums_a_counter_over_its_labels():
    exposition = (
        "# HELP balancer_outdated_choices_total Second choices.\n"
        "# TYPE balancer_outdated_choices_total counter\n"
        'balancer_outdated_choices_total{substation="s1"} 3.0\n'
        'balancer_outdated_choices_total{substation="s2"} 4.0\n'
        'balancer_outdated_choices_created{substation="s1"} 1.7e+09\n'
        'balancer_decisions_total{substation="s1",strategy="least_utilization"} 9.0\n'
    )
    assert counter_total(exposition, "balancer_outdated_choices_total") == 7.0
