"""schemathesis against every service: no 5xx, and every answer as its document says.

A bounded number of generated requests per operation (valid and invalid bodies, headers, path
parameters), sent to the services' apps in this process, wired to each other as a grid. Topology changes
stay off (no TOPOLOGY_TOKEN): a generated registration must never make the balancer poll an arbitrary host.
What generated requests cannot reach (a store down, an answer lost, a grid full, a token reused) is sent
on purpose, and checked the same way; so is every header one service sends another.
"""

from __future__ import annotations

import json
import re

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core import NOT_SET

from charge_request_service.idempotency import StoreUnavailable
from grid_common.edge import MAX_BODY_BYTES
from grid_common.protocol import (
    BALANCER_ID,
    IDEMPOTENCY_KEY,
    MAX_POWER_KW,
    OTHERS_EV_POWER_CONDITION,
    OTHERS_SESSIONS_CONDITION,
    REQUEST_DEADLINE,
    SESSION_TOKEN,
    is_session_id,
    kw_of,
)
from substation_service.app import create_app as create_substation
from substation_service.config import SubstationConfig
from substation_service.journal import UnreadJournal
from tests.fakes import Clock
from tests.in_process import BALANCER_URL, in_process_grid, substation_url

EXAMPLES_PER_OPERATION = 60
# Response headers a client acts on: an answer that carries one must be documented with it.
MEANINGFUL_HEADERS = ("Retry-After", "Location", "Idempotent-Replayed", "WWW-Authenticate")
CONFORMANCE = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
FUZZ = settings(
    max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)


@pytest.fixture(scope="module")
def grid():
    # Room and chargers for every session the fuzzer can ask for, which may last hours: a 503 here would be
    # a fault.
    big = 1_000_000
    chargers = {"charger_max_power_kw": MAX_POWER_KW}
    return in_process_grid({"substation1": big, "substation2": big, "substation3": big}, substation=chargers)


@pytest.fixture(scope="module")
def gateway_api(grid):
    return schemathesis.openapi.from_wsgi("/openapi.json", grid.gateway)


@pytest.fixture(scope="module")
def balancer_api(grid):
    return schemathesis.openapi.from_wsgi("/openapi.json", grid.balancer)


@pytest.fixture(scope="module")
def substation_api(grid):
    return schemathesis.openapi.from_wsgi("/openapi.json", grid.substations["substation1"])


def fuzz(api) -> dict[str, int]:
    """Every operation, with valid and with invalid requests; returns how many ran per operation and mode."""
    ran: dict[str, int] = {}
    for result in api.get_all_operations():
        operation = result.ok()
        for mode in GenerationMode:
            label = f"{operation.method.upper()} {operation.path} ({mode.value})"
            ran[label] = 0
            try:
                checker(operation, mode, label, ran)()
            except Unsatisfiable:
                if mode is GenerationMode.POSITIVE:
                    raise
                del ran[label]  # nothing to get wrong: no body, no parameters (GET /healthz)
    print("requests per operation:", ran)
    return ran


def checker(operation, mode: GenerationMode, label: str, ran: dict[str, int]):
    @given(case=operation.as_strategy(generation_mode=mode))
    @FUZZ
    def check(case):
        ran[label] += 1
        # Refusals by design that a schema cannot say: a valid request whose Idempotency-Key an earlier
        # generated request used with another body (422), a deadline that has passed (408), and a
        # conditional admission, which other
        # balancers' sessions decide (412), or which names no balancer (400: OpenAPI cannot say that one
        # header needs another).
        # So is a minimum above the maximum, or a bound given both as a current and as a power (422): JSON Schema
        # cannot compare two fields; and an admission's session id named after another substation than the one it
        # is sent to (422).
        headers = case.headers or {}
        stateful = any(
            header in headers
            for header in (IDEMPOTENCY_KEY, OTHERS_EV_POWER_CONDITION, OTHERS_SESSIONS_CONDITION, REQUEST_DEADLINE)
        )
        body = case.body if isinstance(case.body, dict) else {}
        crossed = crossed_bounds(body)
        session_id = body.get("session_id")
        # Also a session id with a final newline: JSON Schema's `$` (ECMA 262) refuses it, as the service does,
        # but the generator reads patterns as Python does, whose `$` matches before a final newline.
        elsewhere = isinstance(session_id, str) and not (
            session_id.startswith("substation1.") and is_session_id(session_id)
        )
        excluded = [positive_data_acceptance] if stateful or crossed or elsewhere else None
        if oversized(case.body):
            # A body over the edge's limit is refused as too large (413) before it is read: whatever it says.
            excluded = [*(excluded or []), positive_data_acceptance, negative_data_rejection]
        if REQUEST_DEADLINE in headers:
            # A late request is refused as late (408) before its body is read: whatever the body, nothing happens.
            excluded = [*(excluded or []), negative_data_rejection]
        response = case.call_and_validate(excluded_checks=excluded)
        assert not undocumented_headers(case.operation, response), case.as_curl_command()
        assert not typed_without_a_body(case.operation, response), case.as_curl_command()

    return check


