"""docs/api.md says what the services' OpenAPI documents say.

The page is written, not generated: its tables carry what the documents do not (when a status happens,
what a field is for, who sends a header to whom), and its examples ran against `make up`. So each thing it
restates is checked against the `SPEC` each service's openapi.py serves at /openapi.json, as
test_docs.py checks the configuration tables against the code:

- the operations a service's section names (`POST /initiate_energy_transfer`, in a heading or in prose)
  are that service's, and every operation of its document is named there, or is a probe of the "Every
  service" table, which lists only operations every service has;
- every `| status | when |` table lists exactly the statuses the document gives the operations named in
  the heading it is under; the rows of a status name the response headers the document gives it (Location,
  Retry-After, ...), and a header a status cell adds (409 + `Retry-After`) is one the document gives that
  status; every operation with an error answer, probes aside, has such a table;
- the gateway's request fields are ChargeRequest's, with its defaults; the session's fields are Session's
  (its states named), the load report's Load's;
- the Headers table names every header a document takes or answers with, and no other; for each, the
  services it goes to (a request header) or comes from (a response header).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pytest

from charge_request_service.openapi import SPEC as GATEWAY
from load_balancer.openapi import SPEC as BALANCER
from substation_service.openapi import SPEC as SUBSTATION
from tests.deployment.test_docs import DOCS, section

API = DOCS / "api.md"
SPECS = {"Gateway": GATEWAY, "Balancer": BALANCER, "Substation": SUBSTATION}
METHODS = ("get", "put", "post", "delete", "patch")
# An operation as the page writes it: `POST /sessions/<session_id>/stop`.
OPERATION = re.compile(r"`(GET|PUT|POST|DELETE|PATCH) (/[^`\s]*)`")
STATUS = re.compile(r"\b[1-5][0-9]{2}\b")
ADDED_HEADER = re.compile(r"\+ `([^`]+)`")
SPAN = re.compile(r"`([^`]+)`")
PARAMETER = re.compile(r"\{(\w+)\}")  # a path parameter as the documents write it; the page: <session_id>
ANGLED = r"<\1>"

Operation = tuple[str, str]  # ("POST", "/sessions/{session_id}/stop"), as the document's paths write it


# --- reading the page ------------------------------------------------------------------------------------
@dataclass
class Table:
    heading: str  # the nearest heading above it
    columns: list[str]
    rows: list[list[str]]

    @property
    def where(self) -> str:
        return f"docs/api.md, {self.heading.lstrip('#').strip()}"


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().removeprefix("|").removesuffix("|").split(" | ")]


def tables(text: str, under: str) -> list[Table]:
    """Every table of `text` (code blocks already left out), with the heading it is under: `under`, the
    heading of `text`, until another."""
    found: list[Table] = []
    heading, current = under, None
    for line in text.splitlines():
        if line.startswith("#"):
            heading = line
        if not line.startswith("|"):
            current = None
        elif current is None:
            current = Table(heading, cells(line), [])
            found.append(current)
        elif not set(line.strip()) <= set("|-: "):
            current.rows.append(cells(line))
    return found


def the_table(under: str, heading: str, columns: list[str]) -> Table:
    """The one table with `columns` under `heading`, in the section `under` (such as "## Gateway")."""
    text = section(API.read_text(), under)
    found = [table for table in tables(text, under) if table.heading == heading and table.columns == columns]
    assert len(found) == 1, f"docs/api.md: {len(found)} tables | {' | '.join(columns)} | under {heading!r}, not 1"
    return found[0]


def service_text(service: str) -> str:
    return section(API.read_text(), f"## {service}")


def named_operations(text: str) -> set[Operation]:
    return {(method, re.sub(r"<(\w+)>", r"{\1}", path)) for method, path in OPERATION.findall(text)}


def shown(operations: set[Operation]) -> str:
    """Operations as the page writes them."""
    return ", ".join(f"`{method} {PARAMETER.sub(ANGLED, path)}`" for method, path in sorted(operations))


def listing(names: set[str]) -> str:
    return ", ".join(f"`{name}`" for name in sorted(names))


def differences(missing: set[str], extra: set[str], *, missing_because: str, extra_because: str) -> list[str]:
    """What a list on the page lacks and what it has too many, each with why it should or should not."""
    found = []
    for what, names, because in (("missing", missing, missing_because), ("extra", extra, extra_because)):
        if names:
            found.append(f"{what} {listing(names)}, {because}")
    return found


def spans(text: str) -> set[str]:
    """The names in backticks of `text`: `WWW-Authenticate: Bearer` names WWW-Authenticate."""
    return {span.partition(":")[0].strip() for span in SPAN.findall(text)}


# --- reading the documents -------------------------------------------------------------------------------
def operations(spec: dict) -> dict[Operation, dict]:
    return {
        (method.upper(), path): operation
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


def probes() -> set[Operation]:
    """The operations the "Every service" table describes."""
    return named_operations(section(API.read_text(), "## Every service"))


def schema(service: str, name: str) -> dict:
    return SPECS[service]["components"]["schemas"][name]


def request_headers(spec: dict) -> set[str]:
    """Every header an operation of `spec` takes: its header parameters, and Authorization for a bearer token."""
    found = {
        parameter["name"]
        for operation in operations(spec).values()
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "header"
    }
    for scheme in spec["components"].get("securitySchemes", {}).values():
        if scheme["type"] == "http":
            found.add("Authorization")
        elif scheme["type"] == "apiKey" and scheme["in"] == "header":
            found.add(scheme["name"])
    return found


def response_headers(spec: dict) -> set[str]:
    return {
        header
        for operation in operations(spec).values()
        for response in operation["responses"].values()
        for header in response.get("headers", {})
    }


# --- operations ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("service", list(SPECS))
def test_each_section_names_only_operations_of_its_service(service):
    extra = named_operations(service_text(service)) - set(operations(SPECS[service]))
    assert not extra, f"docs/api.md, ## {service} names {shown(extra)}: not in the {service.lower()}'s openapi.py"


@pytest.mark.parametrize("service", list(SPECS))
def test_every_operation_is_described_under_its_service(service):
    missing = set(operations(SPECS[service])) - named_operations(service_text(service)) - probes()
    assert not missing, f"docs/api.md, ## {service} does not name {shown(missing)}, of its openapi.py"


def test_the_every_service_table_lists_what_every_service_answers():
    table = the_table("## Every service", "## Every service", ["endpoint", "answers"])
    problems = []
    for endpoint, answers in table.rows:
        if not named_operations(endpoint):
            problems.append(f"{endpoint!r} names no operation")
        for operation in named_operations(endpoint):
            for service, spec in SPECS.items():
                documented = operations(spec).get(operation)
                if documented is None:
                    problems.append(f"{shown({operation})} is not in the {service.lower()}'s openapi.py")
                elif (named := set(STATUS.findall(answers))) and named != set(documented["responses"]):
                    problems.append(
                        f"{shown({operation})} answers {listing(named)} here, {listing(set(documented['responses']))} "
                        f"in the {service.lower()}'s openapi.py"
                    )
    assert len(table.rows) >= 4
    assert not problems, "docs/api.md, Every service: " + "; ".join(problems)


# --- statuses --------------------------------------------------------------------------------------------
def status_tables(service: str) -> list[Table]:
    return [table for table in tables(service_text(service), f"## {service}") if table.columns == ["status", "when"]]


@pytest.mark.parametrize("service", list(SPECS))
def test_each_status_table_lists_the_statuses_of_its_operations(service):
    documented = operations(SPECS[service])
    problems = []
    for table in status_tables(service):
        named = named_operations(table.heading) & set(documented)
        if not named:
            problems.append(f"{table.where}: a status table under a heading that names no operation of the service")
            continue
        of = f"{shown(named)} in the {service.lower()}'s openapi.py"
        responses: dict[str, list[dict]] = {}
        for operation in named:
            for status, response in documented[operation]["responses"].items():
                responses.setdefault(status, []).append(response)
        listed: dict[str, list[list[str]]] = {}
        for row in table.rows:
            statuses = STATUS.findall(row[0])
            if not statuses:
                problems.append(f"{table.where}: the row {row[0]!r} names no status")
            for status in statuses:
                listed.setdefault(status, []).append(row)
                for header in ADDED_HEADER.findall(row[0]):
                    given = {
                        name.lower() for response in responses.get(status, []) for name in response.get("headers", {})
                    }
                    if header.lower() not in given:
                        problems.append(f"{table.where}: {status} + `{header}`, a header {of} does not give {status}")
        problems += [
            f"{table.where}: {difference}"
            for difference in differences(
                set(responses) - set(listed),
                set(listed) - set(responses),
                missing_because=f"which {of} documents",
                extra_because=f"which {of} does not document",
            )
        ]
        for status in set(responses) & set(listed):
            named_in_rows = {name.lower() for row in listed[status] for cell in row for name in spans(cell)}
            for response in responses[status]:
                for header in response.get("headers", {}):
                    if header.lower() not in named_in_rows:
                        problems.append(f"{table.where}: {status} comes with `{header}` ({of}), which no row names")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("service", list(SPECS))
def test_every_operation_with_an_error_answer_has_a_status_table(service):
    tabled = {operation for table in status_tables(service) for operation in named_operations(table.heading)}
    failing = {
        operation
        for operation, documented in operations(SPECS[service]).items()
        if any(int(status) >= 400 for status in documented["responses"])
    }
    missing = failing - tabled - probes()
    assert not missing, f"docs/api.md, ## {service}: no status table for {shown(missing)}, which can fail"
    assert len(tabled) >= 3


# --- fields ----------------------------------------------------------------------------------------------
def field_names(table: Table) -> list[str]:
    """The fields a table's rows are about: every name in backticks of their first cell."""
    return [name for row in table.rows for name in SPAN.findall(row[0])]


