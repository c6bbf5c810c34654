"""Fakes for a service's collaborators, in the manner of httpx's MockTransport: the real client modules
run, and only the bytes on the wire are replaced."""

from __future__ import annotations

from collections.abc import Callable

from werkzeug.test import Client

from grid_common.upstream import RawResponse, UpstreamRefused, UpstreamTimeout


class WsgiTransport:
    """Delivers each request to the WSGI app serving its base URL, in this process: a whole grid without
    a socket. A URL that no app serves is refused, as a port nobody listens on is; a base URL marked slow
    times out, as a frozen process does; one marked lost serves the request and then times out."""

    def __init__(self, apps: dict[str, Callable] | None = None) -> None:
        self.apps: dict[str, Client] = {}
        self.slow: set[str] = set()
        # Base URLs whose answers are lost: the request is served, then the caller times out.
        self.lost: set[str] = set()
        self.sent: list[tuple[str, str, dict[str, str]]] = []  # (method, url, headers) of every request
        for base_url, app in (apps or {}).items():
            self.serve(base_url, app)

    def serve(self, base_url: str, app: Callable) -> None:
        self.apps[base_url.rstrip("/")] = Client(app)

    def send(self, method, url, body, headers, timeout) -> RawResponse:
        self.sent.append((method, url, dict(headers)))
        for base_url, client in self.apps.items():
            if url.startswith(base_url + "/"):
                if base_url in self.slow:
                    raise UpstreamTimeout(f"{method} {url} timed out")
                response = client.open(url[len(base_url) :], method=method, data=body, headers=headers)
                if base_url in self.lost:
                    raise UpstreamTimeout(f"{method} {url} timed out (its answer was lost)")
                return RawResponse(response.status_code, response.get_data(), dict(response.headers))
        raise UpstreamRefused(f"{method} {url} failed: connection refused")


class Clock:
    """Wall time that moves only when a test says so."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
