"""Starting a charger remotely for a client (`POST /initiate_energy_transfer` with a `charger_id`): the charger is
asked (1.6 RemoteStartTransaction, 2.0.1 RequestStartTransaction), and the transaction it then starts becomes
the client's session, `<its substation>.<token>`, with the client's energy, power and priority.

The answer waits for that session until the caller's deadline. A charger that accepted but has not started by
then (its car is not plugged in yet) is an outcome not known, never a failure: the session will have the id
the answer names, and a retry with the same token waits for the same start, never a second one.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from dataclasses import dataclass, field
from http import HTTPStatus

import websockets
from ocpp.exceptions import OCPPError

from grid_common.protocol import ChargeRequest, new_session_id
from ocpp_service import metrics
from ocpp_service.protocol_base import CallFailed
from ocpp_service.registry import MIN_CURRENT_A, Charger

log = logging.getLogger(__name__)

# 1.6's idTag is at most 20 characters; 2.0.1's idToken 36. A vehicle id longer than that goes as this prefix
# and the session's token, which names the start as well.
ID_TAG_LENGTH = 20
# What is left of the caller's deadline for the answer to travel back.
ANSWER_MARGIN_S = 0.3

_remote_start_ids = itertools.count(int(time.time()) % 2**20)


@dataclass
class PendingStart:
    """A remote start the charger accepted, waiting for the transaction it starts."""

    token: str
    session_id: str
    request: ChargeRequest
    id_tag: str
    remote_start_id: int
    until: float  # monotonic: after this a transaction under its id tag is an ordinary one
    # (status, session) once the substation has admitted the session: 201 charging, 202 queued.
    admitted: asyncio.Future[tuple[int, dict]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    @property
    def expired(self) -> bool:
        return time.monotonic() > self.until

    def matches(self, id_tag: str) -> bool:
        return not self.expired and id_tag == self.id_tag


def id_tag_for(request: ChargeRequest, token: str) -> str:
    vehicle = request.vehicle_id
    return vehicle if 0 < len(vehicle) <= ID_TAG_LENGTH else f"R{token}"[:ID_TAG_LENGTH]


def admission_limits(request: ChargeRequest, charger: Charger, voltage_v: float) -> tuple[float, float, int]:
    """(max, min) power of the session and its phases: what the client asked for, within what the charger gives.
    A car on fewer phases than it asked for (a 3-phase car at a 1-phase charger) keeps its minimum current a
    phase, on the phases it has."""
    phases = min(charger.phases, request.phases)
    most = phases * charger.max_current_a * voltage_v / 1000.0
    least = phases * MIN_CURRENT_A * voltage_v / 1000.0
    max_kw = min(request.max_power_kw, most)
    asked_min_kw = request.min_power_kw * phases / request.phases
    return round(max_kw, 3), round(min(max(asked_min_kw, least), max_kw), 3), phases


def problem(status: HTTPStatus, title: str, detail: str, **more: object) -> tuple[int, dict]:
    return status.value, {"type": "about:blank", "title": title, "status": status.value, "detail": detail, **more}


def new_pending(request: ChargeRequest, token: str, charger: Charger, wait_s: float) -> PendingStart:
    return PendingStart(
        token=token,
        session_id=new_session_id(charger.substation, token),
        request=request,
        id_tag=id_tag_for(request, token),
        remote_start_id=next(_remote_start_ids),
        until=time.monotonic() + wait_s,
    )


def not_deliverable(charger: Charger, request: ChargeRequest, voltage_v: float) -> tuple[int, dict] | None:
    """A request this charger cannot serve, whatever its state: 422 naming the field."""
    most = charger.kw(charger.max_current_a, voltage_v)
    if request.min_power_kw > most + 1e-9:
        message = f"is more than charger {charger.charger_id} gives ({most:.3g} kW)"
        return problem(HTTPStatus.UNPROCESSABLE_ENTITY, "Unprocessable Content", f"min_power_kw: {message}.",
                       errors=[{"field": "min_power_kw", "message": message}])  # fmt: skip
    return None


async def ask_charger(connection, pending: PendingStart, charger_id: str, left_s: float) -> tuple[int, dict] | None:
    """Ask the charger to start: None when it accepted; else the answer for the client (a refusal: nothing
    was started; no answer: not known)."""
    try:
        async with asyncio.timeout(max(0.1, left_s)):
            accepted = await connection.remote_start(pending.id_tag, pending.remote_start_id)
    except (OCPPError, CallFailed) as error:
        metrics.REMOTE_STARTS.labels("error").inc()
        return problem(HTTPStatus.CONFLICT, "Remote start refused",
                       f"Charger {charger_id} answered the remote start with an error ({error}): nothing was "
                       "started.")  # fmt: skip
    except (TimeoutError, websockets.ConnectionClosed):
        metrics.REMOTE_STARTS.labels("no_answer").inc()
        return unknown(charger_id, pending, "did not answer the remote start")
    if not accepted:
        metrics.REMOTE_STARTS.labels("rejected").inc()
        return problem(HTTPStatus.CONFLICT, "Remote start rejected",
                       f"Charger {charger_id} rejected the remote start: nothing was started.")  # fmt: skip
    metrics.REMOTE_STARTS.labels("accepted").inc()
    return None


def unknown(charger_id: str, pending: PendingStart, what: str) -> tuple[int, dict]:
    return problem(
        HTTPStatus.GATEWAY_TIMEOUT,
        "Outcome unknown",
        f"Charger {charger_id} {what}. If it starts a transaction within {pending.until - time.monotonic():.0f} s "
        f"(a car plugged in), that is session {pending.session_id}: GET /sessions/{pending.session_id} tells. "
        "A retry with the same token waits for that start; it never makes a second.",
        session_id=pending.session_id,
    )


async def session_of(pending: PendingStart, charger_id: str, by: float) -> tuple[int, dict]:
    """The session the accepted start became, or an outcome not known when `by` (wall time) comes first."""
    try:
        async with asyncio.timeout(max(0.0, by - time.time() - ANSWER_MARGIN_S)):
            return await asyncio.shield(pending.admitted)
    except TimeoutError:
        return unknown(charger_id, pending, "accepted the remote start and has not started charging yet")
