"""What both protocol versions do alike around the library: every message counted, and a message that is too
big or not OCPP at all answered with a CallError (the library would log it and say nothing), so that a
charger with a bug learns of it and no other charger notices."""

from __future__ import annotations

import json
import logging

from ocpp_service import metrics

log = logging.getLogger(__name__)

HEARTBEAT_S = 60
# A charger's message is a few hundred bytes; a profile a few kB. Beyond this it is refused with a CallError.
MAX_MESSAGE_BYTES = 64 * 1024
CALL, CALL_RESULT, CALL_ERROR = 2, 3, 4


class Guarded:
    """A mixin before the library's ChargePoint: `route_message` and `_send` wrap the library's."""

    id: str
    protocol: str

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
        self._action = message[2] if message[0] == CALL else None
        await super().route_message(raw_msg)  # type: ignore[misc]

    async def _send(self, message):
        action = getattr(self, "_action", None)
        if action is not None and message[:3] in ("[3,", "[4,"):
            metrics.MESSAGES.labels(str(action)[:40], "accepted" if message.startswith("[3,") else "error").inc()
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
