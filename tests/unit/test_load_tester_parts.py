"""The load tester's parts on their own: statistics, the report's tables, the command line and request bodies."""

from __future__ import annotations

import pytest

from load_tester.cli import parse_args
from load_tester.client import Outcome, body_for
from load_tester.report import table
from load_tester.stats import latency_stats, outcome_counts, percentile, sessions_by_substation, spread


def answered(index: int, latency_ms: float, status: str = "201", substation: str | None = None) -> Outcome:
    body = {"result": "Charging started"} if substation is None else {"substation": substation}
    return Outcome(index, status, latency_ms, body)


def failed(index: int, status: str = "error: timeout") -> Outcome:
    return Outcome(index, status, body=status)


# --------------------------------------------------------------------------- statistics


@pytest.mark.parametrize(
    ("pct", "expected"),
    [(0, 1), (10, 1), (11, 2), (50, 5), (51, 6), (90, 9), (95, 10), (99, 10), (100, 10)],
)
def test_percentile_is_nearest_rank(pct, expected):
    assert percentile([float(v) for v in range(1, 11)], pct) == expected


def test_percentile_of_one_value_is_that_value():
    assert percentile([7.5], 1) == percentile([7.5], 99) == 7.5


def test_latency_stats_cover_only_http_answers_and_round_to_hundredths():
    outcomes = [answered(1, 30.0), failed(2), answered(3, 10.004), answered(4, 20.0), answered(5, 40.126)]
    assert latency_stats(outcomes) == {"min": 10.0, "p50": 20.0, "p95": 40.13, "p99": 40.13, "max": 40.13}


def test_latency_stats_with_no_answers_are_all_none():
    stats = latency_stats([failed(1), failed(2, "error: connection refused")])
    assert list(stats) == ["min", "p50", "p95", "p99", "max"]
    assert set(stats.values()) == {None}


def test_outcome_counts_put_http_statuses_in_numeric_order_then_errors_by_name():
    statuses = ["503", "error: timeout", "201", "error: connection refused", "201", "404", "99", "503", "201"]
    outcomes = [failed(i, s) if s.startswith("error") else answered(i, 1.0, s) for i, s in enumerate(statuses)]
    counts = outcome_counts(outcomes)
    assert list(counts.items()) == [
        ("99", 1),
        ("201", 3),
        ("404", 1),
        ("503", 2),
        ("error: connection refused", 1),
        ("error: timeout", 1),
    ]


def test_sessions_by_substation_count_201_replies_and_known_substations_without_any():
    outcomes = [
        answered(1, 1.0, substation="s2"),
        answered(2, 1.0, substation="s1"),
        answered(3, 1.0, substation="s2"),
        answered(4, 1.0, "200", substation="s3"),  # not a new session
        Outcome(5, "503", 1.0, {"status": 503, "substation": "s3"}),
        Outcome(6, "201", 1.0, "a text body"),
        answered(7, 1.0),  # a 201 that names no substation
        failed(8),
    ]
    by_substation = sessions_by_substation(outcomes, known=["s4", "s1"])
    assert list(by_substation.items()) == [("s1", 1), ("s2", 2), ("s4", 0)]


def test_sessions_by_substation_with_nothing_known_or_placed_is_empty():
    assert sessions_by_substation([failed(1)], known=[]) == {}


def test_spread_is_max_minus_min_or_none_when_empty():
    assert spread({"a": 4, "b": 1, "c": 3}) == 3
    assert spread({"a": 2, "b": 2}) == 0
    assert spread({}) is None


# --------------------------------------------------------------------------- report


def test_table_left_aligns_the_first_columns_and_right_aligns_the_rest():
    lines = table(["status", "count", "%"], [["201", 12, "92.3"], ["error: timeout", 1, "7.7"]])
    assert lines == [
        "  status          count     %",
        "  --------------  -----  ----",
        "  201                12  92.3",
        "  error: timeout      1   7.7",
    ]


