"""The compiled schema checks (grid_common/ocpp_lean/schemas.py) against jsonschema's verdicts, the library's
own validators on the official schemas: for every message of 1.6 and 2.0.1 both ways, payloads made from the
schema (valid ones, and each broken in one place), the compiled checks say yes exactly when jsonschema does.
A yes where jsonschema says no would let an invalid message through; so the corpus is wide and seeded."""

from __future__ import annotations

import copy
import glob
import os
import random
from decimal import Decimal

import ocpp.messages
import pytest
from ocpp.messages import Call, CallResult, get_validator

from grid_common.ocpp_lean import schemas

pytestmark = pytest.mark.unit

SCHEMA_DIR = os.path.join(os.path.dirname(ocpp.messages.__file__), "{}", "schemas")


def messages() -> list[tuple[int, str, str]]:
    found = []
    for version, folder in (("1.6", "v16"), ("2.0.1", "v201")):
        for path in sorted(glob.glob(os.path.join(SCHEMA_DIR.format(folder), "*.json"))):
            name = os.path.basename(path)[: -len(".json")]
            if name.endswith("Response"):
                found.append((3, name[: -len("Response")], version))
            elif version == "2.0.1" and name.endswith("Request"):
                found.append((2, name[: -len("Request")], version))
            else:
                found.append((2, name, version))
    return found


def resolve(schema: dict, root: dict) -> dict:
    while "$ref" in schema:
        schema = root["definitions"][schema["$ref"].split("/")[-1]]
    return schema


