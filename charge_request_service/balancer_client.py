"""Every call the gateway makes to the balancer, in one place: over one or more balancer replicas, in turn,
skipping one that cannot be reached."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

from grid_common import deadline as deadlines
from grid_common.protocol import SESSION_TOKEN, ChargeRequest
from grid_common.upstream import JsonClient, Transport, UpstreamRefused, UpstreamResponse


def _sleep(seconds: float) -> None:
    time.sleep(seconds)  # looked up at call time: gevent patches it after this module may be imported


class BalancerRotation:
    """Balancer URLs in turn: each call starts at the next one, and goes round all of them if it must."""

    def __init__(self, urls: tuple[str, ...]) -> None:
        self.urls = urls
        self._turn = itertools.count()

    def round(self) -> list[str]:
        start = next(self._turn) % len(self.urls)
        return [*self.urls[start:], *self.urls[:start]]


class BalancerClient:
    def __init__(
        self,
        urls: tuple[str, ...],
        *,
        connect_timeout_s: float,
        read_timeout_s: float,
        connect_retries: int,
        transport: Transport | None = None,
        sleep: Callable[[float], None] = _sleep,
    ) -> None:
        self.rotation = BalancerRotation(urls)
        self.read_timeout_s = read_timeout_s
        self.connect_retries = connect_retries
        self.sleep = sleep
        self.http = JsonClient(connect_timeout=connect_timeout_s, read_timeout=read_timeout_s, transport=transport)

    def assign(
        self,
        request: ChargeRequest,
        *,
        token: str | None = None,
        within_s: float | None = None,
        deadline: float | None = None,
    ) -> UpstreamResponse:
        """Ask for a session; with `token`, its id is `<substation>.<token>`. It carries a deadline: the
        balancer places nothing once the gateway has stopped waiting (`within_s`, by default its timeout), by
        `deadline` (wall time) if given, else a margin before that."""
        wait_s = self.read_timeout_s if within_s is None else within_s
        headers = deadlines.header(deadlines.deadline_in(wait_s) if deadline is None else deadline)
        if token is not None:
            headers[SESSION_TOKEN] = token
        return self._call("POST", "/assign_substation", request.to_json(), headers)

    def find_session(self, token: str) -> UpstreamResponse:
        """The session some substation holds under `token` (200), none (404), or 503 when it cannot tell."""
        return self._call("GET", f"/sessions/by-token/{token}")

    def session(self, session_id: str) -> UpstreamResponse:
        return self._call("GET", f"/sessions/{session_id}")

    def amend_session(self, session_id: str, change: dict) -> UpstreamResponse:
        return self._call("PATCH", f"/sessions/{session_id}", change)

    def stop_session(self, session_id: str) -> UpstreamResponse:
        return self._call("POST", f"/sessions/{session_id}/stop")

    def _call(self, method: str, path: str, body: dict | None = None, headers: dict | None = None) -> UpstreamResponse:
        """One call, on the next balancer in turn. A balancer that could not be connected to never got the
        request, so the next one is tried, and after a round of them all, the round again (CONNECT_RETRIES).
        Any other failure is raised: the request may have arrived, and only the caller knows if it may repeat."""
        refused: UpstreamRefused | None = None
        for attempt in range(self.connect_retries + 1):
            if attempt:
                self.sleep(0.05 * 2 ** (attempt - 1))
            for url in self.rotation.round():
                try:
                    return self.http.call(method, f"{url}{path}", body, headers=headers)
                except UpstreamRefused as error:
                    refused = error
        assert refused is not None
        raise refused
