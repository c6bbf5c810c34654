"""Keeps the view fresh: polls every substation's /load concurrently, on an interval, with timeouts."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from grid_common.protocol import MalformedReport
from grid_common.upstream import UpstreamError, UpstreamUnavailable
from load_balancer import metrics
from load_balancer.grid_view import GridView, KnownSubstation
from load_balancer.substation_client import SubstationClient

log = logging.getLogger(__name__)


def due_for_poll(substation: KnownSubstation, now: float, interval_s: float) -> bool:
    """Poll only what no admission answer refreshed within the interval.

    Every admission answer carries a full load report, so under load the view stays fresh without
    polling, and the poller's cost stops growing with traffic times substations.
    """
    return not substation.healthy or substation.updated_at is None or now - substation.updated_at >= interval_s


class Poller:
    def __init__(
        self,
        grid_view: GridView,
        substations: SubstationClient,
        *,
        interval_s: float,
        timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
        discover: Callable[[], None] | None = None,
        discovery_interval_s: float = 5.0,
    ) -> None:
        self.grid_view = grid_view
        self.discover = discover
        self.discovery_interval_s = discovery_interval_s
        self._discovered_at = -math.inf
        self.substations = substations
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.clock = clock
        self._stop = threading.Event()
        # Up to 64 polls at once, whatever the count at start: substations may join later (registration,
        # DNS discovery), and the pool only starts the workers it needs.
        self._executor = ThreadPoolExecutor(max_workers=64, thread_name_prefix="poll")
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="substation-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                if self.discover is not None and started - self._discovered_at >= self.discovery_interval_s:
                    self._discovered_at = started
                    self.discover()
                self.poll_once()
            except Exception:
                log.exception("polling round failed")
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))

    def poll_once(self) -> None:
        now = self.clock()
        due = [substation for substation in self.grid_view.all() if due_for_poll(substation, now, self.interval_s)]
        list(self._executor.map(self.refresh, due))
        healthy = 0
        for substation in self.grid_view.all():
            metrics.of_substation(metrics.SUBSTATION_UP, substation.name).set(1 if substation.healthy else 0)
            healthy += substation.healthy
        metrics.HEALTHY_SUBSTATIONS.set(healthy)

    def refresh(self, substation: KnownSubstation) -> None:
        try:
            report = self.substations.load(substation.url, timeout_s=self.timeout_s)
            was_healthy = substation.healthy
            self.grid_view.apply_report(substation.name, report, self.clock())
            if not was_healthy and substation.healthy:
                log.info("substation %s is healthy", substation.name)
            elif was_healthy and not substation.healthy:
                log.info("substation %s is draining: nothing new goes there", substation.name)
        except (UpstreamError, MalformedReport) as error:
            reason = error.kind if isinstance(error, UpstreamError) else "bad_response"
            metrics.of_substation(metrics.UPSTREAM_FAILURES, substation.name, "poll", reason).inc()
            was_healthy = substation.healthy
            self.grid_view.record_failure(substation.name, certain=isinstance(error, UpstreamUnavailable))
            if was_healthy and not substation.healthy:
                log.warning("substation %s is unhealthy: %s", substation.name, error)