def make(schema: dict, root: dict, rng: random.Random, depth: int = 0) -> object:
    """A payload the schema allows (optional properties sometimes left out)."""
    schema = resolve(schema, root)
    if "enum" in schema:
        return rng.choice(schema["enum"])
    kind = schema.get("type", "object")
    kind = rng.choice(kind) if isinstance(kind, list) else kind
    if kind == "object":
        value = {}
        for name, sub in schema.get("properties", {}).items():
            if name in schema.get("required", []) or (depth < 6 and rng.random() < 0.6):
                value[name] = make(sub, root, rng, depth + 1)
        return value
    if kind == "array":
        least = schema.get("minItems", 0)
        most = min(schema.get("maxItems", least + 3), least + 3)
        return [make(schema.get("items", {}), root, rng, depth + 1) for _ in range(rng.randint(least, most))]
    if kind == "string":
        length = schema.get("maxLength", 30)
        return "".join(rng.choice("abcXYZ09-é") for _ in range(rng.choice([0, 1, length // 2, length])))
    if kind == "integer":
        return rng.randint(int(schema.get("minimum", -1000)), int(schema.get("maximum", 100000)))
    if kind == "number":
        low, high = schema.get("minimum", -1000.0), schema.get("maximum", 100000.0)
        return rng.choice([float(low), float(high), round(rng.uniform(low, high), 1), int(low)])
    if kind == "boolean":
        return rng.random() < 0.5
    return None


STRANGERS = [None, True, False, 0, -1, 2**70, 1.5, -0.0, float("inf"), "", "x", "Accepted", "x" * 2000, [], [1],
             {}, {"a": 1}]  # fmt: skip


def paths(value: object, here: tuple = ()) -> list[tuple]:
    found = [here]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*here, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*here, index))
    return found


def mutants(value: object, rng: random.Random) -> list[object]:
    """The payload broken (or not) in one place each: a value replaced by a stranger, a key dropped or added,
    a string one longer, an item more or fewer."""
    found = []
    for path in paths(value):
        for _ in range(2):
            mutant = copy.deepcopy(value)
            if not path:
                found.append(rng.choice(STRANGERS))
                continue
            parent = mutant
            for step in path[:-1]:
                parent = parent[step]  # type: ignore[index]
            last = path[-1]
            target = parent[last]  # type: ignore[index]
            choice = rng.random()
            if choice < 0.5:
                parent[last] = copy.deepcopy(rng.choice(STRANGERS))  # type: ignore[index]
            elif choice < 0.65 and isinstance(parent, dict):
                del parent[last]
            elif choice < 0.75 and isinstance(target, str):
                parent[last] = target + "y" * rng.choice([1, 1, 500])  # type: ignore[index]
            elif choice < 0.85 and isinstance(target, dict):
                target[rng.choice(["extra", "customData", "vendorId", "Value"])] = rng.choice(STRANGERS)
            elif isinstance(target, list):
                if target and rng.random() < 0.5:
                    target.pop()
                else:
                    target.append(copy.deepcopy(target[0]) if target else rng.choice(STRANGERS))
            elif isinstance(target, int | float) and not isinstance(target, bool):
                parent[last] = rng.choice([target - 10**6, target + 10**6, float(target), int(target)])  # type: ignore[index]
            found.append(mutant)
    return found


def library_says(message_type_id: int, action: str, version: str, payload: object) -> bool:
    validator = get_validator(message_type_id, action, version)
    return validator.is_valid(payload)


@pytest.mark.parametrize(("message_type_id", "action", "version"), messages())
def test_the_compiled_checks_agree_with_jsonschema(message_type_id, action, version):
    check = schemas.check_for(message_type_id, action, version)
    if check is None:
        assert (message_type_id, action) in schemas.DECIMAL_PAYLOADS and version == "1.6"
        return
    root = get_validator(message_type_id, action, version).schema
    rng = random.Random(f"{message_type_id}{action}{version}")
    seen = 0
    for _ in range(3):
        valid = make(root, root, rng)
        assert library_says(message_type_id, action, version, valid), f"the generator made an invalid {valid!r}"
        assert check(valid), f"{action} {version}: a valid payload not passed: {valid!r}"
        for mutant in mutants(valid, rng):
            expected = library_says(message_type_id, action, version, mutant)
            assert check(mutant) == expected, f"{action} {version} type {message_type_id}: {mutant!r}"
            seen += 1
    assert seen


def test_a_payload_the_checks_refuse_gets_the_librarys_own_error():
    import asyncio

    from ocpp.exceptions import FormatViolationError, ProtocolError, TypeConstraintViolationError

    async def error_of(payload: dict) -> type | None:
        try:
            await schemas.validate(Call("1", "MeterValues", payload), "1.6")
        except Exception as error:
            return type(error)
        return None

    reading = {"timestamp": "2026-01-01T00:00:00Z", "sampledValue": [{"value": "1"}]}
    assert asyncio.run(error_of({"connectorId": 1, "meterValue": [reading]})) is None
    assert asyncio.run(error_of({"connectorId": 1, "meterValue": []})) is FormatViolationError  # minItems
    assert asyncio.run(error_of({"connectorId": "1", "meterValue": [reading]})) is TypeConstraintViolationError
    assert asyncio.run(error_of({"connectorId": 1})) is ProtocolError
    assert asyncio.run(error_of({"connectorId": 1, "meterValue": [reading], "more": 1})) is FormatViolationError


def test_decimal_payloads_and_formats_are_left_as_the_library_has_them():
    assert schemas.check_for(2, "SetChargingProfile", "1.6") is None  # read with Decimal floats by the library
    assert schemas.check_for(2, "SetChargingProfile", "2.0.1") is not None
    result = CallResult("1", {"currentTime": "not a time"})
    result.action = "Heartbeat"
    # jsonschema checks no format here: neither do the compiled checks.
    assert schemas.passes(result, "1.6") and get_validator(3, "Heartbeat", "1.6").is_valid(result.payload)
    # A Decimal is a number to jsonschema: the compiled checks leave it to the library rather than guess.
    value = {"timestamp": "t", "sampledValue": [{"value": "1"}]}
    assert not schemas.passes(Call("1", "MeterValues", {"connectorId": Decimal(1), "meterValue": [value]}), "1.6")
