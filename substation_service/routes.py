"""The substation's HTTP routes: read the request, ask the domain, answer in the protocol's shapes."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import msgspec
from flask import Blueprint, current_app, request

from grid_common import deadline
from grid_common.problems import Problem
from grid_common.protocol import (
    BALANCER_ID,
    OTHERS_EV_POWER_CONDITION,
    OTHERS_SESSIONS_CONDITION,
    SESSION_EXISTS,
    ChargerFeed,
    InvalidRequest,
    MeterAnswer,
    SessionReport,
    admission_answer,
    decode_meter_readings,
    is_balancer_id,
    is_session_id,
    parse_charger_admission,
    parse_session_change,
    substation_of,
)
from grid_common.responses import json_response
from grid_common.web import invalid_request_problem, read_json_body, refuse_if_late
from substation_service.journal import JournalError
from substation_service.sessions import (
    Abandoned,
    Admitted,
    Outdated,
    Queued,
    RefusalReason,
    SessionConflict,
    SessionEnded,
)
from substation_service.substation import Substation

# When the grid is full because of background demand alone, no session end tells us when to retry.
DEFAULT_RETRY_AFTER_S = 5.0
MAX_FEED_WAIT_S = 30.0  # a charger feed read held open for a change at most this long
MAX_EPOCH_LENGTH = 64

blueprint = Blueprint("substation", __name__)


@dataclass(frozen=True)
class Context:
    """What the routes work with; create_app puts it in `app.extensions`."""

    substation: Substation
    clock: Callable[[], float]  # wall seconds
    grid_limit_token: str = ""  # the grid operator's (grid_limit_routes.py); empty: limits cannot be set


def context() -> Context:
    return current_app.extensions["substation"]


def asking_balancer() -> str | None:
    balancer = request.headers.get(BALANCER_ID)
    if balancer is not None and not is_balancer_id(balancer):
        raise Problem(400, "Bad Request", f"{BALANCER_ID} must be 1 to 64 letters, digits, '.', '_' or '-'.")
    return balancer


def condition(header: str, balancer: str | None, read: Callable[[str], float | int], what: str):
    """A condition on other balancers' sessions: a number of `what`, 0 or more; None when not sent."""
    raw = request.headers.get(header)
    if raw is None:
        return None
    if balancer is None:
        raise Problem(400, "Bad Request", f"{header} needs {BALANCER_ID}: others than whom?")
    try:
        value = read(raw)
    except (ValueError, OverflowError):
        value = math.nan
    if not (math.isfinite(value) and 0 <= value < 1e12):
        raise Problem(400, "Bad Request", f"{header} must be a number of {what}, 0 or more.")
    return value


def session_id_from_path(session_id: str) -> str:
    if not is_session_id(session_id):
        raise Problem(400, "Bad Request", "Malformed session id: expected <substation>.<token>.")
    return session_id


def reported(report: Callable[[], object]):
    """A report of the substation's state, or 503 while its journal's sessions are not known."""
    try:
        return report()
    except JournalError:
        raise journal_problem(context().substation) from None


@blueprint.get("/")
def index():
    ctx = context()
    load = reported(lambda: ctx.substation.report(ctx.clock()).to_json())
    return {"service": "substation", "name": ctx.substation.name, "load": load}


