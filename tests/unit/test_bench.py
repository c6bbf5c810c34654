"""The benchmarks' arithmetic, reports and generated docs, without running anything."""

from __future__ import annotations

import json
import subprocess

import pytest

from bench.day import summarise_day
from bench.doc import DOC, render
from bench.measure import STRATEGIES
from bench.profile import bucket_of, parse_collapsed, shares, short
from bench.replicas import counter_total, summarise_replicas
from bench.report import chart, markdown, run_table, targets_table, text
from bench.run import plan
from bench.sharing_cost import sharing_cost_table
from bench.sharing_cost import summarise as summarise_pairs
from bench.stamp import RESULTS, commit, cpu_model, yardstick_ms
from bench.summary import AGAIN, floor_of_slices, summarise

SIZES = [2, 64]


def run(rps, spread=1, errors=0):
    return {
        "rps": rps, "p50_ms": 10.0, "p99_ms": 20.0, "errors": errors, "spread_sessions": spread,
        "cpu_ms_per_request": {"gateway": 1.0, "balancer": 1.0, "substations": 0.5},
    }  # fmt: skip


def floor(rps):
    return {"rps": rps, "p50_ms": 5.0, "p99_ms": 9.0, "errors": 0}


def a_round(floor_rps, deployment_rps, single_small_rps, single_large_rps, spread=1, fixed_rps=None, sizes=SIZES):
    """A round as bench.run records it; every deployment strategy at every size runs at `deployment_rps`."""
    measured = {"floor/1": floor(floor_rps), "idle_poll_cpu": 0.02}
    for size in sizes:
        measured[f"floor/{size}"] = floor(floor_rps)
        for strategy in STRATEGIES:
            measured[f"deployment/fair/{strategy}/{size}"] = run(deployment_rps, spread)
        measured[f"deployment/fixed/most_power/{size}"] = run(fixed_rps or deployment_rps, spread)
    measured["single/fair/most_power/2"] = run(single_small_rps)
    measured["single/fair/most_power/64"] = run(single_large_rps)
    return measured


def test_ratios_are_the_median_of_within_round_ratios_not_a_ratio_of_medians():
    # Per round the suite runs at 0.9, 0.5 and 0.8 of its floor: the median of ratios is 0.8. The medians
    # are 1 000 (suite) and 2 000 (floor), whose ratio, 0.5, comes from a slow round's suite and a fast one's floor.
    rounds = [a_round(1000, 900, 900, 810), a_round(2000, 1000, 1000, 500), a_round(3000, 2400, 2400, 2160)]
    results = summarise(rounds, SIZES)
    assert results["efficiency"]["deployment"] == {"2": 0.8, "64": 0.8}
    assert results["runs"]["deployment/fair/most_power/2"]["rps"] == 1000  # the median itself
    # single-process scaling, 64 over 2 per round: 0.9, 0.5, 0.9 -> 0.9 (the ratio of medians would be 0.81)
    assert results["single_scaling"] == 0.9
    assert results["runs"]["floor/64"]["rps_rounds"] == [1000, 2000, 3000]


def test_each_setup_is_compared_with_its_own_floor():
    rounds = [a_round(1000, 800, 700, 700)]
    rounds[0]["floor/64"]["rps"] = 400  # 64 processes cost the machine more: the deployment is judged against that
    results = summarise(rounds, SIZES)
    assert results["efficiency"]["deployment"] == {"2": 0.8, "64": 2.0}
    assert results["efficiency"]["single"] == {"2": 0.7, "64": 0.7}  # against the chain to one process
    assert "vs_floor" not in results["runs"]["floor/2"]


def test_a_run_measured_between_two_floor_slices_is_compared_with_their_mean():
    # The round's floor figure (1 000) is the median of its slices; the run at N = 2 was measured between
    # slices at 600 and 1 000 req/s (the machine was speeding up), so it is judged against 800.
    rounds = [a_round(1000, 600, 900, 900)]
    rounds[0]["deployment/fair/most_power/2"]["floor_rps"] = 800.0
    results = summarise(rounds, SIZES)
    assert results["efficiency"]["deployment"] == {"2": 0.75, "64": 0.6}, "N = 64 has no slices: its floor figure"
    assert results["runs"]["deployment/fair/least_utilization/2"]["vs_floor"] == 0.6