def assert_fields(table: Table, service: str, schema_name: str) -> None:
    """The table's fields are the properties of `schema_name` in `service`'s document."""
    written = field_names(table)
    properties = set(schema(service, schema_name)["properties"])
    twice = {name for name in written if written.count(name) > 1}
    assert not twice, f"{table.where}: {listing(twice)} listed twice"
    problems = differences(
        properties - set(written),
        set(written) - properties,
        missing_because=f"properties of {schema_name} in the {service.lower()}'s openapi.py",
        extra_because=f"not properties of {schema_name} in the {service.lower()}'s openapi.py",
    )
    assert not problems, f"{table.where}, fields: " + "; ".join(problems)


def literal(text: str) -> tuple[bool, object] | None:
    """A JSON literal written as a default (`false`, 11), typed so that 0 is not false; None for prose."""
    try:
        value = json.loads(text.strip("`"))
    except ValueError:
        return None
    return isinstance(value, bool), value


def test_the_request_fields_are_the_start_requests_with_its_defaults():
    table = the_table("## Gateway", "### `POST /initiate_energy_transfer`", ["field", "default", "limits"])
    assert_fields(table, "Gateway", "StartRequest")
    for row in table.rows:
        name, default = SPAN.findall(row[0])[0], row[1]
        documented = schema("Gateway", "StartRequest")["properties"][name]
        expected = literal(json.dumps(documented["default"])) if "default" in documented else None
        assert literal(default) == expected, (
            f"{table.where}: {name}'s default is written {default!r}; StartRequest's in the gateway's openapi.py "
            f"is {json.dumps(documented['default']) if 'default' in documented else 'none (write it in words)'}"
        )


