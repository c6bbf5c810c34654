"""The docs say what the code does: the configuration tables list every variable each service reads with
its default, the metric tables every metric each service exposes with its type and labels, and every
relative link in README.md and docs/ leads to a file (and heading) that exists."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from charge_request_service.config import GatewayConfig
from grid_common.protocol import ALLOCATIONS
from load_balancer.config import BalancerConfig
from load_balancer.strategies import STRATEGIES
from ocpp_service.config import OcppConfig
from substation_service.config import SubstationConfig
from substation_service.grid_limits import LimitPeriod
from tests.in_process import in_process_grid, substation_url
from tools.topology import COMPOSE_FILE, ROOT

DOCS = ROOT / "docs"
CONFIGURATION = DOCS / "configuration.md"
MONITORING = DOCS / "monitoring.md"
GUNICORN_CONF = ROOT / "grid_common" / "gunicorn_conf.py"
# What each service must be given for its configuration to load at all.
REQUIRED = {
    "Substation": (SubstationConfig, {"SUBSTATION_NAME": "substation1"}),
    "Balancer": (BalancerConfig, {"SUBSTATIONS": "substation1=http://127.0.0.1:5001"}),
    "Gateway": (GatewayConfig, {"BALANCER_URL": "http://127.0.0.1:7000"}),
    "OCPP service": (OcppConfig, {"SUBSTATIONS": "substation1=http://127.0.0.1:5001"}),
}
VALUE = re.compile(r"^`([^`]*)`$")


# --- reading Markdown ------------------------------------------------------------------------------------
def without_code_blocks(text: str) -> str:
    return re.sub(r"^```.*?^```", "", text, flags=re.DOTALL | re.MULTILINE)


def section(text: str, heading: str) -> str:
    """The text under `heading` (a whole line such as "## Balancer"), up to the next heading of its level
    or higher."""
    lines = without_code_blocks(text).splitlines()
    assert heading in lines, f"no heading {heading!r}"
    level = len(heading) - len(heading.lstrip("#"))
    body = []
    for line in lines[lines.index(heading) + 1 :]:
        match = re.match(r"^(#+) ", line)
        if match and len(match.group(1)) <= level:
            break
        body.append(line)
    return "\n".join(body)


def rows(text: str) -> list[list[str]]:
    """The rows of every table in `text` whose first cell is a name in backticks, as lists of cells."""
    found = []
    for line in text.splitlines():
        if line.startswith("| `"):
            found.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return found


def names(text: str) -> dict[str, list[str]]:
    """First cell's name -> the row's other cells, for every table row under a section."""
    table = {}
    for cells in rows(text):
        name = VALUE.match(cells[0]).group(1)
        assert name not in table, f"{name} is listed twice"
        table[name] = cells[1:]
    return table


# --- configuration ---------------------------------------------------------------------------------------
class RecordingEnv(Mapping):
    """An environment that notes every variable asked for."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return self.values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


def gunicorn_variables() -> dict[str, str | None]:
    """Every `os.environ.get(NAME[, default])` in gunicorn_conf.py: name -> default (None without one)."""
    found: dict[str, str | None] = {}
    for node in ast.walk(ast.parse(GUNICORN_CONF.read_text())):
        if (
            isinstance(node, ast.Call)
            and ast.unparse(node.func) == "os.environ.get"
            and isinstance(node.args[0], ast.Constant)
        ):
            default = node.args[1].value if len(node.args) > 1 else None
            found.setdefault(node.args[0].value, default)
    return found


def variables_read(service: str) -> set[str]:
    config_class, required = REQUIRED[service]
    env = RecordingEnv(required)
    config_class.from_env(env)
    return env.asked


def test_every_service_table_is_what_gunicorn_conf_reads_with_its_defaults():
    read = gunicorn_variables()
    documented = names(section(CONFIGURATION.read_text(), "## Every service"))
    assert set(documented) == set(read), "docs/configuration.md, Every service, against grid_common/gunicorn_conf.py"
    assert len(read) >= 10
    for variable, default in read.items():
        written = VALUE.match(documented[variable][0])
        assert (written.group(1) if written else None) == default, f"{variable}'s default"


@pytest.mark.parametrize("service", list(REQUIRED))
def test_each_service_table_lists_every_variable_its_configuration_reads(service):
    read = variables_read(service) - set(gunicorn_variables())
    documented = names(section(CONFIGURATION.read_text(), f"## {service}"))
    assert len(read) >= 8
    assert set(documented) == read, f"docs/configuration.md, {service}: missing {read - set(documented)}, " + (
        f"not read {set(documented) - read}"
    )


@pytest.mark.parametrize("service", list(REQUIRED))
def test_each_default_written_as_a_value_is_the_codes(service):
    """Setting a variable to its documented default changes nothing."""
    config_class, required = REQUIRED[service]
    documented = names(section(CONFIGURATION.read_text(), f"## {service}"))
    checked = 0
    for variable, (default, _meaning) in documented.items():
        written = VALUE.match(default)
        if written is None:
            continue
        assert config_class.from_env({**required, variable: written.group(1)}) == config_class.from_env(required), (
            f"{variable}: the default is not {written.group(1)}"
        )
        checked += 1
    assert checked >= 5


def test_every_choice_is_named_where_its_setting_is():
    configuration = CONFIGURATION.read_text()
    strategy = names(section(configuration, "## Balancer"))["STRATEGY"][1]
    allocation = names(section(configuration, "## Substation"))["ALLOCATION"][1]
    for choice in STRATEGIES:
        assert f"`{choice}`" in strategy, choice
    for choice in ALLOCATIONS:
        assert f"`{choice}`" in allocation, choice