@blueprint.post("/begin_charging")
def begin_charging():
    ctx = context()
    substation = ctx.substation
    try:
        charge, session_id, charger = parse_charger_admission(
            read_json_body(optional=True), voltage_v=substation.supply.voltage_v
        )
    except InvalidRequest as error:
        raise invalid_request_problem(error) from None
    if session_id is not None and substation_of(session_id) != substation.name:
        # A session named after another substation could be neither read nor stopped through a balancer.
        message = f"must be named after this substation: {substation.name}.<token>"
        raise invalid_request_problem(InvalidRequest([{"field": "session_id", "message": message}]))
    if charger is not None and charger.circuit is not None and charger.circuit not in substation.circuits:
        known = ", ".join(substation.circuits.circuits) or "none"
        message = f"is not one of this substation's circuits ({known})"
        raise invalid_request_problem(InvalidRequest([{"field": "circuit", "message": message}]))
    balancer = asking_balancer()
    allowed_kw = condition(OTHERS_EV_POWER_CONDITION, balancer, float, "kW")
    allowed_sessions = condition(OTHERS_SESSIONS_CONDITION, balancer, int, "sessions")
    late = refuse_if_late()
    now = ctx.clock()
    try:
        outcome = substation.admit(
            charge,
            now,
            session_id,
            placed_by=balancer,
            others_ev_power_at_most=allowed_kw,
            others_sessions_at_most=allowed_sessions,
            abandoned=None if late is None else (lambda: deadline.passed(late)),
            charger=charger,
        )
    except JournalError:
        raise journal_problem(substation) from None
    except SessionConflict:
        raise Problem(
            409,
            "Conflict",
            f"Session {session_id} exists with a different request.",
            reason=SESSION_EXISTS,
            session_id=session_id,
        ) from None
    if isinstance(outcome, Admitted | Queued):
        status = 200 if outcome.replayed else (201 if isinstance(outcome, Admitted) else 202)
        body = admission_answer(outcome.session, outcome.report)
        return json_response(body, status, location=f"/sessions/{outcome.session.session_id}")
    if isinstance(outcome, Abandoned):
        assert late is not None  # only a deadline abandons an admission
        raise Problem(
            408,
            "Request Timeout",
            "The admission's deadline passed before it could be made: nothing was changed.",
            **deadline.late_body(late),
        )
    if isinstance(outcome, Outdated):
        raise Problem(
            412,
            "Precondition Failed",
            f"Other balancers placed sessions at {substation.name} since this balancer last heard, beyond its "
            f"{OTHERS_EV_POWER_CONDITION if outcome.condition == 'others_ev_power' else OTHERS_SESSIONS_CONDITION}: "
            "choose again with this load.",
            load=outcome.report.to_json(),
        )
    if outcome.reason == RefusalReason.JOURNAL:
        raise journal_problem(substation)
    details = {
        RefusalReason.CAPACITY: f"{substation.name} cannot take {outcome.needed_kw:g} kW more without exceeding its "
        + capacity_text(substation, now),
        RefusalReason.QUEUE: f"{substation.name}'s queue is full ({substation.queue_limit} sessions).",
        RefusalReason.CHARGER: f"{substation.name}'s chargers give at most {substation.charger_max_power_kw:g} kW, "
        f"less than the {outcome.needed_kw:g} kW this car needs at least.",
    }
    raise Problem(
        409,
        "Substation full" if outcome.reason != RefusalReason.CHARGER else "Charger too small",
        details[outcome.reason],
        retry_after=outcome.retry_after_s or DEFAULT_RETRY_AFTER_S,
        reason=outcome.reason,
        load=outcome.report.to_json(),
    )


@blueprint.get("/load")
def load():
    ctx = context()
    balancer = asking_balancer()
    return json_response(reported(lambda: ctx.substation.report(ctx.clock(), balancer).encode()))


@blueprint.get("/circuits")
def circuits():
    ctx = context()
    return json_response(reported(lambda: {"circuits": ctx.substation.circuit_report(ctx.clock())}))


def capacity_text(substation: Substation, now: float) -> str:
    """Its capacity as a refusal names it: the grid operator's limit when one holds it lower."""
    limit = substation.limits.in_force(now)
    if limit is None:
        return f"{substation.capacity_kw:g} kW capacity."
    return f"{limit.limit_kw:g} kW grid limit (its capacity is {substation.capacity_kw:g} kW)."


def journal_problem(substation: Substation) -> Problem:
    return Problem(
        503,
        "Journal unavailable",
        f"{substation.name} cannot keep what it is asked to change: {substation.journal_error}",
        retry_after=DEFAULT_RETRY_AFTER_S,
    )


