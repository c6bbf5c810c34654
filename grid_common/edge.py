"""The edge of every service, before its app sees a request and where gunicorn answers on its own.

- A request body arrives whole, within bounds, or not at all: at most MAX_BODY_BYTES whatever its framing
  (Content-Length or chunked: 413 beyond), and within BODY_TIMEOUT_S of the headers (408), so that slow
  clients cannot hold a worker's connections and starve everyone else. Either answer closes the connection.
- gunicorn's own answers to requests it cannot parse (400, 414, 431, ...) are problem+json like the rest.
"""

from __future__ import annotations

import functools
import io
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import orjson

MAX_BODY_BYTES = 16 * 1024
BODY_TIMEOUT_S = 5.0
PROBLEM_CONTENT_TYPE = "application/problem+json"
# Where the body read here waits in the WSGI environ: the app takes it from there rather than through the
# stream wrappers of its framework, which cost more than the small body itself.
BODY = "grid.body"


def problem_bytes(status: int, title: str, detail: str) -> bytes:
    return orjson.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail})


class BodyTooSlow(Exception):
    pass


if TYPE_CHECKING:

    class _GeventTimeout(BaseException):
        """What this module uses of gevent.Timeout, which publishes no types: an exception, raised in the
        greenlet that entered it once its seconds are up."""

        def __init__(self, seconds: float) -> None: ...
        def __enter__(self) -> _GeventTimeout: ...
        def __exit__(self, *exc_info: object) -> None: ...


def _read_within(stream, limit: int, timeout_s: float) -> bytes:
    """Up to `limit` bytes of `stream`, all of them within `timeout_s`, or BodyTooSlow."""
    chunks: list[bytes] = []
    size = 0
    deadline = time.monotonic() + timeout_s
    while size < limit:
        left = deadline - time.monotonic()
        if left <= 0:
            raise BodyTooSlow
        chunk = _read_some(stream, min(65536, limit - size), left)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _read_some(stream, size: int, timeout_s: float) -> bytes:
    """One read, bounded in time: under gevent a Timeout interrupts it wherever it waits."""
    timeout = _gevent_timeout()
    if timeout is None:
        return stream.read(size)
    try:
        with timeout(timeout_s):
            return stream.read(size)
    except timeout:
        raise BodyTooSlow from None


@functools.cache
def _gevent_timeout() -> type[_GeventTimeout] | None:
    """gevent's Timeout when gevent serves this process (asked once: a worker patches before its first
    request), else None: a plain WSGI server hands the app a body already in memory."""
    try:
        import gevent
        from gevent import monkey
    except ImportError:  # pragma: no cover - every service runs gevent
        return None
    return gevent.Timeout if monkey.is_module_patched("socket") else None


class BoundedBody:
    """WSGI middleware: the app gets the body already read, in memory, with its true Content-Length."""

    def __init__(self, app: Callable, max_bytes: int = MAX_BODY_BYTES, timeout_s: float = BODY_TIMEOUT_S) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        declared = environ.get("CONTENT_LENGTH") or ""
        if not chunked and (not declared.isdigit() or int(declared) == 0):
            return self.app(environ, start_response)
        if declared.isdigit() and int(declared) > self.max_bytes:
            return self._refuse(start_response, 413, "Content Too Large", self._too_large())
        # A declared length is read and no further: asking past it only to hear the end costs another read.
        limit = int(declared) if not chunked else self.max_bytes + 1
        try:
            body = _read_within(environ["wsgi.input"], limit, self.timeout_s)
        except BodyTooSlow:
            detail = f"The request body did not arrive within {self.timeout_s:g} s."
            return self._refuse(start_response, 408, "Request Timeout", detail)
        if len(body) > self.max_bytes:
            return self._refuse(start_response, 413, "Content Too Large", self._too_large())
        environ["wsgi.input"] = io.BytesIO(body)
        environ[BODY] = body
        environ["CONTENT_LENGTH"] = str(len(body))
        environ["wsgi.input_terminated"] = True
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        return self.app(environ, start_response)

    def _too_large(self) -> str:
        return f"The request body is over {self.max_bytes // 1024} KiB."

    @staticmethod
    def _refuse(start_response: Callable, status: int, title: str, detail: str) -> list[bytes]:
        body = problem_bytes(status, title, detail)
        # What is left of the body is never read: the connection cannot carry another request.
        close_after_answer(start_response)
        headers = [("Content-Type", PROBLEM_CONTENT_TYPE), ("Content-Length", str(len(body)))]
        start_response(f"{status} {title}", headers)
        return [body]


def close_after_answer(start_response: Callable) -> None:
    """Have the server answer `Connection: close` and close the connection once this answer is sent.

    An app cannot say so with a header: hop-by-hop headers are the server's (PEP 3333), and gunicorn drops
    them, answers keep-alive, then reads what is left of the body and serves the next request behind it, or
    waits its keep-alive timeout for a body that is not coming. The start_response gunicorn hands an app is
    its Response's bound method (Flask and werkzeug's dispatcher pass it to BoundedBody as it is), and that
    Response closes the connection when forced to. Other servers' start_response is left alone.
    """
    force_close = getattr(getattr(start_response, "__self__", None), "force_close", None)
    if callable(force_close):
        force_close()


def write_problem(sock, status: int, reason: str, message: str) -> None:
    """gunicorn's util.write_error, answering problem+json instead of an HTML page (installed by
    gunicorn_conf in every worker)."""
    body = problem_bytes(status, reason, message or reason)
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: {PROBLEM_CONTENT_TYPE}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    sock.sendall(head.encode("latin-1") + body)