def test_a_floor_in_slices_reports_medians_and_sums():
    def a_slice(rps, cpu):
        figures = {**floor(rps), "requests": int(rps * 5)}
        return {**figures, "cpu_ms_per_request": {"gateway": cpu, "balancer": cpu, "substations": cpu / 2}}

    figures = floor_of_slices([a_slice(300, 2.0), a_slice(500, 1.0), a_slice(400, 1.6), a_slice(320, 1.8)])
    assert figures["rps"] == 360 and figures["slices_rps"] == [300, 500, 400, 320]
    assert figures["requests"] == 7600 and figures["errors"] == 0
    assert figures["cpu_ms_per_request"] == {"gateway": 1.7, "balancer": 1.7, "substations": 0.85}


def test_every_run_of_a_round_has_a_floor_block_around_it_and_the_headline_opens_and_closes_each_deployment():
    blocks = plan([2, 8, 64])
    assert [hops for hops, _ in blocks] == [2, 8, 64, 1]
    steps = ["/".join(step) for _, block in blocks for step in block]
    assert len(set(steps)) == 3 * len(STRATEGIES) + 2 + 3
    assert len(steps) == len(set(steps)) + 3, "the headline twice in each deployment block, the rest once"
    assert all(step.endswith(f"/{hops}") for hops, block in blocks[:3] for step in ["/".join(s) for s in block])
    for hops, block in blocks[:3]:
        headline = ("deployment", "fair", "most_power", str(hops))
        assert block[0] == block[-1] == headline and block.count(headline) == 2
    assert [step[0] for step in blocks[-1][1]] == ["single"] * 3


def test_a_setup_measured_twice_in_a_round_counts_the_mean_of_its_ratios_and_every_run_in_its_medians():
    # N = 2's headline ran at 0.6 of the floor around it first, at 0.9 last: 0.75 for the round; its spread
    # was 1, then 4 (the worst run counts); its p99 medians over both runs of both rounds.
    rounds = [a_round(1000, 600, 900, 900), a_round(1000, 600, 900, 900)]
    for measured in rounds:
        first = measured["deployment/fair/most_power/2"]
        first["floor_rps"] = 1000.0
        first[AGAIN] = {**run(900, spread=4), "floor_rps": 1000.0, "p99_ms": 40.0}
    results = summarise(rounds, SIZES)
    headline = results["runs"]["deployment/fair/most_power/2"]
    assert results["efficiency"]["deployment"]["2"] == 0.75 and headline["vs_floor_rounds"] == [0.75, 0.75]
    assert headline["spread_sessions"] == 4 and headline["p99_ms"] == 30.0 and headline["rps_rounds"] == [750, 750]
    assert results["fair_vs_fixed"]["2"] == 1.25, "fair's mean throughput in the round over fixed's"
    assert results["runs"]["deployment/fair/least_utilization/2"]["vs_floor"] == 0.6


def test_a_target_shows_its_rounds_lowest_and_highest_beside_the_median():
    rounds = [a_round(1000, rps, 900, 900) for rps in (700, 760, 820)]
    results = summarise(rounds, SIZES)
    efficiency = next(t for t in results["targets"] if t["name"] == "deployment at N = 2 / floor")
    assert efficiency["measured"] == 0.76 and efficiency["rounds"] == [0.7, 0.76, 0.82] and efficiency["met"]
    header, rows = targets_table(results["targets"])
    assert header[3] == "rounds (lowest to highest)"
    assert rows[0][3] == "0.7 to 0.82"
    spread_row = next(row for row in rows if row[0].startswith("spread"))
    assert spread_row[3] == "-", "a spread is the worst run, not a median of rounds"
    day_like = [{"name": "x", "measured": 1.0, "target": ">= 1", "met": True}]
    assert targets_table(day_like)[0] == ["target", "bound", "measured", ""], "no column without rounds"


def test_fair_against_fixed_is_a_within_round_ratio():
    rounds = [a_round(1000, 900, 900, 900, fixed_rps=1000), a_round(1000, 1900, 900, 900, fixed_rps=2000)]
    assert summarise(rounds, SIZES)["fair_vs_fixed"] == {"2": 0.925, "64": 0.925}