def session_answer(session_id: str, find: Callable[[Substation, str, float], SessionReport | None]):
    ctx = context()
    session = reported(lambda: find(ctx.substation, session_id_from_path(session_id), ctx.clock()))
    if session is None:
        raise Problem(404, "Not Found", f"No session {session_id} at {ctx.substation.name}.")
    return json_response(msgspec.json.encode(session.wire()))


@blueprint.get("/sessions/<session_id>")
def get_session(session_id: str):
    return session_answer(session_id, Substation.session)


@blueprint.post("/sessions/<session_id>/stop")
def stop_session(session_id: str):
    session_id_from_path(session_id)
    refuse_if_late()
    return session_answer(session_id, Substation.stop)


@blueprint.patch("/sessions/<session_id>")
def amend_session(session_id: str):
    """A running session's energy or departure said anew (JSON merge patch): planned and shared anew at once."""
    ctx = context()
    session_id = session_id_from_path(session_id)
    try:
        change = parse_session_change(read_json_body(optional=False))
    except InvalidRequest as error:
        raise invalid_request_problem(error) from None
    refuse_if_late()
    try:
        session = reported(lambda: ctx.substation.amend(session_id, change, ctx.clock()))
    except SessionEnded as ended:
        raise Problem(409, "Session ended", f"Session {session_id} has ended ({ended.report.state}): nothing "
                      "was changed.", session=msgspec.to_builtins(ended.report.wire())) from None  # fmt: skip
    if session is None:
        raise Problem(404, "Not Found", f"No session {session_id} at {ctx.substation.name}.")
    return json_response(msgspec.json.encode(session.wire()))


@blueprint.get("/chargers/feed")
def charger_feed():
    """Sessions on chargers that changed since `since` (a cursor from the last answer; 0 or absent: all). With
    `wait` (seconds) and the `epoch` of that answer, a reader with nothing new to read is answered at the next
    change (long polling), or after `wait` with none."""
    ctx = context()
    substation = ctx.substation
    raw = request.args.get("since", "0")
    if not raw.isdigit() or len(raw) > 18:
        raise Problem(400, "Bad Request", "since must be a cursor from an earlier answer: an integer, 0 or more.")
    wait = request.args.get("wait", "0")
    try:
        wait_s = float(wait)
    except ValueError:
        wait_s = -1.0
    if not 0 <= wait_s <= MAX_FEED_WAIT_S:
        raise Problem(400, "Bad Request", f"wait must be a number of seconds from 0 to {MAX_FEED_WAIT_S:g}.")
    epoch = request.args.get("epoch")
    if epoch is not None and len(epoch) > MAX_EPOCH_LENGTH:
        raise Problem(400, "Bad Request", f"epoch must be the epoch of an earlier answer ({MAX_EPOCH_LENGTH} "
                      "characters at most).")  # fmt: skip
    cursor, sessions = reported(
        lambda: substation.charger_feed(int(raw), ctx.clock(), wait_s=wait_s, epoch=epoch, clock=ctx.clock)
    )
    capacity_kw, background_peak_kw, shares = substation.feed_header(ctx.clock())
    feed = ChargerFeed(
        substation=substation.name,
        epoch=substation.epoch,
        cursor=cursor,
        capacity_kw=capacity_kw,
        background_peak_kw=background_peak_kw,
        sessions=sessions,
        background_phase_shares=list(shares),
    )
    return json_response(msgspec.json.encode(feed))


@blueprint.post("/meters")
def meters():
    """What chargers' meters read: power now and energy since each session started (the OCPP service)."""
    ctx = context()
    try:
        readings = decode_meter_readings(request.get_data())
    except (msgspec.ValidationError, msgspec.DecodeError) as error:
        raise Problem(400, "Bad Request", f"Not a batch of meter readings: {error}") from None
    unknown = reported(lambda: ctx.substation.read_meters(readings.readings, ctx.clock()))
    return json_response(msgspec.json.encode(MeterAnswer(unknown)))