def oversized(body: object) -> bool:
    if body is NOT_SET or body is None:
        return False
    try:
        return len(json.dumps(body).encode()) > MAX_BODY_BYTES
    except (TypeError, ValueError):
        return False


def crossed_bounds(body: dict) -> bool:
    """Whether the request's minimum is above its maximum, or a bound is given twice (a current and a power)."""
    if any(body.get(current) is not None and power in body for current, power in CURRENTS_AND_POWERS):
        return True
    phases = body["phases"] if body.get("phases") in (1, 3) else 3

    def kw(current: str, power: str) -> object:
        amperes = body.get(current)
        if isinstance(amperes, int | float) and not isinstance(amperes, bool):
            return kw_of(amperes, phases)
        return body.get(power)

    minimum, maximum = kw("min_current_a", "min_power_kw"), kw("max_current_a", "max_power_kw")
    maximum = kw_of(16, phases) if maximum is None else maximum
    return isinstance(minimum, int | float) and isinstance(maximum, int | float) and minimum > maximum


CURRENTS_AND_POWERS = (("max_current_a", "max_power_kw"), ("min_current_a", "min_power_kw"))


def undocumented_headers(operation, response) -> list[str]:
    """Headers of MEANINGFUL_HEADERS the answer carries that its documented response does not list."""
    documented = operation.definition.raw["responses"].get(str(response.status_code), {}).get("headers", {})
    named = {name.lower() for name in documented}
    return [name for name in MEANINGFUL_HEADERS if name.lower() in response.headers and name.lower() not in named]


def typed_without_a_body(operation, response) -> bool:
    """An answer documented without a body that carries one, or the type of one."""
    documented = operation.definition.raw["responses"].get(str(response.status_code), {})
    return "content" not in documented and bool(response.content or "content-type" in response.headers)


def answer(app, method: str, path: str, status: int, *, path_parameters=None, headers=None, body=NOT_SET):
    """One request to `app` that must get `status`, checked against the app's document as generated ones are."""
    operation = schemathesis.openapi.from_wsgi("/openapi.json", app)[path][method]
    media_type = None if body is NOT_SET else "application/json"
    case = operation.Case(path_parameters=path_parameters, headers=headers, body=body, media_type=media_type)
    response = case.call()
    assert response.status_code == status, (method, path, response.text)
    case.validate_response(response, checks=CONFORMANCE)
    assert not undocumented_headers(operation, response), (method, path, status, response.headers)
    assert not typed_without_a_body(operation, response), (method, path, status, response.headers)
    return response


@pytest.mark.long
def test_the_gateway_keeps_its_contract(gateway_api):
    ran = fuzz(gateway_api)
    assert ran["POST /initiate_energy_transfer (positive)"] >= EXAMPLES_PER_OPERATION // 2
    assert ran["POST /initiate_energy_transfer (negative)"] >= EXAMPLES_PER_OPERATION // 2


@pytest.mark.long
def test_the_balancer_keeps_its_contract(balancer_api):
    ran = fuzz(balancer_api)
    assert ran["POST /assign_substation (positive)"] >= EXAMPLES_PER_OPERATION // 2
    assert ran["POST /substations (negative)"] >= EXAMPLES_PER_OPERATION // 2


