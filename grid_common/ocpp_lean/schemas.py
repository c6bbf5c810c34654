"""Every message a charger sends, checked against the official OCPP JSON schemas (the `ocpp` library's own
files, the very schema objects its validators hold), at a fraction of the library's cost.

The library checks a payload with jsonschema's Draft 4 validator, which walks the schema anew for every
message: about 1 ms for a 1.6 MeterValues, 1.5 ms for a 2.0.1 TransactionEvent, most of the CSMS's CPU with
thousands of chargers connected. The schemas use a small part of Draft 4 (type, properties, required,
additionalProperties, enum, maxLength, items, minItems, maxItems, minimum, maximum, local $refs), so each is
compiled here, once, into plain Python checks that say whether a payload is valid.

Only a yes is taken from them. A payload they do not pass goes to the library's own validation, which then
decides, and raises the library's own error (the CallError the charger gets); so a check here can only make
a valid message slower, never let an invalid one through, as long as it never says yes to a payload that
jsonschema refuses (tests/unit/test_ocpp_schemas.py compares them). A schema that uses anything else, and the
few payloads the library reads with Decimal floats (1.6 SetChargingProfile, RemoteStartTransaction,
GetCompositeSchedule's answer), are always left to the library.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

from ocpp.messages import Call, CallResult, Draft4Validator, MessageType, get_validator, validate_payload

Check = Callable[[Any], bool]

# What the library validates with Decimal floats (ocpp.messages._validate_payload): left to it.
DECIMAL_PAYLOADS = frozenset(
    {(MessageType.Call, "SetChargingProfile"), (MessageType.Call, "RemoteStartTransaction"),
     (MessageType.CallResult, "GetCompositeSchedule")}
)  # fmt: skip
# Draft 4's keywords that validate something (of the validator class the library uses); any other key of a schema
# is ignored by jsonschema too.
DRAFT4_KEYWORDS = frozenset(Draft4Validator.VALIDATORS)
MAX_CACHED_KEYS = 4096


class Unsupported(Exception):
    """A schema that uses what is not compiled here: the library checks its payloads."""


def _is_number(value: Any) -> bool:
    return type(value) in (int, float)


TYPES: dict[str, Check] = {
    "string": lambda value: isinstance(value, str),
    "object": lambda value: isinstance(value, dict),
    "array": lambda value: isinstance(value, list),
    "integer": lambda value: isinstance(value, int) and not isinstance(value, bool),
    # Stricter than jsonschema's (any numbers.Number): a Decimal or a Fraction goes to the library.
    "number": _is_number,
    "boolean": lambda value: isinstance(value, bool),
    "null": lambda value: value is None,
}


def _not_applicable_number(value: Any) -> bool:
    """True for what jsonschema does not count as a number (bool, str, ...): `minimum` says nothing of it. A
    number of another kind (Decimal) is False: the library decides."""
    return isinstance(value, bool) or not isinstance(value, numbers.Number)


class _Compiler:
    def __init__(self, root: dict, format_checked: bool) -> None:
        self.root = root
        self.format_checked = format_checked
        self.refs: dict[str, list[Check]] = {}

    def compile(self, schema: Any) -> Check:
        if not isinstance(schema, dict):
            raise Unsupported(f"a schema that is not an object: {schema!r}")
        if "$ref" in schema:  # Draft 4: a $ref's siblings are ignored
            return self._ref(schema["$ref"])
        checks: list[Check] = []
        unknown = set(schema) & DRAFT4_KEYWORDS - {
            "type", "properties", "additionalProperties", "required", "enum", "maxLength", "items",
            "additionalItems", "minItems", "maxItems", "minimum", "maximum", "format",
        }  # fmt: skip
        if unknown:
            raise Unsupported(f"keywords {sorted(unknown)}")
        if "format" in schema and self.format_checked:
            raise Unsupported("formats are checked")
        # The type is folded into the check of its kind's keywords where there is one (one call, not two).
        kind = schema.get("type") if isinstance(schema.get("type"), str) else None
        typed = False
        if {"properties", "additionalProperties", "required"} & set(schema):
            checks.append(self._object(schema, must=kind == "object"))
            typed |= kind == "object"
        if {"items", "additionalItems", "minItems", "maxItems"} & set(schema):
            checks.append(self._array(schema, must=kind == "array"))
            typed |= kind == "array"
        if "enum" in schema:
            checks.append(self._enum(schema["enum"]))  # strings only: the type "string" is checked with it
            typed |= kind == "string"
        if "maxLength" in schema:
            limit = self._count(schema["maxLength"])
            if kind == "string":
                checks.append(lambda value: isinstance(value, str) and len(value) <= limit)
                typed = True
            else:
                checks.append(lambda value: not isinstance(value, str) or len(value) <= limit)
        for keyword, exclusive, holds in (
            ("minimum", "exclusiveMinimum", lambda value, bound: value >= bound),
            ("maximum", "exclusiveMaximum", lambda value, bound: value <= bound),
        ):
            if keyword in schema:
                if schema.get(exclusive):
                    raise Unsupported(exclusive)
                checks.append(self._bound(schema[keyword], holds))
        if "type" in schema and not typed:
            checks.insert(0, self._type(schema["type"]))
        if not checks:
            return lambda value: True
        if len(checks) == 1:
            return checks[0]
        if len(checks) == 2:
            first, second = checks
            return lambda value: first(value) and second(value)
        every = tuple(checks)
        return lambda value: all(check(value) for check in every)

    @staticmethod
    def _count(value: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise Unsupported(f"a count that is not an integer: {value!r}")
        return value

    def _ref(self, ref: Any) -> Check:
        prefix = "#/definitions/"
        name = ref[len(prefix) :] if isinstance(ref, str) and ref.startswith(prefix) else ""
        if not name or any(character in name for character in "/~%"):  # only a plain local definition
            raise Unsupported(f"$ref {ref!r}")
        holder = self.refs.get(ref)
        if holder is None:
            holder = self.refs[ref] = []
            definitions = self.root.get("definitions")
            if not isinstance(definitions, dict) or name not in definitions:
                raise Unsupported(f"$ref {ref!r} names nothing")
            holder.append(self.compile(definitions[name]))
        return lambda value: holder[0](value)

    @staticmethod
    def _type(names: Any) -> Check:
        listed = [names] if isinstance(names, str) else names
        if not isinstance(listed, list) or not listed or any(name not in TYPES for name in listed):
            raise Unsupported(f"type {names!r}")
        if len(listed) == 1:
            return TYPES[listed[0]]
        checks = tuple(TYPES[name] for name in listed)
        return lambda value: any(check(value) for check in checks)

    @staticmethod
    def _enum(values: Any) -> Check:
        if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
            raise Unsupported(f"enum {values!r}")
        allowed = frozenset(values)
        return lambda value: isinstance(value, str) and value in allowed

    def _object(self, schema: dict, must: bool) -> Check:
        properties = schema.get("properties", {})
        required = schema.get("required", [])
        extra = schema.get("additionalProperties", True)
        if not isinstance(properties, dict) or not isinstance(required, list):
            raise Unsupported("properties or required")
        if not all(isinstance(name, str) for name in required):
            raise Unsupported("required")
        checks = {name: self.compile(subschema) for name, subschema in properties.items()}
        if extra is True:
            extra_check: Check | None = None
            closed = False
        elif extra is False:
            extra_check, closed = None, True
        elif isinstance(extra, dict):
            extra_check, closed = self.compile(extra), False
        else:
            raise Unsupported(f"additionalProperties {extra!r}")
        needed = tuple(required)

        def check(value: Any) -> bool:
            if not isinstance(value, dict):
                return not must  # not an object: these keywords say nothing of it, its type does
            for name in needed:
                if name not in value:
                    return False
            for name, item in value.items():
                item_check = checks.get(name)
                if item_check is None:
                    if closed or (extra_check is not None and not extra_check(item)):
                        return False
                elif not item_check(item):
                    return False
            return True

        return check

    def _array(self, schema: dict, must: bool) -> Check:
        items = schema.get("items", {})
        if not isinstance(items, dict):
            raise Unsupported("items that are a list (additionalItems then applies)")
        item_check = self.compile(items) if items else None  # additionalItems is ignored beside such items
        least = self._count(schema.get("minItems", 0))
        most = self._count(schema["maxItems"]) if "maxItems" in schema else None

        def check(value: Any) -> bool:
            if not isinstance(value, list):
                return not must
            if len(value) < least or (most is not None and len(value) > most):
                return False
            return item_check is None or all(item_check(item) for item in value)

        return check

    @staticmethod
    def _bound(bound: Any, holds: Callable[[Any, Any], bool]) -> Check:
        if not _is_number(bound):
            raise Unsupported(f"a bound that is not a number: {bound!r}")
        return lambda value: holds(value, bound) if _is_number(value) else _not_applicable_number(value)


def compile_schema(validator: Draft4Validator) -> Check:
    """The checks of the validator's schema; raises Unsupported."""
    schema = validator.schema
    if not isinstance(schema, dict):
        raise Unsupported("a schema that is not an object")
    return _Compiler(schema, validator.format_checker is not None).compile(schema)


