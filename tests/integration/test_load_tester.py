"""The load tester (load_tester/test.py) run as a script against the real services."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.helpers import call
from tools.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = "load_tester/test.py"
LONG = {"TIME_SCALE": "1"}  # sessions last an hour of wall time: nothing ends during a test
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def load_test(gateway_url: str, balancer_url: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, SCRIPT, "--url", gateway_url, "--balancer-url", balancer_url, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=None if env is None else {**os.environ, **env},
    )


def section(output: str, title: str) -> str:
    """The lines of one summary section, from its title to the next blank line."""
    start = output.index(title)
    end = output.find("\n\n", start)
    return output[start : end if end != -1 else len(output)]


def count_of(output: str, status: str) -> int | None:
    """The count of one status in the Outcomes table."""
    match = re.search(rf"^\s+{re.escape(status)}\s+(\d+)\s+[\d.]+\s*$", section(output, "Outcomes"), re.M)
    return int(match.group(1)) if match else None


def test_default_like_run_prints_every_reply_and_a_summary(services):
    grid = services.grid(substation_env=LONG)
    run = load_test(grid.gateway.url, grid.balancer.url, "-n", "5")
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr

    reply_lines = [line for line in run.stdout.splitlines() if line.startswith("Request ")]
    assert [line.split(":")[0] for line in reply_lines] == [f"Request {i}" for i in range(1, 6)]
    assert all(line.split(": ", 1)[1].startswith("{'result': 'Charging started'") for line in reply_lines), reply_lines
    assert "'substation': 'substation3'" in reply_lines[0], "the first session on an idle grid goes to the largest"

    assert count_of(run.stdout, "201") == 5
    latency = section(run.stdout, "Latency")
    assert "over 5 HTTP answers" in latency
    for key in ("min", "p50", "p95", "p99", "max"):
        assert key in latency
    assert re.search(r"^\s+5\s+1\s+[\d.]+\s+[\d.]+$", section(run.stdout, "Throughput"), re.M)
    sessions = section(run.stdout, "Sessions by substation")
    placed = {m[0]: int(m[1]) for m in re.findall(r"^\s+(substation\d)\s+(\d+)\s+[\d.]+$", sessions, re.M)}
    assert sum(placed.values()) == 5 and set(placed) == {"substation1", "substation2", "substation3"}, sessions
    assert f"spread (max - min): {max(placed.values()) - min(placed.values())} sessions" in sessions
    assert "utilization spread (max - min):" in section(run.stdout, "Balancer view")
    balancer = section(run.stdout, "Balancer view")
    assert "unavailable" not in balancer
    active = {m[0]: int(m[1]) for m in re.findall(r"^\s+(substation\d)\s+yes\s+(\d+)\s", balancer, re.M)}
    assert active == placed, "the balancer's final view matches where the sessions went"


def test_concurrent_quiet_run_writes_a_json_summary(services, tmp_path):
    grid = services.grid(substation_env=LONG)
    out = tmp_path / "out.json"
    run = load_test(grid.gateway.url, grid.balancer.url, "-n", "40", "-c", "8", "-q", "--json", str(out))
    assert run.returncode == 0, run.stderr
    assert not re.search(r"^Request \d+:", run.stdout, re.M), "quiet runs print no per-request lines"
    assert "Outcomes" in run.stdout

    summary = json.loads(out.read_text())
    assert summary["requests"] == 40 and summary["concurrency"] == 8
    assert summary["outcomes"] == {"201": 40}
    by_substation = summary["sessions_by_substation"]
    assert set(by_substation) == {"substation1", "substation2", "substation3"}
    assert sum(by_substation.values()) == 40
    assert summary["spread_sessions"] == max(by_substation.values()) - min(by_substation.values())
    assert summary["duration_s"] > 0 and summary["throughput_rps"] > 0
    latency = summary["latency_ms"]
    assert set(latency) == {"min", "p50", "p95", "p99", "max"}
    assert 0 < latency["min"] <= latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]

    listed = call("GET", f"{grid.balancer.url}/substations").body["substations"]
    assert {s["name"]: s["active_sessions"] for s in listed} == by_substation

    replies = summary["replies"]
    assert sorted(r["index"] for r in replies) == list(range(1, 41))
    assert {r["status"] for r in replies} == {"201"} and len({r["session_id"] for r in replies}) == 40
    assert all(r["latency_ms"] > 0 and r["substation"] in by_substation for r in replies)
    sent = sorted(r["sent_at"] for r in replies)
    assert sent[-1] - sent[0] <= summary["duration_s"], "each reply says when its request was sent"


def test_full_grid_outcomes_count_201_and_503(services, tmp_path):
    grid = services.grid({"a": 22}, substation_env={**LONG, "ALLOCATION": "fixed"})  # 2 sessions of 11 kW fill it
    out = tmp_path / "out.json"
    run = load_test(grid.gateway.url, grid.balancer.url, "-n", "4", "--max-power-kw", "11", "--json", str(out))
    refusals = [r for r in json.loads(out.read_text())["replies"] if r["status"] == "503"]
    assert len(refusals) == 2 and all(int(r["retry_after"]) >= 1 for r in refusals), "refusals say when to retry"
    assert run.returncode == 0, run.stderr
    assert count_of(run.stdout, "201") == 2
    assert count_of(run.stdout, "503") == 2
    assert re.search(r"^\s+503\s+2\s+50\.0$", run.stdout, re.M)
    assert "'vehicle_id': 'EV-1'" in run.stdout, "a built body names the vehicle after the request"
    assert "'status': 503" in run.stdout, "503 replies are printed as their problem body"
    assert re.search(r"^\s+a\s+yes\s+2\s+22\.0 / 22\.0\s+100\.0$", section(run.stdout, "Balancer view"), re.M)


def test_closed_port_counts_connection_errors_and_fails(tmp_path):
    closed = f"http://127.0.0.1:{free_port()}"
    out = tmp_path / "out.json"
    run = load_test(closed, closed, "-n", "3", "--timeout", "2", "--json", str(out))
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert count_of(run.stdout, "error: connection refused") == 3
    assert "balancer unavailable: connection refused" in run.stdout
    summary = json.loads(out.read_text())
    assert summary["outcomes"] == {"error: connection refused": 3}
    assert summary["sessions_by_substation"] == {} and summary["spread_sessions"] is None
    assert summary["latency_ms"] == dict.fromkeys(("min", "p50", "p95", "p99", "max"))


def test_plot_charts_the_run_and_adds_the_samples_to_the_json(services, tmp_path):
    grid = services.grid(substation_env={**LONG, "ALLOCATION": "fixed"})
    chart, out = tmp_path / "chart.png", tmp_path / "s.json"
    run = load_test(
        grid.gateway.url, grid.balancer.url, "-n", "60", "-c", "6", "-q", "--plot", str(chart), "--json", str(out)
    )
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert run.stdout.rstrip().endswith(f"chart written to {chart}"), run.stdout[-300:]

    image = chart.read_bytes()
    assert image.startswith(PNG_MAGIC)
    assert len(image) > 10_000, "a chart with lines, labels and a legend, not an empty canvas"

    summary = json.loads(out.read_text())
    samples = summary["samples"]
    assert len(samples) >= 2, "one before the first request, one after the last"
    times = [sample["t"] for sample in samples]
    assert times[0] >= 0 and times == sorted(times) and len(set(times)) == len(times), times
    assert summary["sample_errors"] == 0
    for sample in samples:
        assert set(sample["substations"]) == {"substation1", "substation2", "substation3"}
        for sub in sample["substations"].values():
            assert set(sub) == {"utilization", "active_sessions"}
            assert 0 <= sub["utilization"] <= 1
    sessions = [sum(sub["active_sessions"] for sub in sample["substations"].values()) for sample in samples]
    assert sessions[0] == 0, "the first sample is the grid before any request"
    # 11 kW sessions: 13 + 13 + 27 fit under 150 + 150 + 300 kW, so the grid fills and refuses the rest.
    assert summary["outcomes"] == {"201": 53, "503": 7}
    assert sessions[-1] == summary["outcomes"]["201"], "the last sample is the grid after the last reply"
    assert f"{len(samples)} samples over" in section(run.stdout, "Samples of the balancer")


def test_plot_with_no_balancer_runs_and_writes_no_chart(services, tmp_path):
    grid = services.grid(substation_env=LONG)
    chart = tmp_path / "chart.png"
    closed = f"http://127.0.0.1:{free_port()}"
    run = load_test(grid.gateway.url, closed, "-n", "5", "-q", "--plot", str(chart))
    assert run.returncode == 0, "the requests succeeded: sampling has no say in the exit code"
    assert "Traceback" not in run.stderr
    assert count_of(run.stdout, "201") == 5
    assert "none: " in section(run.stdout, "Samples of the balancer")
    assert f"no chart written: the balancer at {closed} never answered a sample" in run.stderr
    assert "connection refused" in run.stderr
    assert "chart written to" not in run.stdout
    assert not chart.exists()


def test_plot_without_matplotlib_still_runs(services, tmp_path):
    # A package named matplotlib that cannot be imported, ahead of the real one on the path.
    (tmp_path / "shadow" / "matplotlib").mkdir(parents=True)
    (tmp_path / "shadow" / "matplotlib" / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    no_matplotlib = {"PYTHONPATH": str(tmp_path / "shadow")}
    grid = services.grid(substation_env=LONG)

    plain = load_test(grid.gateway.url, grid.balancer.url, "-n", "2", "-q", env=no_matplotlib)
    assert plain.returncode == 0 and not plain.stderr, "without --plot, matplotlib is never imported"

    chart, out = tmp_path / "chart.png", tmp_path / "s.json"
    plot = ("--plot", str(chart), "--json", str(out))
    run = load_test(grid.gateway.url, grid.balancer.url, "-n", "3", "-q", *plot, env=no_matplotlib)
    assert run.returncode == 0
    assert "Traceback" not in run.stderr
    assert run.stderr.strip() == "--plot needs matplotlib: pip install matplotlib"
    assert count_of(run.stdout, "201") == 3
    assert not chart.exists()
    assert len(json.loads(out.read_text())["samples"]) >= 2, "the samples are still in the JSON"


def test_sampling_options_need_plot():
    run = load_test("http://127.0.0.1:1", "http://127.0.0.1:1", "--plot-tail", "5")
    assert run.returncode == 2
    assert "--sample-interval and --plot-tail only apply with --plot" in run.stderr
    run = load_test("http://127.0.0.1:1", "http://127.0.0.1:1", "--plot", "x.png", "--sample-interval", "0")
    assert run.returncode == 2
    assert "--sample-interval must be more than 0" in run.stderr


def test_piped_into_head_stops_quietly(services):
    grid = services.grid(substation_env=LONG)
    command = [sys.executable, SCRIPT, "--url", grid.gateway.url, "--balancer-url", grid.balancer.url, "-n", "40"]
    producer = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first_line = producer.stdout.readline()
    producer.stdout.close()  # what `head -1` does once it has its line
    _, errors = producer.communicate(timeout=60)
    assert first_line.startswith(b"Request 1: ")
    assert b"Traceback" not in errors, errors.decode()
    assert producer.returncode in (0, 141)