@pytest.mark.long
def test_the_substation_keeps_its_contract(substation_api):
    ran = fuzz(substation_api)
    assert ran["POST /begin_charging (positive)"] >= EXAMPLES_PER_OPERATION // 2
    assert ran["POST /begin_charging (negative)"] >= EXAMPLES_PER_OPERATION // 2


class UnavailableStore:
    """An Idempotency-Key store that cannot be reached, as Redis down is."""

    def claim(self, key, body_fingerprint, now, *, within_s):
        raise StoreUnavailable("connection refused")


def test_what_the_gateway_answers_beyond_generated_requests_is_documented():
    grid = in_process_grid({"a": 30})
    starter = grid.gateway.extensions["gateway"].starter
    starter.clock = clock = Clock(1_800_000_000.0)
    gateway, start = grid.gateway, "/initiate_energy_transfer"
    answer(gateway, "POST", start, 400, headers={IDEMPOTENCY_KEY: "k" * 256})
    answer(gateway, "POST", start, 201, headers={IDEMPOTENCY_KEY: "once"})
    replayed = answer(gateway, "POST", start, 201, headers={IDEMPOTENCY_KEY: "once"})
    assert replayed.headers["idempotent-replayed"] == ["true"]
    big = {"min_power_kw": 22, "max_power_kw": 22}
    answer(gateway, "POST", start, 201, body=big)
    answer(gateway, "POST", start, 503, body=big)  # 23.4 kW of 30 taken
    grid.transport.lost.add(BALANCER_URL)
    answer(gateway, "POST", start, 504, headers={IDEMPOTENCY_KEY: "lost"})
    grid.transport.lost.clear()
    answer(gateway, "POST", start, 409, headers={IDEMPOTENCY_KEY: "lost"})  # may still start a session
    clock.advance(30)
    grid.transport.slow.add(substation_url("a"))
    answer(gateway, "POST", start, 503, headers={IDEMPOTENCY_KEY: "lost"})  # whether it did cannot be told
    grid.transport.slow.clear()
    starter.keys = UnavailableStore()
    answer(gateway, "POST", start, 503, headers={IDEMPOTENCY_KEY: "any"})


def test_what_the_balancer_answers_beyond_generated_requests_is_documented():
    topology = {"topology_token": "a-topology-token-for-tests", "substation_networks": ("127.0.0.0/8",)}
    grid = in_process_grid({"a": 30}, balancer=topology)
    balancer, assign = grid.balancer, "/assign_substation"
    token = {SESSION_TOKEN: "reusedtoken0001"}
    big = {"min_power_kw": 22, "max_power_kw": 22}
    answer(balancer, "POST", assign, 201, headers=token, body={"vehicle_id": "EV-1", **big})
    answer(balancer, "POST", assign, 409, headers=token, body={"vehicle_id": "EV-2", **big})
    answer(balancer, "POST", assign, 503, body=big)
    answer(balancer, "POST", assign, 408, headers={REQUEST_DEADLINE: "1700000000"})
    grid.transport.slow.add(substation_url("a"))
    answer(balancer, "GET", "/sessions/by-token/{token}", 503, path_parameters={"token": "sometoken0001"})
    grid.transport.slow.clear()
    auth = {"Authorization": "Bearer a-topology-token-for-tests"}
    answer(balancer, "POST", "/substations", 401, body={"name": "b", "url": "http://127.0.0.1:5999"})
    answer(balancer, "DELETE", "/substations/{name}", 204, path_parameters={"name": "a"}, headers=auth)
    grid.transport.serve("http://127.0.0.1:5999", grid.substations["a"])
    registration = {"name": "a", "url": "http://127.0.0.1:5999"}
    registered = answer(balancer, "POST", "/substations", 201, headers=auth, body=registration)
    assert registered.headers["location"] == ["/substations/a"]


