"""A peer's calls handled, and calls of our own made, as the `ocpp` library's ChargePoint does (ocpp 2.1), on a
shorter path: the same messages, checks and errors.

Where the library's CPU goes at every message, and what is done here instead:
- it renames every key (camelCase <-> snake_case) by regular expressions: here the library's own function
  names each key once and the name is remembered;
- it turns dataclasses into dicts with dataclasses.asdict, a deep copy of every value: here the fields are
  read (anything unusual still goes through the library's serialize_as_dict);
- it inspects the handler's signature at every call to know whether it takes the call's id: here once per
  handler;
- it checks the payload with jsonschema, walking the schema anew: here through schemas.validate (the official
  schemas compiled once; the library's own validation whenever those checks do not pass a payload);
- it waits for an answer with asyncio.wait_for, a task of its own per wait, and logs an error for every answer
  to a call it stopped waiting for (a charger's late answer after a timeout, or a call cancelled on the way
  out: a line per charger when a fleet closes): here one deadline for the whole wait, and such an answer is
  dropped with a debug line.
Together most of the CPU of a message at either end, apart from the socket's; tests/unit/test_ocpp_lean.py
checks that both paths say what the library's say.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import ocpp.messages
from ocpp.charge_point import camel_to_snake_case, remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.messages import Call, MessageType, _DecimalEncoder

from grid_common.ocpp_lean.schemas import validate

# The library would check a payload in a thread pool; a check takes less than the hand-over to a thread.
ocpp.messages.ASYNC_VALIDATION = False

MAX_NAMES = 4096  # key names remembered (a schema allows a few hundred; a charger may send others, refused)


def _renamer(rename: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """The library's recursive key renaming (camelCase <-> snake_case), with each key's new name worked out by
    the library's own function once and remembered."""
    names: dict[str, str] = {}

    def name_of(key: str) -> str:
        found = names.get(key)
        if found is None:
            found = next(iter(rename({key: None})))
            if len(names) < MAX_NAMES:
                names[key] = found
        return found

    def renamed(data: Any) -> Any:
        if isinstance(data, dict):
            return {name_of(key): renamed(value) for key, value in data.items()}
        if isinstance(data, list):
            return [renamed(value) for value in data]
        return data

    return renamed


to_snake_case = _renamer(camel_to_snake_case)
to_camel_case = _renamer(snake_to_camel_case)
_takes_unique_id: dict[Any, bool] = {}


def takes_unique_id(handler: Callable) -> bool:
    """Whether the handler declares `call_unique_id` (the library then passes the call's id)."""
    function = getattr(handler, "__func__", handler)
    known = _takes_unique_id.get(function)
    if known is None:
        known = _takes_unique_id[function] = "call_unique_id" in inspect.signature(handler).parameters
    return known


_field_names: dict[type, tuple[str, ...]] = {}
SCALARS = (str, int, float, type(None))  # bool is an int; a StrEnum a str


class _NotPlain(Exception):
    """Something asdict would copy in a way of its own (a tuple, a subclass of list or dict): asdict does it."""


