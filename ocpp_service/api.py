"""The OCPP service's API for the balancer, on a port of its own (API_BIND): `POST /chargers/<id>/remote_start`,
and `GET /chargers`, `/chargers/<id>`, `/healthz` as on the chargers' port.

Why a port of its own: the chargers' port is websockets', which answers plain HTTP only to GET, before a
handshake. Here h11 reads each request (one per connection: the balancer's calls are few), and every answer is
JSON, every error application/problem+json.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from urllib.parse import unquote, urlsplit

import h11

from grid_common import deadline
from grid_common.protocol import SESSION_TOKEN, InvalidRequest, is_session_token, parse_charge_request
from ocpp_service.csms import Csms

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024
MAX_HEAD_BYTES = 16 * 1024
READ_S = 5.0  # a request that has not arrived whole by then is answered 408
# Without a deadline from the caller: how long a remote start waits for its session.
DEFAULT_WAIT_S = 4.0

Answer = tuple[int, object]


def problem(status: HTTPStatus, detail: str, **more: object) -> Answer:
    return status.value, {"type": "about:blank", "title": status.phrase, "status": status.value, "detail": detail,
                          **more}  # fmt: skip


def encode(status: int, body: object, extra_headers: dict[str, str] | None = None) -> bytes:
    payload = json.dumps(body).encode()
    is_problem = isinstance(body, dict) and "type" in body and "status" in body and status >= 400
    headers = {
        "Content-Type": "application/problem+json" if is_problem else "application/json",
        "Content-Length": str(len(payload)),
        "Connection": "close",
        **(extra_headers or {}),
    }
    reason = HTTPStatus(status).phrase
    head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head.encode("latin-1") + payload


class RequestTooLarge(Exception):
    pass


async def read_request(connection: h11.Connection, reader: asyncio.StreamReader) -> tuple[h11.Request, bytes]:
    request: h11.Request | None = None
    body = bytearray()
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            connection.receive_data(await reader.read(65536))
        elif isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > MAX_BODY_BYTES:
                raise RequestTooLarge
        elif isinstance(event, h11.EndOfMessage):
            assert request is not None
            return request, bytes(body)
        elif isinstance(event, h11.ConnectionClosed):
            raise ConnectionError("closed before a whole request")


class Api:
    def __init__(self, csms: Csms) -> None:
        self.csms = csms

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        try:
            try:
                async with asyncio.timeout(READ_S):
                    request, body = await read_request(connection, reader)
                status, answer = await self.route(request, body)
            except TimeoutError:
                status, answer = problem(HTTPStatus.REQUEST_TIMEOUT, f"The request did not arrive within {READ_S:g} s.")
            except RequestTooLarge:
                status, answer = problem(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"Body over {MAX_BODY_BYTES} bytes.")
            except h11.RemoteProtocolError as error:
                status, answer = problem(HTTPStatus.BAD_REQUEST, f"Not HTTP/1.1: {error}.")
            except ConnectionError:
                return
            except Exception:  # answered, never a dropped connection: the balancer must know it was not done
                log.exception("API request failed")
                status, answer = problem(HTTPStatus.INTERNAL_SERVER_ERROR, "The OCPP service failed on this request.")
            writer.write(encode(status, answer))
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def route(self, request: h11.Request, body: bytes) -> Answer:
        method = request.method.decode()
        path = unquote(urlsplit(request.target.decode("latin-1")).path)
        get_routes: dict[str, Callable[[], Answer]] = {
            "/healthz": lambda: (200, {"status": "ok"}),
            "/chargers": lambda: (200, {"chargers": [self.csms.describe(link) for link in self.csms.links.values()]}),
        }
        if path in get_routes or (path.startswith("/chargers/") and path.count("/") == 2):
            if method != "GET":
                return problem(HTTPStatus.METHOD_NOT_ALLOWED, f"{path} is read with GET.")
            if path in get_routes:
                return get_routes[path]()
            link = self.csms.links.get(path[len("/chargers/") :])
            if link is None:
                return problem(HTTPStatus.NOT_FOUND, "No such charger in the registry.")
            return 200, self.csms.describe(link)
        if path.startswith("/chargers/") and path.endswith("/remote_start") and path.count("/") == 3:
            if method != "POST":
                return problem(HTTPStatus.METHOD_NOT_ALLOWED, "A remote start is a POST.")
            charger_id = path[len("/chargers/") : -len("/remote_start")]
            return await self.remote_start(charger_id, dict(request.headers), body)
        return problem(HTTPStatus.NOT_FOUND, "Not here: POST /chargers/<id>/remote_start, GET /chargers, /healthz.")

    async def remote_start(self, charger_id: str, raw_headers: dict, body: bytes) -> Answer:
        headers = {name.decode().lower(): value.decode("latin-1") for name, value in raw_headers.items()}
        token = headers.get(SESSION_TOKEN.lower())
        if token is None or not is_session_token(token):
            return problem(HTTPStatus.BAD_REQUEST, f"{SESSION_TOKEN}: 8 to 64 letters and digits, naming the session.")
        try:
            by = deadline.parse(headers.get("request-deadline"))
        except ValueError:
            return problem(HTTPStatus.BAD_REQUEST, "Request-Deadline must be a Unix time in seconds.")
        if by is not None and deadline.passed(by):
            return problem(HTTPStatus.REQUEST_TIMEOUT, "Arrived after its deadline: nothing was started.",
                           **deadline.late_body(by))  # fmt: skip
        try:
            request = parse_charge_request(json.loads(body) if body else None, voltage_v=self.csms.config.voltage_v)
        except ValueError as error:
            if isinstance(error, InvalidRequest):
                return problem(HTTPStatus.UNPROCESSABLE_ENTITY, str(error), errors=error.errors)
            return problem(HTTPStatus.BAD_REQUEST, "Malformed JSON.")
        return await self.csms.remote_start(charger_id, request, token, by or time.time() + DEFAULT_WAIT_S)


async def start(api: Api, host: str, port: int) -> asyncio.Server:
    serve: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]] = api.serve
    return await asyncio.start_server(serve, host, port, limit=MAX_HEAD_BYTES + MAX_BODY_BYTES)
