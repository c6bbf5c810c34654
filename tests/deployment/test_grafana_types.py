"""The Grafana dashboard type-checks as Grafana's own `Dashboard` (npm's @grafana/schema) under `tsc --strict`.

monitoring/grafana/schema-check/ pins @grafana/schema at the version of the Grafana image compose runs, and
TypeScript. Its generate.mjs inlines the dashboard's JSON in a TypeScript module as an object literal that
`satisfies` the type, so a value of the wrong type and a property Grafana's schema does not know are errors.
What the Dashboard type leaves open stays open: panel `options`, `fieldConfig.defaults.custom` and each
target are plugin-defined records there (test_monitoring_config.py checks those that matter).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tools.topology import ROOT, load_compose

SCHEMA_CHECK = ROOT / "monitoring" / "grafana" / "schema-check"
DASHBOARD_FILE = ROOT / "monitoring" / "grafana" / "dashboards" / "smart-grid.json"
PINNED = ("@grafana/schema", "typescript")
TSC_ERROR = re.compile(
    r"^(?P<file>[^\s(][^(]*)\((?P<line>\d+),(?P<column>\d+)\): error (?P<code>TS\d+): (?P<message>.*)$"
)


def tool(name: str) -> str:
    binary = shutil.which(name)
    assert binary, (
        f"{name} is missing: the Grafana dashboard's type check runs TypeScript on Node.js "
        "(Debian: `apt-get install nodejs npm`)"
    )
    return binary


def run(*args: str | Path, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, cwd=SCHEMA_CHECK)


def pins() -> dict[str, str]:
    return json.loads((SCHEMA_CHECK / "package.json").read_text())["devDependencies"]


def installed(package: str) -> str | None:
    manifest = SCHEMA_CHECK / "node_modules" / package / "package.json"
    return json.loads(manifest.read_text())["version"] if manifest.exists() else None


@pytest.fixture(scope="module")
def node() -> str:
    """Node, with the pinned packages in schema-check/node_modules: `npm ci` when they are missing or stale."""
    node, npm = tool("node"), tool("npm")
    if any(installed(package) != version for package, version in pins().items()):
        result = run(npm, "ci", "--no-audit", "--no-fund", timeout=100)
        assert result.returncode == 0, f"npm ci in {SCHEMA_CHECK}:\n{result.stdout}{result.stderr}"
    return node


def generate(node: str, dashboard: Path, out: Path) -> None:
    result = run(node, SCHEMA_CHECK / "generate.mjs", dashboard, out)
    assert result.returncode == 0, result.stdout + result.stderr


def tsc(node: str, tsconfig: Path) -> subprocess.CompletedProcess:
    return run(
        node, SCHEMA_CHECK / "node_modules" / "typescript" / "bin" / "tsc", "--strict", "--noEmit", "-p", tsconfig
    )


def errors_by_file(output: str) -> dict[str, list[re.Match]]:
    found: dict[str, list[re.Match]] = {}
    for line in output.splitlines():
        if error := TSC_ERROR.match(line):
            found.setdefault(Path(error["file"]).name, []).append(error)
    return found


def test_pins_are_exact_and_the_schema_is_the_grafana_compose_runs():
    assert set(pins()) == set(PINNED)
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", version) for version in pins().values()), pins()
    lock = json.loads((SCHEMA_CHECK / "package-lock.json").read_text())["packages"]
    for package, version in pins().items():
        assert lock[f"node_modules/{package}"]["version"] == version, (
            f"package-lock.json is stale: npm install {package}"
        )
    images = {s["image"] for s in load_compose()["services"].values() if s.get("image", "").startswith("grafana/")}
    assert images == {f"grafana/grafana:{pins()['@grafana/schema']}"}, "the types of the Grafana that runs it"


def test_the_dashboard_is_a_grafana_dashboard(node):
    """What `npm run check` in schema-check does: the generated module goes to its gitignored generated/."""
    generate(node, DASHBOARD_FILE, SCHEMA_CHECK / "generated" / "smart-grid.ts")
    result = tsc(node, SCHEMA_CHECK / "tsconfig.json")
    assert result.returncode == 0, (
        f"{DASHBOARD_FILE.relative_to(ROOT)} is not a Grafana Dashboard (line numbers are the JSON file's):\n"
        f"{result.stdout}{result.stderr}"
    )


def first_panel(dashboard: dict, panel_type: str) -> dict:
    return next(panel for panel in dashboard["panels"] if panel["type"] == panel_type)


def string_height(dashboard: dict) -> None:
    first_panel(dashboard, "stat")["gridPos"]["h"] = "4"


def unknown_top_level_property(dashboard: dict) -> None:
    dashboard["owner"] = "grid team"


def misspelt_panel_property(dashboard: dict) -> None:
    panel = first_panel(dashboard, "timeseries")
    panel["gridpos"] = panel.pop("gridPos")


def enum_value_misspelt(dashboard: dict) -> None:
    first_panel(dashboard, "stat")["fieldConfig"]["defaults"]["thresholds"]["mode"] = "absolut"


def unknown_variable_type(dashboard: dict) -> None:
    dashboard["templating"]["list"][0]["type"] = "querry"


# Each broken copy: what tsc must say about it, and what the JSON line it points at holds.
BROKEN: dict[str, tuple[Callable[[dict], None], str, str]] = {
    "string_height": (string_height, "Type 'string' is not assignable to type 'number'", '"h": "4"'),
    "unknown_top_level_property": (unknown_top_level_property, """'"owner"' does not exist in type""", '"owner"'),
    "misspelt_panel_property": (misspelt_panel_property, """'"gridpos"' does not exist in type""", '"gridpos"'),
    "enum_value_misspelt": (enum_value_misspelt, """Type '"absolut"' is not assignable""", '"absolut"'),
    "unknown_variable_type": (unknown_variable_type, """Type '"querry"' is not assignable""", '"querry"'),
}


def test_the_check_fails_a_dashboard_that_is_not_one(node, tmp_path):
    """Broken copies of the dashboard, and an intact one, in one tsc run: each broken copy fails for its
    fault, at its line of the JSON, and the intact copy passes, so the failures are not the setup's."""
    copies = {"intact": lambda dashboard: None, **{name: breaks for name, (breaks, *_) in BROKEN.items()}}
    for name, breaks in copies.items():
        dashboard = json.loads(DASHBOARD_FILE.read_text())
        breaks(dashboard)
        (tmp_path / f"{name}.json").write_text(json.dumps(dashboard, indent=2))
        generate(node, tmp_path / f"{name}.json", tmp_path / f"{name}.ts")
    tsconfig = tmp_path / "tsconfig.json"
    tsconfig.write_text(
        json.dumps({"extends": str(SCHEMA_CHECK / "tsconfig.json"), "files": [f"{n}.ts" for n in copies]})
    )
    result = tsc(node, tsconfig)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    errors = errors_by_file(output)
    assert set(errors) == {f"{name}.ts" for name in BROKEN}, output
    for name, (_, message, faulty) in BROKEN.items():
        lines = (tmp_path / f"{name}.json").read_text().splitlines()
        assert any(
            message in error["message"] and faulty in lines[int(error["line"]) - 1] for error in errors[f"{name}.ts"]
        ), f"{name}:\n{output}"
