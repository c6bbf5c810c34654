"""Outbound HTTP: pooled connections, a timeout on every call, and failures sorted by kind.

A JsonClient speaks JSON over a transport: urllib3 in the services, an in-process WSGI app in tests
(tests/fakes.py), so every client module can be exercised without a socket.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import orjson
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import HTTPError, NewConnectionError, TimeoutError

# Why a connection to an address must not be used, or None (the address as text).
AddressCheck = Callable[[str], str | None]


class UpstreamError(Exception):
    """The upstream could not give an answer; `kind` says why, for metrics and status codes."""

    kind = "error"


class UpstreamUnavailable(UpstreamError):
    kind = "unavailable"


class UpstreamRefused(UpstreamUnavailable):
    """No connection was made, so the request was never sent: repeating it is always safe."""


class UpstreamTimeout(UpstreamError):
    kind = "timeout"


class UpstreamBadResponse(UpstreamError):
    kind = "bad_response"


@dataclass(frozen=True)
class UpstreamResponse:
    status: int
    body: object
    retry_after: str | None


@dataclass(frozen=True)
class RawResponse:
    status: int
    data: bytes
    headers: Mapping[str, str]


class Transport(Protocol):
    """Sends one request; raises UpstreamRefused, UpstreamTimeout or UpstreamUnavailable when no answer came."""

    def send(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str], timeout: tuple[float, float]
    ) -> RawResponse: ...


class Urllib3Transport:
    """`address_check`: every connection's peer address is checked as it is made, before anything is sent on
    it; one that fails is closed, and the call refused (UpstreamRefused)."""

    def __init__(self, pool_size: int, address_check: AddressCheck | None = None) -> None:
        self.pool = urllib3.PoolManager(num_pools=256, maxsize=pool_size, retries=False)
        if address_check is not None:
            self.pool.pool_classes_by_scheme = checked_pools(address_check)

    def send(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str], timeout: tuple[float, float]
    ) -> RawResponse:
        connect, read = timeout
        try:
            response = self.pool.request(
                method, url, body=body, headers=headers, timeout=urllib3.Timeout(connect=connect, read=read)
            )
        except NewConnectionError as error:
            # Checked first: urllib3 makes a refused connection a subclass of its connect *timeout*.
            raise UpstreamRefused(f"{method} {url} failed: connection refused or unreachable") from error
        except TimeoutError as error:
            raise UpstreamTimeout(f"{method} {url} timed out") from error
        except HTTPError as error:
            raise UpstreamUnavailable(f"{method} {url} failed: {error.__class__.__name__}") from error
        return RawResponse(response.status, response.data, response.headers)


def checked_pools(address_check: AddressCheck) -> dict[str, type[HTTPConnectionPool]]:
    """urllib3's pools for http and https, whose connections check the address they reached."""

    def checked(connection: HTTPConnection) -> None:
        peer = connection.sock.getpeername()[0] if connection.sock is not None else ""
        problem = address_check(peer)
        if problem is not None:
            connection.close()
            raise NewConnectionError(connection, f"{connection.host} is now at {problem}")

    class Checked(HTTPConnection):
        def connect(self) -> None:
            super().connect()
            checked(self)

    class CheckedSecure(HTTPSConnection):
        def connect(self) -> None:
            super().connect()
            checked(self)

    class Pool(HTTPConnectionPool):
        ConnectionCls = Checked

    class SecurePool(HTTPSConnectionPool):
        ConnectionCls = CheckedSecure

    return {"http": Pool, "https": SecurePool}


class JsonClient:
    """A small JSON-over-HTTP client. No retries here: callers decide what is safe to repeat."""

    def __init__(
        self,
        *,
        connect_timeout: float,
        read_timeout: float,
        pool_size: int = 64,
        headers: dict[str, str] | None = None,
        transport: Transport | None = None,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.headers = {"Accept": "application/json", **(headers or {})}
        self.transport = transport or Urllib3Transport(pool_size)

    def call(
        self,
        method: str,
        url: str,
        body: object | None = None,
        *,
        timeout: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> UpstreamResponse:
        headers = {**self.headers, **(headers or {})}
        payload = None
        if body is not None:
            payload = orjson.dumps(body)
            headers["Content-Type"] = "application/json"
        limits = (
            (self.connect_timeout, self.read_timeout)
            if timeout is None
            else (min(timeout, self.connect_timeout), timeout)
        )
        response = self.transport.send(method, url, payload, headers, limits)
        try:
            decoded = orjson.loads(response.data) if response.data else None
        except ValueError as error:
            raise UpstreamBadResponse(
                f"{method} {url} answered {response.status} with a body that is not JSON"
            ) from error
        return UpstreamResponse(response.status, decoded, response.headers.get("Retry-After"))
