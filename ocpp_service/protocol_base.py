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

A charger's call is handled as the library does, on grid_common.ocpp_lean's shorter path (the fleet's
simulated chargers take it too), and parsed once here (the library would parse it again).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from typing import Any

from ocpp.exceptions import OCPPError
from ocpp.messages import Call, CallResult

from grid_common.ocpp_lean.calls import MAX_NAMES, LeanCalls
from grid_common.ocpp_lean.schemas import validate
from ocpp_service import metrics

log = logging.getLogger(__name__)

HEARTBEAT_S = 60
# How long a charger has to answer a profile before it is sent again.
PROFILE_ANSWER_S = 10.0
# A charger's message is a few hundred bytes; a profile a few kB. Beyond this it is refused with a CallError.
MAX_MESSAGE_BYTES = 64 * 1024
CALL, CALL_RESULT, CALL_ERROR = 2, 3, 4


_message_ids = itertools.count(1)
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


class Guarded(LeanCalls):
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
                    await validate(CallResult(message[1], message[2], action), self._ocpp_version)  # type: ignore[attr-defined]
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
