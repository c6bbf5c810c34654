"""The load tester's day scenario on its own: the arrival curve, the seeded schedule, the integrals over the
samples, the summary of a played day and its report, the command line, and the grid --compare starts."""

from __future__ import annotations

import math
import re
import statistics

import pytest

from grid_common.simulated_time import SimulatedClock
from load_tester.cli import DEFAULT_PEAK_RATE_TEXT, parse_args
from load_tester.client import Outcome
from load_tester.day.arrivals import (
    COMPOSE_GRID,
    ENERGY_KWH,
    MAX_POWERS_KW,
    PEAK_HOUR,
    Arrival,
    arrival_shape,
    default_peak_rate,
    hour_at,
    mean_shape,
    oversubscription,
    schedule,
    time_scale_for,
)
from load_tester.day.compare import COMPOSE_BALANCER, phase_for_midnight_at, substation_env
from load_tester.day.grid_sampler import GridSample, GridSampler, parse_metrics, substation_metrics
from load_tester.day.play import PlayedDay
from load_tester.day.report import day_report, day_tables
from load_tester.day.stats import (
    clock_warnings,
    energy_allowed_kwh,
    energy_delivered_kwh,
    integral,
    overload_instants,
    summarise_day,
)
from tools.topology import load_compose

HOURS = [index / 20 for index in range(24 * 20)]  # every 3 minutes of a day

# --------------------------------------------------------------------------- the arrival curve


def test_the_curve_is_normalised_to_1_at_its_evening_peak():
    values = [arrival_shape(hour) for hour in HOURS]
    assert all(0 < value <= 1 for value in values)
    assert max(values) == pytest.approx(1.0, abs=1e-6)
    assert 18.0 <= PEAK_HOUR <= 19.0
    assert arrival_shape(PEAK_HOUR) == pytest.approx(1.0)


def test_the_curve_is_low_at_night_with_a_morning_bump():
    night = max(arrival_shape(hour) for hour in (2, 3, 4, 5))
    assert night < 0.1
    morning = arrival_shape(8)
    assert morning > 3 * night
    assert morning > arrival_shape(6) and morning > arrival_shape(11), "a bump, not a slope"
    assert arrival_shape(8) < arrival_shape(17) < arrival_shape(18.5), "the evening is the peak"


def test_the_curve_is_smooth_and_repeats_every_24_hours():
    for hour in (0.0, 3.3, 12.0, 18.5, 23.9):
        assert arrival_shape(hour + 24) == pytest.approx(arrival_shape(hour))
        assert arrival_shape(hour - 24) == pytest.approx(arrival_shape(hour))
    # Across midnight as anywhere else: no step from one 3 minutes to the next.
    steps = [abs(arrival_shape(h + 0.05) - arrival_shape(h)) for h in [*HOURS, 23.99]]
    assert max(steps) < 0.03


def test_mean_shape_is_the_average_over_the_day():
    assert mean_shape() == pytest.approx(statistics.fmean(arrival_shape(hour) for hour in HOURS), rel=1e-3)
    assert 0.2 < mean_shape() < 0.4


def test_hour_at_runs_24_hours_over_the_day_from_the_start_hour():
    assert hour_at(0.0, 0.0, 120) == 0.0
    assert hour_at(0.0, 60.0, 120) == 12.0
    assert hour_at(22.0, 30.0, 120) == 4.0  # 22:00 + 6 h, past midnight
    assert time_scale_for(120) == 720.0 and time_scale_for(240) == 360.0


# --------------------------------------------------------------------------- the schedule


def test_the_same_seed_gives_the_same_arrivals_and_another_seed_others():
    first = schedule(7, 120, 12.0)
    assert first == schedule(7, 120, 12.0)
    assert first != schedule(8, 120, 12.0)
    assert [a.at_s for a in first] != [a.at_s for a in schedule(8, 120, 12.0)]


