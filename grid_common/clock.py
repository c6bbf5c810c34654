"""Time in one process: intervals and deadlines on a clock that never steps.

`steady_time()` reads like the wall clock (seconds since the epoch, for timestamps people read and for the
background's time of day) but moves with the monotonic clock: the wall time when the process started plus
the monotonic time since. A wall clock set back an hour (or forward) does not stop polls or freeze
allocations; timestamps then differ from the system's by the step, until a restart.
What processes share can only be wall time, and moves with a step: deadlines (grid_common/deadline.py), and
the leases and lives of Idempotency-Keys, which every gateway replica reads (charge_request_service/starting.py).
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
