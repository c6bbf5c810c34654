"""schemathesis against every service: no 5xx, and every answer as its document says.

A bounded number of generated requests per operation (valid and invalid bodies, headers, path
parameters), sent to the services' apps in this process, wired to each other as a grid. Topology changes
stay off (no TOPOLOGY_TOKEN): a generated registration must never make the balancer poll an arbitrary host.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from grid_common.protocol import (
    DEFAULT_MAX_POWER_KW,
    IDEMPOTENCY_KEY,
    MAX_POWER_KW,
    OTHERS_EV_POWER_CONDITION,
    REQUEST_DEADLINE,
)
from tests.in_process import in_process_grid

EXAMPLES_PER_OPERATION = 60
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
        # So is a minimum above the maximum (422): JSON Schema cannot compare two fields; and an admission's
        # session id named after another substation than the one it is sent to (422).
        headers = case.headers or {}
        stateful = any(header in headers for header in (IDEMPOTENCY_KEY, OTHERS_EV_POWER_CONDITION, REQUEST_DEADLINE))
        body = case.body if isinstance(case.body, dict) else {}
        minimum, maximum = body.get("min_power_kw"), body.get("max_power_kw", DEFAULT_MAX_POWER_KW)
        crossed = isinstance(minimum, int | float) and isinstance(maximum, int | float) and minimum > maximum
        session_id = body.get("session_id")
        elsewhere = isinstance(session_id, str) and not session_id.startswith("substation1.")
        excluded = [positive_data_acceptance] if stateful or crossed or elsewhere else None
        case.call_and_validate(excluded_checks=excluded)

    return check


def test_the_gateway_keeps_its_contract(gateway_api):
    ran = fuzz(gateway_api)
    assert ran["POST /initiate_energy_transfer (positive)"] >= EXAMPLES_PER_OPERATION // 2
    assert ran["POST /initiate_energy_transfer (negative)"] >= EXAMPLES_PER_OPERATION // 2


def test_the_balancer_keeps_its_contract(balancer_api):
    ran = fuzz(balancer_api)
    assert ran["POST /assign_substation (positive)"] >= EXAMPLES_PER_OPERATION // 2
    assert ran["POST /substations (negative)"] >= EXAMPLES_PER_OPERATION // 2


def test_the_substation_keeps_its_contract(substation_api):
    ran = fuzz(substation_api)
    assert ran["POST /begin_charging (positive)"] >= EXAMPLES_PER_OPERATION // 2
    assert ran["POST /begin_charging (negative)"] >= EXAMPLES_PER_OPERATION // 2
