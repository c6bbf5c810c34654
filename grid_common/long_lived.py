"""Keeping a process's long-lived objects out of Python's full garbage collections.

A process that holds thousands of connections (the OCPP service, a simulated fleet) holds hundreds of
thousands of objects that live as long as their connections. CPython's full collection walks every one of
them with the process standing still, and the walk grows with the chargers (bench.ocpp's processes, timed
with gc.callbacks). A limit that falls in such a pause waits for it.

So after each full collection, what survived it is frozen (gc.freeze): later collections walk only what was
made since, and the next full one is a fraction of the pause. What is frozen is still freed when its last
reference goes; only a reference cycle among frozen objects (a connection that closed, say) would wait, so
once every `rescan_s` everything is unfrozen and the next full collection walks it all, and frees such cycles.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

RESCAN_S = 3600.0
FULL = 2  # the oldest generation


class FreezeAfterFullCollections:
    """A gc callback (gc.callbacks): freeze after every full collection, unfreeze every `rescan_s`."""

    def __init__(self, rescan_s: float = RESCAN_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.rescan_s = rescan_s
        self.clock = clock
        self.next_rescan = clock() + rescan_s
        self.frozen = 0  # full collections followed by a freeze
        self.rescans = 0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase != "stop" or info.get("generation") != FULL:
            return
        now = self.clock()
        if now >= self.next_rescan:
            gc.unfreeze()  # the next full collection walks everything once, then freezes it again
            self.next_rescan = now + self.rescan_s
            self.rescans += 1
            return
        gc.freeze()
        self.frozen += 1


def freeze_after_full_collections(rescan_s: float = RESCAN_S) -> FreezeAfterFullCollections:
    """Install the callback for this process (once; a second call returns the first)."""
    for callback in gc.callbacks:
        if isinstance(callback, FreezeAfterFullCollections):
            return callback
    callback = FreezeAfterFullCollections(rescan_s)
    gc.callbacks.append(callback)
    return callback