def test_the_compose_table_is_what_docker_compose_yml_interpolates():
    interpolated = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", COMPOSE_FILE.read_text()))
    assert set(names(section(CONFIGURATION.read_text(), "## Compose"))) == interpolated


# --- metrics ---------------------------------------------------------------------------------------------
RUNTIME = ("python_", "process_")
SERVICES = {"Substation": "substation_", "Balancer": "balancer_", "Gateway": "gateway_"}
LABELS = re.compile(r'([A-Za-z_]\w*)="(?:[^"\\]|\\.)*"')


def families(exposition: str) -> dict[str, dict]:
    """Metric family -> {"type", "labels"} from a /metrics text; runtime families and the `_created`
    timestamps prometheus_client adds beside counters and histograms are left out."""
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", exposition, flags=re.MULTILINE))
    found = {}
    for name, kind in types.items():
        base = name.removesuffix("_created")
        if name.startswith(RUNTIME) or (name != base and ({base, f"{base}_total"} & set(types))):
            continue
        found[name] = {"type": kind, "labels": set()}
    for line in exposition.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        sample = re.match(r"^([A-Za-z_:][\w:]*)(\{.*\})?\s", line)
        name, labels = sample.group(1), sample.group(2) or ""
        family = next((f for f in found if name in (f, f"{f}_bucket", f"{f}_sum", f"{f}_count")), None)
        if family is not None:
            found[family]["labels"] |= set(LABELS.findall(labels)) - {"le"}
    return found


CIRCUITS = '[{"name": "feeder", "max_current_a": 63}, {"name": "garage", "parent": "feeder", "max_power_kw": 22}]'


@pytest.fixture(scope="module")
def exposed() -> dict[str, dict[str, dict]]:
    """What each service's /metrics exposes, after a session, an unknown one and a substation that timed out, with
    a circuit of each kind."""
    grid = in_process_grid(substation={"circuits": CIRCUITS})
    gateway = grid.gateway.test_client()
    assert gateway.post("/initiate_energy_transfer").status_code == 201
    assert gateway.get("/sessions/substation9.0123456789abcdef").status_code == 404
    grid.transport.slow.add(substation_url("substation1"))
    grid.poll()  # a poll that times out
    grid.transport.slow.clear()
    limited = grid.substations["substation2"].extensions["substation"]  # a grid limit in force shows as a series
    now = limited.clock()
    limited.substation.set_grid_limits([LimitPeriod(now, now + 3600, 100.0)], now)
    apps = {"Substation": grid.substations["substation2"], "Balancer": grid.balancer, "Gateway": grid.gateway}
    return {name: families(app.test_client().get("/metrics").get_data(as_text=True)) for name, app in apps.items()}


def documented_metrics(service: str) -> dict[str, dict]:
    table = names(section(section(MONITORING.read_text(), "## Metrics"), f"### {service}"))
    return {
        name: {"type": kind, "labels": set(re.findall(r"`(\w+)`", labels))}
        for name, (kind, labels, _meaning) in table.items()
    }


def test_every_metric_belongs_to_a_service(exposed):
    strays = {name for found in exposed.values() for name in found if not name.startswith(tuple(SERVICES.values()))}
    assert not strays, "a metric named after no service: name it after its service, and list it in monitoring.md"


@pytest.mark.parametrize("service", list(SERVICES))
def test_each_metric_table_is_what_the_service_exposes(exposed, service):
    # In one process the gateway's and the balancer's metrics share prometheus_client's registry: each
    # service's own are those named after it.
    own = {name: found for name, found in exposed[service].items() if name.startswith(SERVICES[service])}
    documented = documented_metrics(service)
    assert len(own) >= 2
    assert set(documented) == set(own), (
        f"docs/monitoring.md, {service}: missing {set(own) - set(documented)}, not exposed {set(documented) - set(own)}"
    )
    for name, found in own.items():
        assert documented[name]["type"] == found["type"], f"{name}'s type"
        if found["labels"]:  # a labelled family with no series yet shows no labels
            assert documented[name]["labels"] == found["labels"], f"{name}'s labels"


def test_every_labelled_metric_showed_its_labels(exposed):
    """So that the label check above is not vacuous: the fixture made a series of every family."""
    for service in SERVICES:
        for name, found in exposed[service].items():
            if documented_metrics(service).get(name, {}).get("labels"):
                assert found["labels"], f"{name} has no series: make one in the fixture"


# --- links -----------------------------------------------------------------------------------------------
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def anchors(page: Path) -> set[str]:
    """The anchors GitHub makes of a page's headings."""
    headings = re.findall(r"^#+ (.+)$", without_code_blocks(page.read_text()), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def links(page: Path) -> list[str]:
    text = re.sub(r"`[^`\n]*`", "", without_code_blocks(page.read_text()))
    return [target for target in LINK.findall(text) if not re.match(r"^[a-z]+:", target)]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_leads_somewhere(page):
    assert page.exists()
    for target in links(page):
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name} links to {target}, which does not exist"
        assert linked.is_relative_to(ROOT), f"{page.name} links outside the repository: {target}"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked), f"{page.name} links to {target}: no such heading"


def test_the_readme_links_every_page():
    """Every page under docs/ is linked from the README."""
    linked = {(ROOT / target.partition("#")[0]).resolve() for target in links(ROOT / "README.md")}
    assert {page.resolve() for page in DOCS.glob("*.md")} <= linked
