"""Outbound HTTP: pooled connections, a timeout on every call, and failures sorted by kind."""

from __future__ import annotations

import json
from dataclasses import dataclass

import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError, TimeoutError


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


class JsonClient:
    """A small JSON-over-HTTP client. No retries here: callers decide what is safe to repeat."""

    def __init__(
        self,
        *,
        connect_timeout: float,
        read_timeout: float,
        pool_size: int = 64,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        self.pool = urllib3.PoolManager(
            num_pools=256,
            maxsize=pool_size,
            retries=False,
            timeout=self.timeout,
            headers={"Accept": "application/json", **(headers or {})},
        )

    def call(
        self,
        method: str,
        url: str,
        body: object | None = None,
        *,
        timeout: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> UpstreamResponse:
        # The pool's own headers apply only when a call passes none: start from them.
        headers = {**self.pool.headers, **(headers or {})}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        call_timeout = (
            self.timeout
            if timeout is None
            else urllib3.Timeout(connect=min(timeout, self.timeout.connect_timeout), read=timeout)
        )
        try:
            response = self.pool.request(method, url, body=payload, headers=headers, timeout=call_timeout)
        except NewConnectionError as error:
            # Checked first: urllib3 makes a refused connection a subclass of its connect *timeout*.
            raise UpstreamRefused(f"{method} {url} failed: connection refused or unreachable") from error
        except TimeoutError as error:
            raise UpstreamTimeout(f"{method} {url} timed out") from error
        except HTTPError as error:
            raise UpstreamUnavailable(f"{method} {url} failed: {error.__class__.__name__}") from error
        try:
            decoded = json.loads(response.data) if response.data else None
        except ValueError as error:
            raise UpstreamBadResponse(
                f"{method} {url} answered {response.status} with a body that is not JSON"
            ) from error
        return UpstreamResponse(response.status, decoded, response.headers.get("Retry-After"))