def test_what_a_substation_answers_beyond_generated_requests_is_documented():
    grid = in_process_grid({"a": 30})
    a, begin = grid.substations["a"], "/begin_charging"
    named = {"session_id": "a.reusedtoken0001", "vehicle_id": "EV-1", "min_power_kw": 11}
    answer(a, "POST", begin, 201, body=named)
    answer(a, "POST", begin, 200, body=named)
    answer(a, "POST", begin, 409, body={**named, "vehicle_id": "EV-2"})
    answer(a, "POST", begin, 409, body={"min_power_kw": 22, "max_power_kw": 22})  # 19 kW left
    answer(a, "POST", begin, 412, headers={BALANCER_ID: "me", OTHERS_SESSIONS_CONDITION: "0"})
    answer(a, "POST", begin, 412, headers={BALANCER_ID: "me", OTHERS_EV_POWER_CONDITION: "0"})
    late = {REQUEST_DEADLINE: "1700000000"}
    answer(a, "POST", begin, 408, headers=late)
    answer(a, "POST", "/sessions/{session_id}/stop", 408, path_parameters={"session_id": named["session_id"]},
           headers=late)  # fmt: skip


def test_a_session_whose_substation_cannot_read_its_journal_is_answered_as_documented():
    """Such a substation answers 503 for its sessions, which the balancer and the gateway pass on."""
    grid = in_process_grid({"a": 30})
    unread = UnreadJournal("/gone/sessions.db", OSError("no such file"))
    substation = create_substation(SubstationConfig(name="a"), clock=grid.clock, journal=unread, tick=False)
    grid.transport.serve(substation_url("a"), substation)
    for app in (substation, grid.balancer, grid.gateway):
        for method, path in (("GET", "/sessions/{session_id}"), ("POST", "/sessions/{session_id}/stop")):
            answer(app, method, path, 503, path_parameters={"session_id": "a.sometoken0001"})


# Sent on every call a balancer makes to a substation; only the answers that carry a load report read it.
SENT_ON_EVERY_CALL = {"accept", "content-type", BALANCER_ID.lower()}


def test_every_header_one_service_sends_another_is_documented_where_it_arrives():
    grid = in_process_grid({"a": 30, "b": 30})
    gateway = grid.gateway.test_client()
    started = [
        gateway.post("/initiate_energy_transfer", json={"max_power_kw": 11}, headers={IDEMPOTENCY_KEY: f"k{n}"})
        for n in range(8)  # enough that newcomers get less than full power: conditions on sessions too
    ]
    assert {reply.status_code for reply in started} == {201}
    session_id = started[0].get_json()["session_id"]
    assert gateway.get(f"/sessions/{session_id}").status_code == 200
    assert gateway.post(f"/sessions/{session_id}/stop").status_code == 200
    assert grid.balancer.test_client().get(f"/sessions/by-token/{session_id.split('.')[1]}").status_code == 200

    apps = {BALANCER_URL: grid.balancer} | {substation_url(name): app for name, app in grid.substations.items()}
    documents = {base: app.test_client().get("/openapi.json").get_json() for base, app in apps.items()}
    undocumented, sent = set(), set()
    for method, url, headers in grid.transport.sent:
        base = next(base for base in apps if url.startswith(base + "/"))
        operation = documented_operation(documents[base], method, url[len(base) :].partition("?")[0])
        parameters = {p["name"].lower() for p in operation.get("parameters", []) if p["in"] == "header"}
        sent |= set(headers)
        undocumented |= {(method, url[len(base) :], name) for name in headers if name.lower() not in parameters}
    assert {OTHERS_EV_POWER_CONDITION, OTHERS_SESSIONS_CONDITION, SESSION_TOKEN, REQUEST_DEADLINE} <= sent
    assert {entry for entry in undocumented if entry[2].lower() not in SENT_ON_EVERY_CALL} == set()


def documented_operation(document: dict, method: str, path: str) -> dict:
    for template, item in document["paths"].items():
        if re.fullmatch(re.sub(r"\{\w+\}", "[^/]+", template), path) and method.lower() in item:
            return item[method.lower()]
    raise AssertionError(f"{method} {path} is not in the document")
