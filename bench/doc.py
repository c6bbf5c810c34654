"""docs/benchmarks.md's figures, made from the results files the benches wrote.

    python -m bench.doc --write     # rewrite every generated block of docs/benchmarks.md
    python -m bench.doc --check     # exit 1 if a block differs from what its results file says

A generated block sits between `<!-- bench:<name> -->` and `<!-- /bench:<name> -->`, where <name> is a
results file (bench/results/<name>.json); it starts with the file's stamp (commit, date, machine, command),
then its tables. Prose around the blocks carries no figures: the tests check that the blocks agree with
the results files, so a figure in the docs is always one a bench wrote.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

from bench.report import Table, fair_vs_fixed_table, markdown, run_table, targets_table
from bench.stamp import RESULTS
from tools.processes import ROOT

DOC = ROOT / "docs" / "benchmarks.md"
BLOCK = re.compile(r"(<!-- bench:(?P<name>[a-z_]+) -->\n)(?P<body>.*?)(<!-- /bench:(?P=name) -->)", re.DOTALL)


def stamp_line(results: dict) -> str:
    machine = results["machine"]
    cores = f"{machine['cores']} cores"
    if "cpu" in machine:  # files written before the stamp said which processor, and how fast it ran, do not
        cores += f" ({machine['cpu']}, yardstick {machine['yardstick_ms']:g} ms)"
    return (
        f"*Measured at commit `{results['commit']}` on {results['date'][:10]}, {cores}, "
        f"Python {machine['python']}, by `{results['command'].strip()}`.*"
    )


def decision_tables(figures: dict) -> list[Table]:
    from bench.decision import TARGET_US

    rows = [[f"{int(size):,}", f"{micros:.1f}", f"< {TARGET_US:g}"] for size, micros in figures["decision_us"].items()]
    return [(["substations", "µs per decision", "target"], rows)]


def allocation_tables(figures: dict) -> list[Table]:
    names = {
        "plain": "3 phases, no circuits",
        "phases_and_circuits": "1 and 3 phases, 3-level circuits",
        "planned": "3 phases, departures planned",
    }
    rows = [
        [names[layout], f"{int(size):,}", f"{row['p50_ms']:.2f}", f"{row['p99_ms']:.2f}", f"{row['max_ms']:.2f}",
         "-" if row["target_p99_ms"] is None else f"< {row['target_p99_ms']:g}"]
        for layout, sizes in figures.items()
        for size, row in sizes.items()
    ]  # fmt: skip
    return [(["grid", "sessions", "p50 ms", "p99 ms", "max ms", "target p99 ms"], rows)]


def run_tables(figures: dict) -> list[Table]:
    return [run_table(figures), fair_vs_fixed_table(figures), targets_table(figures["targets"])]


def replicas_tables(figures: dict) -> list[Table]:
    from bench.replicas import replicas_table

    return [replicas_table(figures)]


def profile_tables(figures: dict) -> list[Table]:
    from bench.profile import profile_tables as tables

    return list(tables(figures))


def day_tables(figures: dict) -> list[Table]:
    from bench.day import day_table

    return [day_table(figures), targets_table(figures["targets"])]


def sharing_cost_tables(figures: dict) -> list[Table]:
    from bench.sharing_cost import sharing_cost_table

    return [sharing_cost_table(figures), targets_table(figures["targets"])]


def departures_tables(figures: dict) -> list[Table]:
    from bench.departures import tables

    return tables(figures)


def departures_day_tables(figures: dict) -> list[Table]:
    from bench.departures_day import departures_day_table

    return [departures_day_table(figures), targets_table(figures["targets"])]


def ocpp_tables(figures: dict) -> list[Table]:
    from bench.ocpp import tables

    return tables(figures)


RENDERERS: dict[str, Callable[[dict], list[Table]]] = {
    "run": run_tables,
    "decision": decision_tables,
    "allocation": allocation_tables,
    "replicas": replicas_tables,
    "profile": profile_tables,
    "day": day_tables,
    "sharing_cost": sharing_cost_tables,
    "ocpp": ocpp_tables,
    "departures": departures_tables,
    "departures_day": departures_day_tables,
}


def block(name: str, results_dir: Path = RESULTS) -> str:
    path = results_dir / f"{name}.json"
    if not path.exists():
        return f"*Not measured yet: `bench/results/{name}.json` is missing.*\n"
    results = json.loads(path.read_text())
    parts = [stamp_line(results), *(markdown(table) for table in RENDERERS[name](results["figures"]))]
    return "\n\n".join(parts) + "\n"


def render(document: str, results_dir: Path = RESULTS) -> str:
    """The document with every generated block made again from its results file."""

    def again(match: re.Match) -> str:
        if match["name"] not in RENDERERS:
            raise ValueError(f"docs/benchmarks.md names an unknown results file: {match['name']}")
        return f"{match.group(1)}\n{block(match['name'], results_dir)}\n{match.group(4)}"

    return BLOCK.sub(again, document)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite the generated blocks")
    mode.add_argument("--check", action="store_true", help="exit 1 if a generated block is out of date")
    args = parser.parse_args(argv)
    current = DOC.read_text()
    rendered = render(current)
    if args.write:
        DOC.write_text(rendered)
        print(f"written: {DOC.relative_to(ROOT)}")
        return 0
    if rendered != current:
        print(f"{DOC.relative_to(ROOT)} is out of date: python -m bench.doc --write", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