def test_table_with_no_left_column_and_its_own_indent_strips_trailing_spaces():
    lines = table(["min", "max"], [["-", "1234.5"]], left=0, indent="> ")
    assert lines == ["> min     max", "> ---  ------", ">   -  1234.5"]
    lines = table(["name", "x"], [["a", ""]], left=2)
    assert lines[2] == "  a", "a row ending in empty cells has no trailing spaces"


# --------------------------------------------------------------------------- command line


def test_defaults():
    args = parse_args([])
    assert (args.url, args.requests, args.concurrency, args.timeout) == ("http://localhost:6000", 16, 1, 10.0)
    assert args.body is None and not args.quiet and args.plot is None
    assert (args.sample_interval, args.plot_tail) == (0.25, 0.0)


def test_plot_options_are_read_with_plot():
    args = parse_args(["--plot", "c.png", "--sample-interval", "0.5", "--plot-tail", "0"])
    assert (args.plot, args.sample_interval, args.plot_tail) == ("c.png", 0.5, 0.0)


def test_body_is_parsed_as_json():
    assert parse_args(["--body", '{"max_power_kw": 7.4}']).body == {"max_power_kw": 7.4}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-n", "-1"], "-n/--requests must be 0 or more"),
        (["-c", "0"], "-c/--concurrency must be 1 or more"),
        (["--timeout", "0"], "--timeout must be more than 0"),
        (["--timeout", "-2.5"], "--timeout must be more than 0"),
        (["--body", "{oops"], "--body is not valid JSON"),
        (["--body", "[1, 2]"], "--body must be a JSON object"),
        (["--body", '"text"'], "--body must be a JSON object"),
        (["--plot-tail", "5"], "--sample-interval and --plot-tail only apply with --plot"),
        (["--sample-interval", "1"], "--sample-interval and --plot-tail only apply with --plot"),
        (["--plot", "c.png", "--sample-interval", "0"], "--sample-interval must be more than 0"),
        (["--plot", "c.png", "--sample-interval", "nan"], "--sample-interval must be more than 0"),
        (["--plot", "c.png", "--sample-interval", "inf"], "--sample-interval must be more than 0"),
        (["--plot", "c.png", "--plot-tail", "-1"], "--plot-tail must be 0 or more"),
        (["--plot", "c.png", "--plot-tail", "inf"], "--plot-tail must be 0 or more"),
        (["-n", "many"], "argument -n/--requests: invalid int value"),
    ],
)
def test_invalid_options_exit_with_status_2_and_say_why(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        parse_args(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_zero_requests_are_allowed():
    assert parse_args(["-n", "0"]).requests == 0


# --------------------------------------------------------------------------- request bodies


def test_no_body_options_mean_a_body_less_post():
    assert body_for(parse_args([]), 1) is None


def test_a_fixed_body_is_sent_as_given_and_not_shared_between_requests():
    args = parse_args(["--body", '{"max_power_kw": 7.4}'])
    first = body_for(args, 1)
    assert first == {"max_power_kw": 7.4} == body_for(args, 2)
    first["changed"] = True
    assert body_for(args, 3) == {"max_power_kw": 7.4}, "each request gets its own copy"


def test_a_built_body_names_the_vehicle_after_the_request():
    args = parse_args(["--energy-kwh", "22", "--max-power-kw", "11"])
    assert body_for(args, 1) == {"vehicle_id": "EV-1", "energy_kwh": 22.0, "max_power_kw": 11.0}
    assert body_for(args, 17)["vehicle_id"] == "EV-17"
    assert body_for(parse_args(["--energy-kwh", "5", "--vehicle-prefix", "car-"]), 3) == {
        "vehicle_id": "car-3",
        "energy_kwh": 5.0,
    }


def test_built_values_override_the_fixed_body_but_its_vehicle_id_stays():
    args = parse_args(["--body", '{"vehicle_id": "V9", "energy_kwh": 1, "note": "x"}', "--energy-kwh", "30"])
    assert body_for(args, 4) == {"vehicle_id": "V9", "energy_kwh": 30.0, "note": "x"}