def test_the_spread_is_the_worst_round_errors_add_up_and_targets_say_what_missed():
    rounds = [a_round(1000, 800, 900, 900, spread=0), a_round(1000, 800, 900, 900, spread=3)]
    rounds[0]["deployment/fair/random/64"]["errors"] = 2
    results = summarise(rounds, SIZES)
    assert results["spread"]["least_utilization"] == {"2": 3, "64": 3}
    assert results["runs"]["deployment/fair/random/64"]["errors"] == 2
    met = {t["name"]: t["met"] for t in results["targets"]}
    assert met["deployment at N = 2 / floor"] is True
    assert met["spread, most_power, N = 64 (sessions)"] is False
    assert met["idle polling of 64 substations (share of a core)"] is True
    assert len(met) == 2 + 1 + 2 * len(SIZES) + 2 + 1


def test_one_size_gives_each_target_once_and_no_scaling_of_it_over_itself():
    names = [t["name"] for t in summarise([a_round(1000, 800, 900, 900, sizes=[64])], [64])["targets"]]
    assert len(names) == len(set(names)) == 1 + 2 + 1 + 1
    assert not any(name.startswith("single process") for name in names)


def test_a_floor_shows_what_each_of_its_hops_costs_beside_the_service_it_stands_in_for():
    rounds = [a_round(1000, 800, 900, 900)]
    rounds[0]["floor/2"]["cpu_ms_per_request"] = {"gateway": 1.2, "balancer": 1.3, "substations": 0.9}
    header, rows = run_table(summarise(rounds, SIZES))
    floor_row = next(row for row in rows if row[0] == "floor: chain to 2 processes")
    assert floor_row[-3:] == ["1.200", "1.300", "0.900"] and header[-3] == "gateway CPU ms/req"
    assert next(row for row in rows if row[0] == "floor: chain to 64 processes")[-3:] == ["-", "-", "-"]


def test_tables_line_up_in_text_and_markdown():
    table = (["setup", "req/s"], [["floor", "1000"], ["deployment, fair", "95"]])
    assert text(table).splitlines() == ["setup             req/s", "-----------------------",
                                        "floor              1000", "deployment, fair     95"]  # fmt: skip
    assert markdown(table).splitlines()[1] == "| --- | ---: |"


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
    figures = shares(stacks)
    assert figures["samples"] == 8
    assert figures["self_percent"] == [["urllib3 (HTTP client)", 75.0], ["balancer's own code", 25.0]]
    assert figures["inclusive_percent"][0] == ["handle (gevent/baseserver.py)", 100.0]


def test_the_replicas_benchmark_sums_a_counter_and_takes_its_ratio_within_rounds():
    exposition = (
        "# HELP balancer_outdated_choices_total Second choices.\n"
        "# TYPE balancer_outdated_choices_total counter\n"
        'balancer_outdated_choices_total{substation="s1"} 3.0\n'
        'balancer_outdated_choices_total{substation="s2"} 4.0\n'
        'balancer_outdated_choices_created{substation="s1"} 1.7e+09\n'
        'balancer_decisions_total{substation="s1",strategy="least_utilization"} 9.0\n'
    )
    assert counter_total(exposition, "balancer_outdated_choices_total") == 7.0

    def sample(rps, spread=1):
        return {"rps": rps, "p99_ms": 50.0, "errors": 0, "spread_sessions": spread, "second_choices_per_session": 0.5}

    runs = {1: [sample(1000), sample(2000), sample(3000)], 2: [sample(900), sample(1000, 3), sample(2400)]}
    figures = summarise_replicas(runs)
    assert figures["rps_two_over_one"] == 0.8  # 0.9, 0.5, 0.8; the ratio of medians would be 0.5
    assert figures["setups"]["2"]["worst_spread_sessions"] == 3


def a_grid(allocation, started, queued, queued_started, share, overloads=0):
    return {
        "allocation": allocation, "arrivals": 500, "outcomes": {"started": started, "queued": queued, "refused": 0,
        "other": 0}, "queued_started": queued_started, "started_without_refusal": started + queued_started,
        "energy_delivered_kwh": 900.0, "energy_allowed_kwh": 900.0 / share, "delivered_share": share,
        "wait_p50_min": 30.0, "wait_p95_min": 90.0, "overload_instants": overloads, "overload_counter_s": 0.0,
        "jain_lowest": 0.99, "peak_waiting": 40, "oversubscription": 3.0, "replies": [], "samples": [],
    }  # fmt: skip