_checks: dict[tuple[int, str, str], Check | None] = {}


def check_for(message_type_id: int, action: str, ocpp_version: str) -> Check | None:
    """The compiled checks for a message, None where the library must decide (cached either way)."""
    key = (message_type_id, action, ocpp_version)
    try:
        return _checks[key]
    except KeyError:
        pass
    found: Check | None = None
    if (message_type_id, action) not in DECIMAL_PAYLOADS or ocpp_version != "1.6":
        try:
            found = compile_schema(get_validator(message_type_id, action, ocpp_version))
        except (OSError, ValueError, Unsupported):  # no such schema, or one compiled nowhere but in the library
            found = None
    if len(_checks) < MAX_CACHED_KEYS:
        _checks[key] = found
    return found


def passes(message: Call | CallResult, ocpp_version: str) -> bool:
    """Whether the message is surely valid; False when the library must say (it may still find it valid)."""
    if type(message) not in (Call, CallResult):
        return False
    check = check_for(message.message_type_id, message.action, ocpp_version)
    return check is not None and check(message.payload)


async def validate(message: Call | CallResult, ocpp_version: str) -> None:
    """As the library's validate_payload: returns if the payload is valid, raises its OCPPError if not."""
    if not passes(message, ocpp_version):
        await validate_payload(message, ocpp_version)
