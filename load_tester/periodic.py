"""Reading something every `interval` seconds on a background thread, at a steady cadence, for the samplers."""

from __future__ import annotations

import math
import threading
import time


class PeriodicReader:
    """Calls `_take()` once at start, then every `interval` seconds on its own thread until stopped.

    A read that fails is counted (`errors`, `last_error`) by `_failed`, never raised: sampling never stops a
    run. Only the reader's own thread takes samples between start() and stop(), which joins it.
    """

    thread_name = "sampler"

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.errors = 0
        self.last_error: str | None = None
        self.origin = 0.0  # a time.perf_counter() value: sample times count from it
        self._errors_lock = threading.Lock()  # reads may fail on several threads at once
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)

    def since_start(self, moment: float) -> float:
        """A time.perf_counter() value as seconds since the origin."""
        return moment - self.origin

    def start(self, origin: float | None = None) -> None:
        """Take the first sample, then sample on in the background; `origin` (a time.perf_counter() value,
        now by default) is when sample time 0 is."""
        self.origin = time.perf_counter() if origin is None else origin
        self._take()
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it; safe to call more than once."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _loop(self) -> None:
        tick = 1
        while not self._stop.wait(max(0.0, tick * self.interval - self.since_start(time.perf_counter()))):
            self._take()
            # Keep a regular cadence whatever one read took; skip the ticks a slow read overran.
            tick = max(tick + 1, math.floor(self.since_start(time.perf_counter()) / self.interval) + 1)

    def _take(self) -> None:
        raise NotImplementedError

    def _failed(self, error: str | None) -> None:
        with self._errors_lock:
            self.errors += 1
            self.last_error = error