def test_the_day_benchmark_checks_the_targets_of_smart_charging():
    report = {"runs": [a_grid("fixed", 150, 350, 130, 0.7), a_grid("fair", 400, 100, 20, 0.97)]}
    figures = summarise_day(report)
    assert {t["name"]: t["met"] for t in figures["targets"]} == {
        "overload instants, both grids (sampled + counted seconds)": True,
        "fair: energy delivered / energy the headroom allowed": True,
        "sessions started at once (201), fair / fixed": True,
    }
    assert figures["started_within_day_fair_over_fixed"] == 1.5
    assert "replies" not in figures["grids"]["fair"]
    report["runs"][0]["overload_instants"] = 1
    assert summarise_day(report)["targets"][0]["met"] is False


def test_a_generated_block_is_made_again_from_its_results_file(tmp_path):
    stamp = {"commit": "abc123", "date": "2026-11-25T18:00:00+00:00", "command": "python -m bench.decision",
             "machine": {"cores": 2, "python": "3.11.7", "system": "Linux"}, "settings": {}}  # fmt: skip
    (tmp_path / "decision.json").write_text(json.dumps({**stamp, "figures": {"decision_us": {"10000": 25.04}}}))
    document = "prose\n<!-- bench:decision -->\nstale 99 µs\n<!-- /bench:decision -->\nmore\n"
    rendered = render(document, tmp_path)
    assert "stale" not in rendered and "| 10,000 | 25.0 | < 50 |" in rendered
    assert "commit `abc123`" in rendered and rendered.endswith("<!-- /bench:decision -->\nmore\n")
    assert render(rendered, tmp_path) == rendered
    assert "Not measured yet" in render("<!-- bench:day -->\n<!-- /bench:day -->", tmp_path)
    with pytest.raises(ValueError, match="unknown"):
        render("<!-- bench:nonsense -->\n<!-- /bench:nonsense -->", tmp_path)


def test_every_figure_in_the_benchmarks_doc_is_the_one_its_results_file_holds():
    document = DOC.read_text()
    for name in ("run", "sharing_cost", "decision", "allocation", "replicas", "profile", "day", "ocpp"):
        assert f"<!-- bench:{name} -->" in document, f"docs/benchmarks.md has no block for {name}"
        assert (RESULTS / f"{name}.json").exists(), f"bench/results/{name}.json is not committed"
    assert render(document) == document, "docs/benchmarks.md is out of date: python -m bench.doc --write"


def test_sharing_cost_is_the_median_of_the_pairs_ratios_never_a_ratio_of_medians():
    pairs = {
        "2": [{"fair": 90, "fixed": 100}, {"fair": 300, "fixed": 200}, {"fair": 100, "fixed": 100}],
        "64": [{"fair": 50, "fixed": 100}, {"fair": 60, "fixed": 100}, {"fair": 400, "fixed": 100}],
    }
    figures = summarise_pairs(pairs)
    # Medians of each side would give 100 / 100 at N = 2 and 60 / 100 at N = 64; pairs give 1.0 and 0.6.
    assert figures["sizes"]["2"]["ratios"] == [0.9, 1.5, 1.0] and figures["sizes"]["2"]["median"] == 1.0
    assert figures["sizes"]["64"]["median"] == 0.6
    assert [t["met"] for t in figures["targets"]] == [True, False]
    _, rows = sharing_cost_table(figures)
    assert rows[1] == ["N = 64", "0.50, 0.60, 4.00", "0.60"]


def test_what_the_benchmarks_write_does_not_make_the_commit_they_measure_dirty(tmp_path):
    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)  # fmt: skip

    (tmp_path / "bench" / "results").mkdir(parents=True)
    (tmp_path / "docs").mkdir()
    for path in ("bench/results/run.json", "docs/benchmarks.md", "service.py"):
        (tmp_path / path).write_text("before")
    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "measured")
    (tmp_path / "bench/results/run.json").write_text("a benchmark wrote this")
    (tmp_path / "docs/benchmarks.md").write_text("and made this from it")
    assert not commit(tmp_path).endswith("+dirty")
    (tmp_path / "service.py").write_text("code changed after the commit")
    assert commit(tmp_path).endswith("+dirty")


def test_the_chart_draws_every_strategys_rounds_against_the_target(tmp_path):
    rounds = [a_round(1000, rps, 900, 900) for rps in (700, 760, 820)]
    figures = summarise(rounds, SIZES)
    path = tmp_path / "run.png"
    chart(figures, path)
    image = path.read_bytes()
    assert image.startswith(b"\x89PNG") and len(image) > 10_000, "bars, dots, a target line and labels"


