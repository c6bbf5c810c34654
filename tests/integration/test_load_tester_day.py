"""The load tester's day scenario, --compare: fixed against fair on grids it starts itself, run as a script."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# A day in 20 s: the shortest where a step of the substations' allocation (1 s) is still a fraction of an hour
# that matters (72 simulated minutes), and the two grids run well under a minute together.
DAY_SECONDS = "20"


def table_rows(output: str) -> dict[str, tuple[str, str]]:
    """Every row of the side-by-side tables: its label -> (fixed, fair)."""
    rows = {}
    for line in output.splitlines():
        match = re.match(r"^  (\S.*?)\s{2,}(\S+)\s+(\S+)$", line)
        if match and not set(match.group(2)) <= {"-"}:
            rows[match.group(1)] = (match.group(2), match.group(3))
    return rows


@pytest.mark.timeout(180)
@pytest.mark.long
def test_compare_plays_the_same_day_on_a_fixed_and_a_fair_grid(tmp_path):
    out, chart = tmp_path / "day.json", tmp_path / "day.png"
    command = [sys.executable, "load_tester/test.py", "--scenario", "day", "--compare", "--day-seconds", DAY_SECONDS]
    run = subprocess.run(
        [*command, "--json", str(out), "--plot", str(chart)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert re.search(r"oversubscription at the evening peak: 3\.00x", run.stdout), run.stdout
    assert "Fixed vs fair: the same arrivals on fresh grids" in run.stdout

    rows = table_rows(run.stdout)
    for title in ("Outcomes", "Energy", "Safety and fairness", "The grid"):
        assert rows[title] == ("fixed", "fair"), f"{title}: a column per allocation, fixed first"
    arrivals = rows["arrivals (requests sent)"]
    assert arrivals[0] == arrivals[1] and int(arrivals[0]) > 100, "the same arrivals in both"
    for column in (0, 1):

        def value(label: str, column: int = column) -> float:
            return float(rows[label][column].removesuffix("x"))

        kinds = ("started at once (201)", "queued (202)", "refused (503)", "other outcomes")
        assert sum(value(kind) for kind in kinds) == value("arrivals (requests sent)")
        assert value("other outcomes") == 0, run.stdout
        assert value("overload instants in the samples") == 0
        assert value("overload counter (s, summed)") == 0
        assert value("delivered (kWh, the counters)") > 0
        assert 2.0 <= value("oversubscription at the evening peak (sampled)") <= 4.0
        assert 0 < value("Jain's fairness, lowest sampled") <= 1
    fixed_started, fair_started = (int(v) for v in rows["started at once (201)"])
    assert fair_started > fixed_started, "sharing starts more sessions without a wait or a refusal"
    fixed_day, fair_day = (int(v) for v in rows["started in the day (201, or 202 then started)"])
    assert fair_day > fixed_day
    assert int(rows["refused (503)"][1]) <= int(rows["refused (503)"][0])
    assert float(rows["delivered / allowed (%)"][1]) >= 90, "fair uses what the headroom allows"
    assert "WARNING" not in run.stderr, "each grid's clock follows the played day"

    data = json.loads(out.read_text())
    assert [r["label"] for r in data["runs"]] == ["fixed", "fair"]
    assert [r["allocation"] for r in data["runs"]] == ["fixed", "fair"], "each grid runs what it was started with"
    assert all(len(r["replies"]) == len(data["arrivals"]) == int(arrivals[0]) for r in data["runs"])
    assert all(len(r["samples"]) >= 30 for r in data["runs"]), "a sample every 0.5 s of a 20 s day"
    assert chart.read_bytes().startswith(PNG_MAGIC)


@pytest.mark.timeout(240)
@pytest.mark.long
def test_compare_with_departures_plays_the_same_drivers_on_a_fair_and_a_planned_grid(tmp_path):
    out = tmp_path / "day.json"
    command = [sys.executable, "load_tester/test.py", "--scenario", "day", "--compare", "--departures",
               "--day-seconds", DAY_SECONDS, "--json", str(out)]  # fmt: skip
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=230)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert "Fair vs planned: the same arrivals on fresh grids" in run.stdout
    rows = table_rows(run.stdout)
    assert rows["Departures"] == ("fair", "planned")
    drivers = rows["drivers (each with a departure)"]
    assert drivers[0] == drivers[1] == rows["arrivals (requests sent)"][0], "every driver has a departure"
    for column in (0, 1):
        assert int(rows["left with their energy"][column]) <= int(drivers[column])
        assert int(rows["overload instants in the samples"][column]) == 0
        assert float(rows["overload counter (s, summed)"][column]) == 0
    assert int(rows["promised it at their request"][0]) == 0, "fair sharing plans nothing"
    assert int(rows["promised it at their request"][1]) > 0, "planning tells drivers at once"

    data = json.loads(out.read_text())
    assert [r["allocation"] for r in data["runs"]] == ["fair", "planned"]
    assert all(run["satisfied"] == int(rows["left with their energy"][n]) for n, run in enumerate(data["runs"]))
    assert all(a["stay_hours"] > 0 for a in data["arrivals"]), "each driver's stay, to play the day again"