def test_the_session_fields_are_the_sessions():
    table = the_table("## Gateway", "### `POST /initiate_energy_transfer`", ["field", "meaning"])
    assert_fields(table, "Gateway", "Session")
    state = next(row[1] for row in table.rows if "`state`" in row[0])
    states = schema("Gateway", "Session")["properties"]["state"]
    if "$ref" in states:  # a vocabulary of its own, among the components
        states = schema("Gateway", states["$ref"].rsplit("/", 1)[-1])
    unnamed = [value for value in states["enum"] if f"`{value}`" not in state]
    assert not unnamed, f"{table.where}: the `state` row does not name {listing(set(unnamed))}, of Session's enum"


def test_the_load_report_fields_are_the_loads():
    assert_fields(the_table("## Substation", "### `GET /load`", ["field", "meaning"]), "Substation", "Load")


# --- headers ---------------------------------------------------------------------------------------------
def services_named(cell: str) -> set[str]:
    if "every service" in cell:
        return set(SPECS)
    return {service for service in SPECS if re.search(rf"\b{service.lower()}\b", cell)}


def test_the_headers_table_names_every_header_the_documents_do():
    table = the_table("## Conventions", "### Headers", ["header", "sent by", "to", "meaning"])
    written = {SPAN.findall(row[0])[0]: row for row in table.rows}
    taken = {service: request_headers(spec) for service, spec in SPECS.items()}
    answered = {service: response_headers(spec) for service, spec in SPECS.items()}
    every = set().union(*taken.values(), *answered.values())
    assert len(written) == len(table.rows), f"{table.where}: a header listed twice"
    problems = differences(
        every - set(written),
        set(written) - every,
        missing_because="which an openapi.py takes or answers with",
        extra_because="which no openapi.py takes or answers with",
    )
    for header, (_, sent_by, to, _meaning) in written.items():
        takers = {service for service, headers in taken.items() if header in headers}
        if takers and services_named(to) != takers:
            problems.append(f"`{header}` goes to {', '.join(sorted(takers))} by their openapi.py, not {to!r}")
        senders = {service for service, headers in answered.items() if header in headers}
        if senders and services_named(sent_by) != senders:
            problems.append(f"`{header}` comes from {', '.join(sorted(senders))} by their openapi.py, not {sent_by!r}")
    assert not problems, f"{table.where}: " + "; ".join(problems)
