"""One request: its body, sending it to the gateway, and reading the balancer's view of the grid."""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any


def body_for(args: argparse.Namespace, index: int) -> dict[str, Any] | None:
    """The JSON body of request `index` (1-based), or None for a body-less POST."""
    built = args.energy_kwh is not None or args.max_power_kw is not None
    if args.body is None and not built:
        return None
    body = dict(args.body or {})
    if built:
        body.setdefault("vehicle_id", f"{args.vehicle_prefix}{index}")
        if args.energy_kwh is not None:
            body["energy_kwh"] = args.energy_kwh
        if args.max_power_kw is not None:
            body["max_power_kw"] = args.max_power_kw
    return body


@dataclass
class Outcome:
    index: int
    status: str  # "201", "503", "error: timeout", ...
    latency_ms: float | None = None  # only for requests that got an HTTP answer
    body: Any = None  # decoded JSON, text, or the error description
    retry_after: str | None = None  # what a refusal told the client
    sent_at: float | None = None  # wall-clock time the request was sent (Unix seconds)

    def as_json(self) -> dict[str, Any]:
        body = self.body if isinstance(self.body, dict) else {}
        return {
            "index": self.index,
            "status": self.status,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 3),
            "session_id": body.get("session_id"),
            "substation": body.get("substation"),
            "retry_after": self.retry_after,
            "sent_at": self.sent_at,
        }

    @property
    def ok(self) -> bool:
        return self.status.isdigit() and 200 <= int(self.status) < 300


def decode(raw: bytes) -> Any:
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def describe_error(error: BaseException) -> str:
    """A short, stable outcome label for a failure that produced no HTTP answer."""
    if isinstance(error, urllib.error.URLError) and isinstance(error.reason, BaseException):
        error = error.reason
    if isinstance(error, TimeoutError):
        return "error: timeout"
    if isinstance(error, ConnectionRefusedError):
        return "error: connection refused"
    if isinstance(error, ConnectionResetError):
        return "error: connection reset"
    if isinstance(error, http.client.RemoteDisconnected):
        return "error: remote disconnected"
    if isinstance(error, socket.gaierror):
        return "error: unknown host"
    if isinstance(error, urllib.error.URLError):
        return f"error: {error.reason}"
    return f"error: {type(error).__name__}"


def send(url: str, body: dict[str, Any] | None, timeout: float, index: int) -> Outcome:
    data = None if body is None else json.dumps(body).encode()
    request_headers = {"Accept": "application/json"}
    if data is not None:
        request_headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=request_headers, method="POST")
    sent_at = time.time()
    started = time.perf_counter()
    try:
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, raw, headers = response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:  # an HTTP answer with an error status is an outcome too
            with error:
                status, raw, headers = error.code, error.read(), error.headers
    except (OSError, http.client.HTTPException, ValueError) as error:
        return Outcome(index, describe_error(error), body=describe_error(error), sent_at=sent_at)
    latency_ms = (time.perf_counter() - started) * 1000
    return Outcome(index, str(status), latency_ms, decode(raw), headers.get("Retry-After"), sent_at)


def read_substations(balancer_url: str, timeout: float) -> tuple[dict[str, Any] | None, str | None]:
    """The balancer's `GET /substations` answer, or None and the reason it could not be read."""
    listing, error = fetch_json(balancer_url.rstrip("/") + "/substations", timeout)
    if error is not None:
        return None, error
    substations = listing.get("substations") if isinstance(listing, dict) else None
    if not isinstance(substations, list) or not all(isinstance(s, dict) and "name" in s for s in substations):
        return None, "unreadable answer (unexpected /substations body)"
    return listing, None


def fetch_balancer_view(balancer_url: str, timeout: float) -> tuple[list[dict[str, Any]] | None, str | None]:
    """The balancer's substations after the run, or None and the reason it could not be read."""
    listing, error = read_substations(balancer_url, timeout)
    return (None, error) if listing is None else (listing["substations"], None)


def fetch(url: str, timeout: float) -> tuple[bytes | None, str | None]:
    """A GET's body, or None and the reason there is none (an error status, a timeout, no connection)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read(), None
    except urllib.error.HTTPError as error:
        error.close()
        return None, f"HTTP {error.code}"
    except (OSError, http.client.HTTPException, ValueError) as error:
        return None, describe_error(error).removeprefix("error: ")


def fetch_json(url: str, timeout: float) -> tuple[Any, str | None]:
    """A GET's decoded JSON body, or None and the reason there is none."""
    raw, error = fetch(url, timeout)
    if raw is None:
        return None, error
    try:
        return json.loads(raw), None
    except ValueError as decode_error:
        return None, f"unreadable answer ({decode_error})"
