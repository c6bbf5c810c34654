"""What both protocol versions do alike around the library: every message counted, a message that is too
big or not OCPP at all answered with a CallError (the library would log it and say nothing), so that a
charger with a bug learns of it and no other charger notices; and the one call the central system makes by
the thousand, SetChargingProfile, sent on a short path of its own.

Why a path of its own: the library's `call` turns a dataclass into a dict, renames every key, checks the
message and the answer against the JSON schema (in a thread pool, by default), and waits through a queue:
about 1.4 ms of CPU a profile, 7 s for a reallocation over 5 000 chargers. A profile is built by
limits.Profile, whose output tests/unit/test_ocpp_parts.py checks against the official schemas, so it is
encoded once and sent as it is; its answer is matched by message id and checked against its schema.
Everything a charger sends is checked against the official schemas, in the event loop (no thread hops: a check
is faster than the hand-over).

The library's handling of a charger's call is replaced here by one that does the same, cheaper: the message is
parsed once (the library would parse it again), its payload checked through schemas.validate (the schemas
compiled once; the library's own validation whenever those checks do not pass a payload), its keys renamed by
the library's functions but each name once (not by regular expressions at every message), and whether a
handler takes the call's id read once per handler. Its answer is built, and checked, as the library does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import itertools
import json
import logging
from collections.abc import Callable
from typing import Any

import ocpp.messages
from ocpp.charge_point import camel_to_snake_case, remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.exceptions import OCPPError
from ocpp.messages import Call, CallResult, _DecimalEncoder

from ocpp_service import metrics, schemas

ocpp.messages.ASYNC_VALIDATION = False

log = logging.getLogger(__name__)

HEARTBEAT_S = 60
# How long a charger has to answer a profile before it is sent again.
PROFILE_ANSWER_S = 10.0
# A charger's message is a few hundred bytes; a profile a few kB. Beyond this it is refused with a CallError.
MAX_MESSAGE_BYTES = 64 * 1024
CALL, CALL_RESULT, CALL_ERROR = 2, 3, 4


_message_ids = itertools.count(1)
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
_counters: dict[tuple[str, str], Any] = {}


def _counter(action: str, result: str) -> Any:
    """metrics.MESSAGES' child for (action, result), looked up once (actions are few; a charger's unknown ones
    are counted too, up to a bound, then through the labels call)."""
    child = _counters.get((action, result))
    if child is None:
        child = metrics.MESSAGES.labels(action, result)
        if len(_counters) < MAX_NAMES:
            _counters[(action, result)] = child
    return child


def _no_answer(answer: asyncio.Future) -> None:
    if not answer.done():
        answer.set_exception(TimeoutError())


class CallFailed(Exception):
    """The charger answered a call with a CallError."""


class Guarded:
    """A mixin before the library's ChargePoint: `route_message` and `_send` wrap the library's."""

    id: str
    protocol: str
    _answers: dict[str, tuple[asyncio.Future, str]] | None = None  # by message id: (its answer, the action)

    async def quick_call(self, action: str, payload: dict, timeout_s: float) -> dict:
        """Send `payload` (camelCase, as OCPP has it) as `action`, and return the answer's payload, checked against
        its schema. Raises TimeoutError, CallFailed (a CallError, or an answer its schema does not allow), or
        websockets' ConnectionClosed."""
        if self._answers is None:
            self._answers = {}
        message_id = f"q{next(_message_ids)}"
        loop = asyncio.get_running_loop()
        answer = loop.create_future()
        self._answers[message_id] = (answer, action)
        timer = None
        try:
            await super()._send(json.dumps([CALL, message_id, action, payload], separators=(",", ":")))  # type: ignore[misc]
            # A timer that fails the answer, cheaper than asyncio.timeout's (one per profile, thousands at once).
            timer = loop.call_later(timeout_s, _no_answer, answer)
            return await answer
        finally:
            if timer is not None:
                timer.cancel()
            self._answers.pop(message_id, None)

    async def route_message(self, raw_msg):
        if len(raw_msg) > MAX_MESSAGE_BYTES:
            await self._refuse(raw_msg, "FormationViolation" if self.protocol == "ocpp1.6" else "FormatViolation",
                               f"message over {MAX_MESSAGE_BYTES} bytes")  # fmt: skip
            return
        try:
            message = json.loads(raw_msg)
        except (ValueError, UnicodeDecodeError):
            await self._refuse(raw_msg, "FormationViolation" if self.protocol == "ocpp1.6" else "FormatViolation",
                               "not JSON")  # fmt: skip
            return
        valid_frame = (
            isinstance(message, list)
            and len(message) >= 3
            and message[0] in (CALL, CALL_RESULT, CALL_ERROR)
            and isinstance(message[1], str)
            and (message[0] != CALL or (len(message) == 4 and isinstance(message[2], str)))
        )
        if not valid_frame:
            await self._refuse(raw_msg, "ProtocolError", "not an OCPP-J message: [2, id, action, payload] or a result")
            return
        if message[0] != CALL and self._answers and message[1] in self._answers:
            answer, action = self._answers[message[1]]
            if answer.done():
                return
            if message[0] == CALL_RESULT and isinstance(message[2], dict):
                try:  # what a charger sends is checked against its schema, answers too
                    await schemas.validate(CallResult(message[1], message[2], action), self._ocpp_version)  # type: ignore[attr-defined]
                except OCPPError as error:
                    if not answer.done():
                        answer.set_exception(CallFailed(f"an answer its schema does not allow: {error}"))
                    return
                if not answer.done():
                    answer.set_result(message[2])
            else:
                answer.set_exception(CallFailed(f"{message[2:4]}"))
            return
        if message[0] != CALL:
            self._action = None
            await super().route_message(raw_msg)  # type: ignore[misc]  # an answer to the library's own call
            return
        self._action = message[2]
        call = Call(message[1], message[2], message[3])
        try:
            await self._handle_call(call)
        except OCPPError as error:  # as the library's route_message
            self.logger.exception("Error while handling request '%s'", call)  # type: ignore[attr-defined]
            await self._send(call.create_call_error(error).to_json())

    async def _handle_call(self, msg: Call) -> Any:
        """The library's ChargePoint._handle_call (ocpp 2.1), step for step, with the cheaper checks and renaming
        of the module's docstring."""
        handlers = self.route_map.get(msg.action)  # type: ignore[attr-defined]
        if handlers is None or "_on_action" not in handlers:
            return await super()._handle_call(msg)  # type: ignore[misc]  # the library's NotImplemented/NotSupported
        validated = not handlers.get("_skip_schema_validation", False)
        if validated:
            await schemas.validate(msg, self._ocpp_version)  # type: ignore[attr-defined]
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
            await self._send(msg.create_call_error(e).to_json())
            return None
        camel_case_payload = to_camel_case(remove_nones(as_dict(response)))
        result = msg.create_call_result(camel_case_payload)
        if validated:
            await schemas.validate(result, self._ocpp_version)  # type: ignore[attr-defined]
        await self._send(RESULT_ENCODER.encode([result.message_type_id, result.unique_id, result.payload]))
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

    async def _send(self, message):
        action = getattr(self, "_action", None)
        if action is not None and message[:3] in ("[3,", "[4,"):
            _counter(str(action)[:40], "accepted" if message.startswith("[3,") else "error").inc()
            self._action = None
        await super()._send(message)  # type: ignore[misc]

    async def _refuse(self, raw_msg: str | bytes, code: str, description: str) -> None:
        """A CallError for what cannot be handled: to its message id if one can be read, else to "-1"."""
        unique_id = "-1"
        try:
            message = json.loads(raw_msg) if len(raw_msg) <= 16 * MAX_MESSAGE_BYTES else None
            if isinstance(message, list) and len(message) > 1 and isinstance(message[1], str) and len(message[1]) <= 36:
                unique_id = message[1]
        except (ValueError, UnicodeDecodeError):
            pass
        log.info("%s: %s (%s)", self.id, description, code)
        metrics.MESSAGES.labels("(malformed)", "error").inc()
        await super()._send(json.dumps([CALL_ERROR, unique_id, code, description, {}]))  # type: ignore[misc]