def test_arrivals_are_in_order_within_the_day_with_bodies_as_specified():
    arrivals = schedule(3, 60, 20.0, start_hour=6.0, vehicle_prefix="car-")
    assert [a.index for a in arrivals] == list(range(1, len(arrivals) + 1))
    assert all(0 < a.at_s < 60 for a in arrivals)
    assert [a.at_s for a in arrivals] == sorted(a.at_s for a in arrivals)
    assert all(a.hour == pytest.approx(hour_at(6.0, a.at_s, 60)) for a in arrivals)
    for arrival in arrivals:
        body = arrival.body
        assert body["vehicle_id"] == f"car-{arrival.index}"
        assert ENERGY_KWH[0] <= body["energy_kwh"] <= ENERGY_KWH[1]
        assert body["max_power_kw"] in MAX_POWERS_KW
        assert body["min_power_kw"] == 1.4 and body["wait"] is True
        assert body["priority"] in (0, 1)
    priorities = [a.body["priority"] for a in arrivals]
    assert 0 < priorities.count(1) < priorities.count(0) / 3, "mostly 0, some 1"
    assert {a.body["max_power_kw"] for a in arrivals} == set(MAX_POWERS_KW)


def test_the_schedule_follows_the_curve_and_the_peak_rate():
    arrivals = [a for seed in range(5) for a in schedule(seed, 240, 10.0)]
    expected = 5 * 10.0 * 240 * mean_shape()
    assert abs(len(arrivals) - expected) < 4 * math.sqrt(expected)  # a Poisson count
    evening = sum(17 <= a.hour < 20 for a in arrivals)
    night = sum(2 <= a.hour < 5 for a in arrivals)
    assert evening > 8 * night
    # The busiest half hour is near the curve's peak.
    counts = [sum(h / 2 <= a.hour < h / 2 + 0.5 for a in arrivals) for h in range(48)]
    assert abs(counts.index(max(counts)) / 2 - PEAK_HOUR) <= 1.5


def test_a_schedule_starting_at_another_hour_plays_that_hour_first():
    arrivals = schedule(1, 120, 12.0, start_hour=18.0)
    first_tenth = [a for a in arrivals if a.at_s < 12]  # 18:00-20:24: the evening peak
    assert len(first_tenth) > 0.2 * len(arrivals)


def test_the_default_peak_rate_oversubscribes_the_evening_peak_3_times():
    assert oversubscription(default_peak_rate(120), 120) == pytest.approx(3.0)
    assert oversubscription(default_peak_rate(20), 20) == pytest.approx(3.0)
    assert f"{default_peak_rate(120):.1f}" == DEFAULT_PEAK_RATE_TEXT
    # The same cars arrive in a day of any length: the rate scales with it.
    assert default_peak_rate(20) * 20 == pytest.approx(default_peak_rate(120) * 120)
    assert oversubscription(2 * default_peak_rate(120), 120) == pytest.approx(6.0)


# --------------------------------------------------------------------------- integrals over samples


def sample(t: float, **substations: dict) -> GridSample:
    return GridSample(t, substations)


def test_energy_allowed_is_the_integral_of_min_headroom_demand_summed_over_substations():
    samples = [
        # a: headroom 100 and demand 40 -> 40 kW; b: headroom 50 and demand 80 -> 50 kW
        sample(0.0, a={"headroom_kw": 100.0, "demand_kw": 40.0}, b={"headroom_kw": 50.0, "demand_kw": 80.0}),
        # 2 s later: a has no demand; b is not read (its last read holds)
        sample(2.0, a={"headroom_kw": 100.0, "demand_kw": 0.0}),
        sample(3.0, a={"headroom_kw": 10.0, "demand_kw": 30.0}, b={"headroom_kw": 0.0, "demand_kw": 10.0}),
        sample(4.0, a={"headroom_kw": 99.0, "demand_kw": 99.0}, b={"headroom_kw": 99.0, "demand_kw": 99.0}),
    ]
    # kW * wall seconds: a 40*2 + 0*1 + 10*1; b 50*3 (held from 0 to 3) + 0*1
    assert integral(samples, lambda f: min(f["headroom_kw"], f["demand_kw"])) == pytest.approx(240.0)
    # At TIME_SCALE 720 a wall second is 0.2 simulated hours: 240 kW*s -> 48 kWh.
    assert energy_allowed_kwh(samples, 720) == pytest.approx(48.0)
    assert energy_allowed_kwh(samples[:1], 720) == 0.0


