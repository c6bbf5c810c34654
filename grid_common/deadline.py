"""Deadlines between processes: a call that may change state says until when its answer is awaited, and
whoever reads it after that refuses it, so that nothing is done that the caller has already given up on.

A deadline crossing processes can only be wall-clock time, the one clock they share: it is the Unix time
in the `Request-Deadline` header. The sender gives up a margin later than it says, so that an answer
produced just in time still arrives; processes on different machines must keep their clocks within that
margin (NTP does, by far). Within a process every interval and deadline is monotonic (grid_common/clock.py).
"""

from __future__ import annotations

import math
import time
from typing import TypedDict

from grid_common.protocol import REQUEST_DEADLINE

# How much sooner than its own timeout a caller tells the callee to give up: room for the answer to travel.
MARGIN_S = 0.2


def deadline_in(timeout_s: float, now: float | None = None) -> float:
    """The deadline to send for a call the caller waits `timeout_s` for, from `now` (by default the clock's)."""
    return (time.time() if now is None else now) + max(0.0, timeout_s - min(MARGIN_S, timeout_s / 5))


def header(deadline: float) -> dict[str, str]:
    return {REQUEST_DEADLINE: f"{deadline:.3f}"}


def parse(value: str | None) -> float | None:
    """The deadline a request carries, or None if it has none; ValueError when it is not a Unix time."""
    if value is None:
        return None
    deadline = float(value)
    if not math.isfinite(deadline) or deadline < 0:
        raise ValueError(f"{value!r} is not a Unix time")
    return deadline


def passed(deadline: float | None) -> bool:
    return deadline is not None and time.time() > deadline


class LateBody(TypedDict):
    deadline: float
    now: float


def late_body(deadline: float) -> LateBody:
    """What a 408 says besides its message: the deadline, and when it was read by this host's clock, so that a
    caller whose clock says it was in time can tell (and say) that the clocks differ (clock_ahead_s)."""
    return {"deadline": deadline, "now": round(time.time(), 3)}


def clock_ahead_s(body: object, deadline: float, received_at: float) -> float | None:
    """How far ahead of this host's clock a peer's is, by its 408 (late_body) that came back before the call's
    `deadline` had passed here; None when the call was late by this clock too, or the body does not say."""
    now = body.get("now") if isinstance(body, dict) else None
    if received_at >= deadline or not isinstance(now, int | float) or isinstance(now, bool):
        return None
    ahead = float(now) - received_at
    return ahead if math.isfinite(ahead) and ahead > 0 else None


def seconds_left(deadline: float | None, default_s: float) -> float:
    """What is left of a caller's deadline, at most `default_s`."""
    if deadline is None:
        return default_s
    return max(0.0, min(default_s, deadline - time.time()))