def test_the_ocpp_benchmark_pools_every_chargers_delay_and_says_who_was_never_told():
    from bench.ocpp import (
        BUCKETS,
        bucket_of,
        limit_a,
        ocpp_table,
        reserve_steps,
        share_kw,
        summarise_size,
        targets,
        unsettled,
    )

    def step(latencies, chargers=5000, sent=5000, cpu=5.0):
        return {"chargers": chargers, "latencies_s": latencies, "profiles_sent": sent, "csms_cpu_s": cpu,
                "simulators_cpu_s": 2 * cpu, "csms_idle_share": 0.1, "machine_share": 0.9}  # fmt: skip

    # 99 quick deliveries and one slow one per step: one in a hundred is beyond the p99, never beyond the max.
    quick = [0.5 + n / 100 for n in range(99)]
    steps = [step([*quick, 3.0], chargers=101), step([*quick, 2.5], chargers=100)]
    figures = summarise_size(101, 101, steps)
    assert figures["deliveries"] == 200 and figures["missing"] == 1, "a charger never told counts, not dropped"
    assert figures["p50_s"] == 0.99 and figures["max_s"] == 3.0 and figures["step_p99_s"] == [1.48, 1.48]
    assert figures["p99_s"] == 1.48 and figures["csms_cpu_ms_per_profile"] == 1.0
    assert figures["simulators_cpu_ms_per_profile"] == 2.0
    found = targets({"5000": {**figures, "connected": 5000}})
    assert [t["met"] for t in found] == [True, False], "a p99 within 2 s with a charger never told is a miss"
    assert ocpp_table({"sizes": {"5000": figures}})[1][0][:6] == ["5,000", "101", "5,000", "2", "200", "1"]
    # A step takes STEP_KW from the chargers' shares: a limit lower than their maximum, in OCPP's 0.1 A steps.
    assert limit_a(share_kw(1000, 0)) == 32.0 and limit_a(share_kw(1000, 1)) == 30.6
    assert limit_a(share_kw(5000, 1)) == 31.7
    assert reserve_steps(5000, 20, 20) == 14, "600 chargers not heard from yet, 22.08 kW each"
    # A size whose chargers never all charged at their limit: how far they got, and both targets missed.
    stuck = unsettled(5000, {"connected": 3243, "charging": 2544, "at_limit": 2475}, 370)
    assert [t["met"] for t in targets({"5000": stuck})] == [False, False]
    assert ocpp_table({"sizes": {"5000": stuck}})[1][0][:4] == ["5,000", "3,243", "2,475", "0"]
    assert bucket_of("validate (/v/jsonschema/validators.py:1)") == BUCKETS[1][1]
    assert bucket_of("_evaluate (/w/load_tester/fleet/charger.py:602)") == "the fleet simulator's own code"
    assert bucket_of("call (/v/ocpp/charge_point.py:9)") == "ocpp library (routing, dataclasses)"


def test_the_http_departures_day_keeps_each_grids_drivers_and_checks_planning_against_fair():
    from bench.departures_day import KEPT, departures_day_table
    from bench.departures_day import summarise as summarise_departures

    def grid(allocation, satisfied, energy, overload=0):
        figures = {key: 0 for key in KEPT}
        figures.update(allocation=allocation, departures=400, satisfied=satisfied, satisfied_share=satisfied / 400,
                       promised=12, energy_delivered_kwh=energy, delivered_share=0.99, overload_instants=overload,
                       overload_counter_s=0.0)  # fmt: skip
        return {**figures, "replies": []}

    figures = summarise_departures({"runs": [grid("fair", 290, 7800.0), grid("planned", 330, 7900.0)]})
    assert figures["more_satisfied"] == 40 and all(t["met"] for t in figures["targets"])
    assert "replies" not in figures["grids"]["fair"]
    _, rows = departures_day_table(figures)
    assert [row[0] for row in rows] == ["fair", "planned"] and rows[1][3] == "82.5%"
    worse = summarise_departures({"runs": [grid("fair", 290, 7800.0), grid("planned", 280, 7000.0, 1)]})
    assert [t["met"] for t in worse["targets"]] == [False, False, False]


def test_the_stamp_says_the_processor_and_its_pace():
    assert cpu_model() and cpu_model() != "unknown"
    pace = yardstick_ms(rounds=3)
    assert 0 < pace < 10_000