def test_integrals_use_the_moment_each_substation_answered():
    samples = [
        sample(0.0, a={"t": 0.0, "headroom_kw": 10.0, "demand_kw": 10.0}),
        sample(1.0, a={"t": 1.5, "headroom_kw": 0.0, "demand_kw": 0.0}),
    ]
    assert integral(samples, lambda f: f["headroom_kw"]) == pytest.approx(15.0)


def test_missing_fields_allow_nothing():
    samples = [sample(0.0, a={"headroom_kw": None, "demand_kw": 5.0}), sample(1.0, a={})]
    assert energy_allowed_kwh(samples, 3600) == 0.0


def test_energy_delivered_is_the_counters_growth_and_a_restart_takes_nothing_away():
    samples = [
        sample(0.0, a={"energy_kwh": 10.0}, b={"energy_kwh": 100.0}),
        sample(1.0, a={"energy_kwh": None}, b={"energy_kwh": 150.0}),
        sample(2.0, a={"energy_kwh": 25.0}, b={"energy_kwh": 20.0}),  # b restarted: its counter began again
    ]
    assert energy_delivered_kwh(samples) == pytest.approx(15.0)
    assert energy_delivered_kwh(samples[:1]) is None


def test_overload_instants_count_samples_above_capacity():
    fine = {"capacity_kw": 150.0, "ev_power_kw": 100.0, "background_kw": 50.0}  # exactly at capacity
    over = {"capacity_kw": 150.0, "ev_power_kw": 100.0, "background_kw": 50.01}
    samples = [sample(0.0, a=fine, b=over), sample(1.0, a=over, b={"capacity_kw": 150.0}), sample(2.0, a=fine)]
    assert overload_instants(samples) == 2
    assert overload_instants(samples[2:]) == 0


# --------------------------------------------------------------------------- metrics


METRICS = """# HELP substation_energy_delivered_joules_total Energy delivered to EVs while this process ran.
# TYPE substation_energy_delivered_joules_total counter
substation_energy_delivered_joules_total{substation="substation1"} 7.2e+06
substation_overload_seconds_total{substation="substation1"} 0.0
substation_fairness_jain_ratio{priority="0",substation="substation1"} 0.9
substation_fairness_jain_ratio{priority="1",substation="substation1"} 0.75
substation_wait_seconds_bucket{le="+Inf",substation="substation1"} 3.0
process_cpu_seconds_total 1.5
"""


def test_substation_metrics_reads_energy_overload_and_the_lowest_fairness():
    assert substation_metrics(METRICS) == {"energy_kwh": 2.0, "overload_s": 0.0, "jain": 0.75}
    assert substation_metrics("") == {"energy_kwh": None, "overload_s": None, "jain": None}


def test_parse_metrics_reads_names_labels_and_values():
    parsed = parse_metrics(METRICS)
    assert ("substation_wait_seconds_bucket", {"le": "+Inf", "substation": "substation1"}, 3.0) in parsed
    assert ("process_cpu_seconds_total", {}, 1.5) in parsed
    assert all(not name.startswith("#") for name, _, _ in parsed)


# --------------------------------------------------------------------------- a played day, summarised


def played_day(label: str, statuses: list[str], samples: list[GridSample], sessions: dict) -> PlayedDay:
    arrivals = [Arrival(i, float(i), hour_at(0.0, float(i), 10), {"wait": True}) for i in range(1, len(statuses) + 1)]
    outcomes = [
        Outcome(i, status, 5.0, {"session_id": f"s.{i:08d}"} if status in ("201", "202") else {}, sent_at=1000.0 + i)
        for i, status in enumerate(statuses, start=1)
    ]
    sampler = GridSampler({}, 0.5)
    sampler.samples = samples
    sampler.allocations = {"a": label}
    sampler.close()
    day = PlayedDay(label, arrivals, outcomes, sampler, 10.0, 0.0, 8640.0, 1000.0, 1010.0)
    day.sessions = sessions
    return day


