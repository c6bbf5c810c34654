"""Time in one process: intervals and deadlines on a clock that never steps.

`steady_time()` reads like the wall clock (seconds since the epoch, for timestamps people read and for the
background's time of day) but moves with the monotonic clock: the wall time when the process started plus
the monotonic time since. A wall clock set back an hour (or forward) does not stop polls, freeze
allocations or expire keys; timestamps then differ from the system's by the step, until a restart.
Deadlines between processes are the exception: they can only be wall time (grid_common/deadline.py).
"""

from __future__ import annotations

import time


class SteadyClock:
    def __init__(self) -> None:
        self._wall_at_start = time.time()
        self._monotonic_at_start = time.monotonic()

    def __call__(self) -> float:
        return self._wall_at_start + (time.monotonic() - self._monotonic_at_start)


steady_time = SteadyClock()
