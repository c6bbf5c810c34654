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

from grid_common.protocol import REQUEST_DEADLINE

# How much sooner than its own timeout a caller tells the callee to give up: room for the answer to travel.
MARGIN_S = 0.2


def deadline_in(timeout_s: float) -> float:
    """The deadline to send for a call the caller waits `timeout_s` for."""
    return time.time() + max(0.0, timeout_s - min(MARGIN_S, timeout_s / 5))


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


def seconds_left(deadline: float | None, default_s: float) -> float:
    """What is left of a caller's deadline, at most `default_s`."""
    if deadline is None:
        return default_s
    return max(0.0, min(default_s, deadline - time.time()))