def grid(t: float, ev: float, headroom: float, demand: float, energy: float, queued: int = 0) -> GridSample:
    fields = {
        "capacity_kw": 100.0,
        "ev_power_kw": ev,
        "background_kw": 100.0 - headroom,
        "headroom_kw": headroom,
        "demand_kw": demand,
        "queued_sessions": queued,
        "energy_kwh": energy,
        "overload_s": 0.0,
        "jain": 1.0 - t / 100,
    }
    return GridSample(t, {"a": fields})


def iso(wall: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(wall, UTC).isoformat().replace("+00:00", "Z")


def test_summarise_day_counts_outcomes_energy_and_waits():
    # TIME_SCALE 8640: a wall second is 2.4 simulated hours (144 min).
    samples = [grid(0, 50, 80, 50, 0.0), grid(5, 80, 80, 120, 120.0, queued=2), grid(10, 80, 80, 120, 312.0)]
    sessions = {
        "s.00000002": {"requested_at": iso(1002.0), "started_at": iso(1003.0)},  # waited 1 s: 144 min
        "s.00000003": {"requested_at": iso(1003.0), "started_at": iso(1005.5)},  # 2.5 s: 360 min
        "s.00000004": {"requested_at": iso(1004.0), "started_at": None},  # still waiting at 1010: 6 s
    }
    day = played_day("fair", ["201", "202", "202", "202", "503", "error: timeout"], samples, sessions)
    result = summarise_day(day, peak_rate=1.0)
    assert result.outcomes == {"started": 1, "queued": 3, "refused": 1, "other": 1}
    assert result.other_statuses == {"error: timeout": 1}
    assert (result.queued_started, result.queued_waiting, result.started_without_refusal) == (2, 1, 3)
    assert result.energy_delivered_kwh == pytest.approx(312.0)
    # (50 * 5 + 80 * 5) kW*s at 2.4 h per second
    assert result.energy_allowed_kwh == pytest.approx(1560.0)
    assert result.energy_sampled_kwh == pytest.approx(1560.0)
    assert result.delivered_share == pytest.approx(0.2)
    assert (result.wait_p50_min, result.wait_p95_min) == (pytest.approx(360.0), pytest.approx(864.0))
    assert (result.overload_instants, result.overload_counter_s) == (0, 0.0)
    assert (result.jain_end, result.jain_lowest) == (pytest.approx(0.9), pytest.approx(0.9))
    assert result.peak_waiting == 2 and result.allocation == "fair"
    assert result.implied_time_scale == pytest.approx(8640.0 * 0.2)
    assert any("TIME_SCALE" in warning for warning in result.warnings), "energy says the clock runs slower"


def test_clock_warnings_stay_quiet_when_the_grid_follows_the_day():
    samples = [grid(0, 50, 80, 50, 0.0), grid(10, 50, 80, 50, 50 * 10 * 2.4)]
    result = summarise_day(played_day("fixed", ["201"], samples, {}), peak_rate=1.0)
    assert result.implied_time_scale == pytest.approx(8640.0)
    assert result.background_peak_hour is not None
    result.background_peak_hour = 19.0
    assert clock_warnings(result) == []
    result.background_peak_hour = 7.0
    assert ["background peaked at 07:00" in w for w in clock_warnings(result)] == [True]


# --------------------------------------------------------------------------- the report


def two_results():
    samples = [grid(0, 50, 80, 50, 0.0), grid(10, 80, 80, 120, 600.0)]
    fixed = summarise_day(played_day("fixed", ["201", "202", "503", "503"], samples, {}), peak_rate=1.0)
    fair = summarise_day(played_day("fair", ["201", "201", "201", "202"], samples, {}), peak_rate=1.0)
    return fixed, fair


def row(lines: list[str], label: str) -> list[str]:
    """The cells after a row's label."""
    for line in lines:
        if line.strip().startswith(label):
            return line.strip()[len(label) :].split()
    raise AssertionError(f"no row {label!r} in:\n" + "\n".join(lines))


def test_the_report_has_a_column_per_run_and_a_row_per_metric():
    fixed, fair = two_results()
    lines = day_tables([fixed, fair])
    headers = [line for line in lines if re.match(r"^  \S.*\s+fixed\s+fair$", line)]
    assert [h.split("  ")[1].strip() for h in headers] == [
        "Outcomes",
        "Energy",
        "Waiting (queued sessions, simulated minutes)",
        "Safety and fairness",
        "The grid",
    ]
    assert row(lines, "arrivals (requests sent)") == ["4", "4"]
    assert row(lines, "started at once (201)") == ["1", "3"]
    assert row(lines, "queued (202)") == ["1", "1"]
    assert row(lines, "refused (503)") == ["2", "0"]
    assert row(lines, "overload instants in the samples") == ["0", "0"]
    assert row(lines, "delivered / allowed (%)") == ["50.0", "50.0"]  # 600 kWh of 50 kW * 10 s * 2.4 h/s
    # Numbers are right-aligned under their run's name.
    header = next(line for line in lines if line.startswith("  Outcomes"))
    arrivals = next(line for line in lines if "arrivals (requests sent)" in line)
    assert len(header) == len(arrivals) and header.endswith("fair")


def test_the_report_titles_itself_and_lists_other_outcomes():
    fixed, fair = two_results()
    fixed.other_statuses = {"502": 2}
    text = day_report([fixed, fair], "Fixed vs fair")
    assert text.splitlines()[1:3] == ["Fixed vs fair", "============="]
    assert "fixed: other outcomes: 502: 2" in text


# --------------------------------------------------------------------------- the command line


def test_day_options_and_their_defaults():
    args = parse_args(["--scenario", "day"])
    assert (args.scenario, args.day_seconds, args.peak_rate, args.seed, args.compare) == ("day", 120.0, None, 1, False)
    assert args.sample_interval == 0.5
    args = parse_args(["--scenario", "day", "--compare", "--day-seconds", "20", "--peak-rate", "3", "--seed", "9"])
    assert (args.day_seconds, args.peak_rate, args.seed, args.compare) == (20.0, 3.0, 9, True)


def test_the_requests_scenario_keeps_its_defaults():
    args = parse_args([])
    assert (args.scenario, args.requests, args.concurrency, args.sample_interval) == ("requests", 16, 1, 0.25)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--day-seconds", "60"], "--day-seconds: only with --scenario day"),
        (["--compare"], "--compare: only with --scenario day"),
        (["--seed", "2", "--peak-rate", "1"], "--peak-rate, --seed: only with --scenario day"),
        (["--scenario", "day", "-n", "5"], "-n/--requests: not with --scenario day"),
        (["--scenario", "day", "--energy-kwh", "5"], "--energy-kwh: not with --scenario day"),
        (["--scenario", "day", "--day-seconds", "0"], "--day-seconds must be more than 0"),
        (["--scenario", "day", "--day-seconds", "nan"], "--day-seconds must be more than 0"),
        (["--scenario", "day", "--peak-rate", "-1"], "--peak-rate must be more than 0"),
        (["--scenario", "week"], "invalid choice: 'week'"),
    ],
)
def test_invalid_day_options_exit_with_status_2_and_say_why(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        parse_args(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


# --------------------------------------------------------------------------- the grid --compare starts


def test_the_compose_grid_is_docker_compose_yml_s():
    services = load_compose()["services"]
    substations = {
        name: s["environment"] for name, s in services.items() if s.get("build", {}).get("target") == "substation"
    }
    assert {s.name for s in COMPOSE_GRID} == set(substations)
    for shape in COMPOSE_GRID:
        env = substations[shape.name]
        assert float(env["CAPACITY_KW"]) == shape.capacity_kw
        assert float(env["BACKGROUND_PEAK_FRACTION"]) == shape.background_peak_fraction
        assert float(env.get("BACKGROUND_PHASE_HOURS", 0)) == shape.background_phase_hours
        assert float(env["CHARGER_MAX_POWER_KW"]) == shape.charger_max_power_kw
    balancer = services["balancer"]["environment"]
    assert {key: str(balancer[key]) for key in COMPOSE_BALANCER} == COMPOSE_BALANCER


def test_the_played_day_starts_at_the_grids_midnight():
    time_scale, midnight = time_scale_for(120), 1_767_225_600.123
    phase = phase_for_midnight_at(midnight, time_scale)
    assert 0 <= phase < 24
    clock = SimulatedClock(time_scale, phase)
    assert min(clock.hour_of_day(midnight), 24 - clock.hour_of_day(midnight)) < 1e-4
    assert clock.hour_of_day(midnight + 90) == pytest.approx(18.0, abs=1e-4)  # 3/4 of the day
    envs = substation_env("fair", time_scale, phase)
    later = SimulatedClock(time_scale, float(envs["substation2"]["BACKGROUND_PHASE_HOURS"]))
    assert later.hour_of_day(midnight + 90) == pytest.approx(16.0, abs=1e-4), "two hours behind, as in compose"
    assert envs["substation1"]["ALLOCATION"] == "fair" and float(envs["substation3"]["TIME_SCALE"]) == 720.0
    assert envs["substation3"]["BACKGROUND_PEAK_FRACTION"] == "0.2", "set: Stack.substation defaults it to 0"


def test_departures_keep_the_arrivals_and_give_each_driver_a_stay_by_the_hour_they_come():
    from load_tester.day.arrivals import stay_hours

    plain = schedule(7, 240.0, 3.0)
    leaving = schedule(7, 240.0, 3.0, departures=True)
    assert [(a.at_s, a.body) for a in plain] == [(a.at_s, a.body) for a in leaving], "the same cars come"
    assert all(a.stay_hours is None and a.leaves_s(240.0) is None for a in plain)
    for arrival in leaving:
        assert arrival.stay_hours is not None and 0 < arrival.stay_hours < 24
        assert arrival.leaves_s(240.0) == pytest.approx(arrival.at_s + arrival.stay_hours * 10.0)
        if 5 <= arrival.hour < 12:
            assert 4 <= arrival.stay_hours <= 9, "at work"
    assert schedule(7, 240.0, 3.0, departures=True) == leaving, "seeded"
    import random

    home = [stay_hours(random.Random(n), 20.0) for n in range(50)]
    assert any(1 <= h <= 3 for h in home) and any(10.5 <= h <= 12.5 for h in home), "an evening out, or home"


def test_a_day_with_departures_runs_until_the_last_driver_leaves_and_counts_who_left_with_their_energy():
    from load_tester.day.play import timeline

    arrivals = [
        Arrival(1, 1.0, 2.4, {"energy_kwh": 10.0, "wait": True}, stay_hours=2.4),  # leaves at 2 s
        Arrival(2, 2.0, 4.8, {"energy_kwh": 20.0, "wait": True}, stay_hours=24.0),  # leaves at 12 s, past the day
        Arrival(3, 3.0, 7.2, {"energy_kwh": 5.0, "wait": True}, stay_hours=1.2),  # refused: leaves with nothing
    ]
    events = timeline(arrivals, 10.0)
    assert [(moment, a and a.index, leaving) for moment, a, leaving in events] == [
        (1.0, 1, False), (2.0, 2, False), (2.0, 1, True), (3.0, 3, False), (3.5, 3, True), (12.0, 2, True),
        (12.0, None, False),
    ]  # fmt: skip
    day = played_day("planned", ["201", "202", "503"], [grid(0, 0, 80, 0, 0.0), grid(12, 0, 80, 0, 0.0)], {})
    day.arrivals = arrivals
    day.outcomes[0].body.update(promised=True)
    day.departed = {1: {"energy_delivered_kwh": 9.995}, 2: {"energy_delivered_kwh": 12.0}}
    result = summarise_day(day, peak_rate=1.0)
    assert (result.departures, result.satisfied, result.promised) == (3, 1, 1), "within 10 Wh is all of it"
    assert result.satisfied_share == pytest.approx(1 / 3)
    assert "left with their energy (%)" in day_report([result], "Departures")
    assert "left with their energy" not in day_report([summarise_day(played_day("fair", ["201"], [], {}), 1.0)], "")