def _plain(value: Any) -> Any:
    kind = type(value)
    names = _field_names.get(kind)
    if names is not None:
        return {name: _plain(getattr(value, name)) for name in names}
    if isinstance(value, SCALARS):
        return value
    if kind is list:
        return [_plain(item) for item in value]
    if kind is dict:
        return {_plain(key): _plain(item) for key, item in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        _field_names[kind] = tuple(field.name for field in dataclasses.fields(value))
        return _plain(value)
    raise _NotPlain


def as_dict(response: Any) -> Any:
    """What the library's serialize_as_dict makes of a handler's answer (dataclasses.asdict, all the way down),
    without asdict's deep copy of every value (the answer is only encoded); anything but dataclasses, lists,
    dicts, strings, numbers and None goes through serialize_as_dict itself."""
    try:
        if not dataclasses.is_dataclass(response) or isinstance(response, type):
            raise _NotPlain
        return _plain(response)
    except _NotPlain:
        return serialize_as_dict(response)


# What CallResult.to_json encodes with, made once rather than at every answer (the same text).
RESULT_ENCODER = _DecimalEncoder(separators=(",", ":"))


class LeanCalls:
    """A mixin before the library's ChargePoint (`class X(LeanCalls, ChargePoint)`): its `call` and its handling
    of the peer's calls, on the short path of the module's docstring."""

    async def call(self, payload: Any, suppress: bool = True, unique_id: str | None = None,
                   skip_schema_validation: bool = False) -> Any:  # fmt: skip
        """The library's ChargePoint.call (ocpp 2.1), step for step, with the cheaper checks and renaming."""
        unique_id = unique_id if unique_id is not None else str(self._unique_id_generator())  # type: ignore[attr-defined]
        action = payload.__class__.__name__
        request = Call(unique_id=unique_id, action=action, payload=remove_nones(to_camel_case(as_dict(payload))))
        if not skip_schema_validation:
            await validate(request, self._ocpp_version)  # type: ignore[attr-defined]
        async with self._call_lock:  # type: ignore[attr-defined]  # one call at a time, as OCPP has it
            await self._send(request.to_json())  # type: ignore[attr-defined]
            try:
                response = await self._get_specific_response(request.unique_id, self._response_timeout)  # type: ignore[attr-defined]
            except TimeoutError as error:
                raise TimeoutError(f"Waited {self._response_timeout}s for response on {request.to_json()}.") from error  # type: ignore[attr-defined]
        if response.message_type_id == MessageType.CallError:
            self.logger.warning("Received a CALLError: %s'", response)  # type: ignore[attr-defined]
            if suppress:
                return None
            raise response.to_exception()
        if not skip_schema_validation:
            response.action = action
            await validate(response, self._ocpp_version)  # type: ignore[attr-defined]
        result_class = getattr(self._call_result, action)  # type: ignore[attr-defined]
        return result_class(**to_snake_case(response.payload))

    async def _get_specific_response(self, unique_id: str, timeout: float) -> Any:
        """The answer to call `unique_id` (TimeoutError after `timeout` seconds), as the library's; answers to
        calls no longer waited for are dropped on the way."""
        queue = self._response_queue  # type: ignore[attr-defined]
        async with asyncio.timeout(timeout):
            while True:
                response = await queue.get()
                if response.unique_id == unique_id:
                    return response
                self.logger.debug("an answer to a call no longer waited for, dropped: %s", response)  # type: ignore[attr-defined]

    async def _handle_call(self, msg: Call) -> Any:
        """The library's ChargePoint._handle_call (ocpp 2.1), step for step, with the cheaper checks and renaming
        of the module's docstring."""
        handlers = self.route_map.get(msg.action)  # type: ignore[attr-defined]
        if handlers is None or "_on_action" not in handlers:
            return await super()._handle_call(msg)  # type: ignore[misc]  # the library's NotImplemented/NotSupported
        validated = not handlers.get("_skip_schema_validation", False)
        if validated:
            await validate(msg, self._ocpp_version)  # type: ignore[attr-defined]
        snake_case_payload = to_snake_case(msg.payload)
        handler = handlers["_on_action"]
        try:
            if takes_unique_id(handler):
                response = handler(**snake_case_payload, call_unique_id=msg.unique_id)
            else:
                response = handler(**snake_case_payload)
            if inspect.isawaitable(response):
                response = await response
        except Exception as e:
            self.logger.exception("Error while handling request '%s'", msg)  # type: ignore[attr-defined]
            await self._send(msg.create_call_error(e).to_json())  # type: ignore[attr-defined]
            return None
        camel_case_payload = to_camel_case(remove_nones(as_dict(response)))
        result = msg.create_call_result(camel_case_payload)
        if validated:
            await validate(result, self._ocpp_version)  # type: ignore[attr-defined]
        await self._send(RESULT_ENCODER.encode([result.message_type_id, result.unique_id, result.payload]))  # type: ignore[attr-defined]
        try:
            after = handlers["_after_action"]
            if takes_unique_id(after):
                response = after(**snake_case_payload, call_unique_id=msg.unique_id)
            else:
                response = after(**snake_case_payload)
            if inspect.isawaitable(response):
                asyncio.ensure_future(response)  # noqa: RUF006  # as the library: a task, not awaited
        except KeyError:  # no after hook (the library ignores any KeyError of the hook too)
            pass
        return response
