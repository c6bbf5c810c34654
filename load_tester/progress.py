"""The progress bar drawn on stderr during a run."""

from __future__ import annotations

import sys
import time
from typing import TextIO

PROGRESS_INTERVAL_S = 0.1  # redraw the progress bar at most ~10 times a second


class Progress:
    """A one-line progress bar on stderr, drawn only when stderr is a terminal."""

    WIDTH = 30

    def __init__(self, total: int, enabled: bool, stream: TextIO = sys.stderr) -> None:
        self.total = total
        self.enabled = enabled and stream.isatty()
        self.stream = stream
        self.started = time.monotonic()
        self.last_draw = 0.0
        self.shown = False

    def update(self, done: int, force: bool = False, detail: str | None = None) -> None:
        """Redraw the bar; `detail` replaces the rate and elapsed time after the count."""
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self.last_draw < PROGRESS_INTERVAL_S:
            return
        self.last_draw = now
        elapsed = now - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        filled = self.WIDTH * done // self.total if self.total else self.WIDTH
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        tail = f"{rate:.1f} req/s  {elapsed:.1f} s" if detail is None else detail
        self.stream.write(f"\r\x1b[2K[{bar}] {done}/{self.total}  {tail}")
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.enabled and self.shown:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self.shown = False
