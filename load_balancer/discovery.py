"""Finding substations by DNS: a Kubernetes headless Service (or compose service) name lists them all.

Each address the name resolves to is a substation; its own `/load` report says its name. So scaling
the StatefulSet is all it takes to add one, and a substation that leaves the name is taken out.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable

from grid_common.protocol import MalformedReport
from grid_common.upstream import UpstreamError
from load_balancer import metrics
from load_balancer.grid_view import GridView
from load_balancer.substation_client import SubstationClient

log = logging.getLogger(__name__)

Resolve = Callable[[str, int], set[str]]


def resolve_ipv4(host: str, port: int) -> set[str]:
    """Every IPv4 address of `host`; none when it does not resolve (a Service with no ready pod yet)."""
    try:
        infos = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)
    except socket.gaierror:
        return set()
    return {info[4][0] for info in infos if info[0] == socket.AF_INET}  # all of them: AF_INET was asked for


class Discovery:
    def __init__(
        self,
        grid_view: GridView,
        substations: SubstationClient,
        host: str,
        port: int,
        *,
        timeout_s: float,
        strategy: str,
        resolve: Resolve = resolve_ipv4,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.grid_view = grid_view
        self.substations = substations
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self.strategy = strategy
        self.resolve = resolve
        self.clock = clock
        self._discovered: dict[str, str] = {}  # url -> substation name, for what DNS brought

    def url_of(self, address: str) -> str:
        return f"http://{address}:{self.port}"

    def run_once(self) -> None:
        urls = {self.url_of(address) for address in self.resolve(self.host, self.port)}
        for url in sorted(urls - set(self._discovered)):
            self._join(url)
        for url in sorted(set(self._discovered) - urls):
            self._leave(url)

    def _join(self, url: str) -> None:
        try:
            report = self.substations.load(url, timeout_s=self.timeout_s)
        except (UpstreamError, MalformedReport):
            return  # not answering yet: the next round tries again
        name = report.name
        moved = self.grid_view.get(name)
        if moved is not None:  # the same substation at a new address (a rescheduled pod)
            self.grid_view.remove(name)
            self._discovered = {u: n for u, n in self._discovered.items() if n != name}
        self.grid_view.add(name, url)
        self.grid_view.apply_report(name, report, self.clock())
        self._discovered[url] = name
        metrics.initialize([name], self.strategy)
        log.info("discovered substation %s at %s", name, url)

    def _leave(self, url: str) -> None:
        name = self._discovered.pop(url)
        known = self.grid_view.get(name)
        if known is not None and known.url == url:
            self.grid_view.remove(name)
            metrics.forget(name)
            log.info("substation %s left %s", name, self.host)
