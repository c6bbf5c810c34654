"""The OCPP service's one port: WebSocket connections of chargers at `/ocpp/<charger_id>` (subprotocols
ocpp1.6 and ocpp2.0.1), and plain HTTP for people and Prometheus (`/healthz`, `/readyz`, `/metrics`,
`/chargers`, `/chargers/<charger_id>`), answered before any handshake."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import logging
import signal
from http import HTTPStatus
from urllib.parse import unquote, urlsplit

import websockets
from prometheus_client import generate_latest
from prometheus_client.core import GaugeMetricFamily
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from grid_common.protocol import is_charger_id
from ocpp_service import api, metrics
from ocpp_service.config import Authentication, OcppConfig
from ocpp_service.csms import Csms
from ocpp_service.grid_client import GridClient
from ocpp_service.protocol_base import MAX_MESSAGE_BYTES
from ocpp_service.registry import default_registry, load_registry
from ocpp_service.v16 import ChargerV16
from ocpp_service.v201 import ChargerV201

log = logging.getLogger("ocpp_service")

SUBPROTOCOLS: dict[str, type[ChargerV16] | type[ChargerV201]] = {"ocpp1.6": ChargerV16, "ocpp2.0.1": ChargerV201}
PATH_PREFIX = "/ocpp/"


def respond(status: HTTPStatus, body: object, content_type: str = "application/json", **headers: str) -> Response:
    text = body if isinstance(body, bytes) else json.dumps(body).encode()
    # Each answer closes its connection (what websockets does after an HTTP answer): say so, or a client that
    # keeps connections would send its next request down one that is gone.
    all_headers = Headers(
        {"Content-Type": content_type, "Content-Length": str(len(text)), "Connection": "close", **headers}
    )
    return Response(status.value, status.phrase, all_headers, text)


def problem(status: HTTPStatus, detail: str, **headers: str) -> Response:
    body = {"type": "about:blank", "title": status.phrase, "status": status.value, "detail": detail}
    return respond(status, body, "application/problem+json", **headers)


class Service:
    def __init__(self, config: OcppConfig) -> None:
        self.config = config
        names = [name for name, _ in config.substations]
        if config.registry:
            registry = load_registry(config.registry, names)
        else:
            registry = default_registry(names, config.chargers_per_substation, config.fleet_chargers_per_substation)
        self.grid = GridClient(dict(config.substations), config.http_timeout_s)
        self.csms = Csms(config, registry, self.grid)
        self.draining = False
        metrics.REGISTRY.register(SubstationCollector(self.csms))

    # --- HTTP, and the handshake's checks ---------------------------------------------------------------
    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path.startswith(PATH_PREFIX):
            return self._check_charger(unquote(path[len(PATH_PREFIX) :]), request)
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return problem(HTTPStatus.NOT_FOUND, f"Chargers connect at {PATH_PREFIX}<charger_id>.")
        if path == "/healthz":
            return respond(HTTPStatus.OK, {"status": "ok"})
        if path == "/readyz":
            if self.draining:
                return respond(HTTPStatus.SERVICE_UNAVAILABLE, {"status": "draining"})
            ready = self.csms.ready
            return respond(HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE,
                           {"status": "ready" if ready else "reading the substations' sessions"})  # fmt: skip
        if path == "/metrics":
            return respond(HTTPStatus.OK, generate_latest(metrics.REGISTRY), "text/plain; version=0.0.4")
        if path == "/chargers":
            return respond(HTTPStatus.OK, {"chargers": [self.csms.describe(link) for link in self.csms.links.values()]})
        if path.startswith("/chargers/"):
            link = self.csms.links.get(unquote(path[len("/chargers/") :]))
            if link is None:
                return problem(HTTPStatus.NOT_FOUND, "No such charger in the registry.")
            return respond(HTTPStatus.OK, self.csms.describe(link))
        return problem(HTTPStatus.NOT_FOUND, "Not here: /ocpp/<charger_id>, /chargers, /healthz, /readyz, /metrics.")

    def _check_charger(self, charger_id: str, request: Request) -> Response | None:
        link = self.csms.links.get(charger_id) if is_charger_id(charger_id) else None
        if link is None:
            return problem(HTTPStatus.NOT_FOUND, "Not a registered charger: ask the operator to register it.")
        if self.config.authentication == Authentication.BASIC:
            expected = link.charger.password
            if expected is None or not basic_auth_matches(request.headers.get("Authorization"), charger_id, expected):
                return problem(HTTPStatus.UNAUTHORIZED, "HTTP Basic: the charger's id and password.",
                               **{"WWW-Authenticate": 'Basic realm="ocpp"'})  # fmt: skip
        return None

    # --- a charger's connection --------------------------------------------------------------------------
    async def handle(self, connection: ServerConnection) -> None:
        request = connection.request
        assert request is not None
        charger_id = unquote(urlsplit(request.path).path[len(PATH_PREFIX) :])
        kind = SUBPROTOCOLS.get(connection.subprotocol or "")
        if kind is None:
            await connection.close(1002, "subprotocol ocpp1.6 or ocpp2.0.1 required")
            return
        charge_point: ChargerV16 | ChargerV201 = kind(charger_id, connection, self.csms)
        self.csms.connected(charger_id, charge_point)
        try:
            await charge_point.start()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.csms.disconnected(charger_id, charge_point)

    async def run(self, ready: asyncio.Event | None = None) -> None:
        loops = self.csms.start()
        api_server = await api.start(api.Api(self.csms), self.config.api_host, self.config.api_port)
        async with websockets.serve(
            self.handle,
            self.config.host,
            self.config.port,
            subprotocols=list(SUBPROTOCOLS),  # type: ignore[arg-type]
            process_request=self.process_request,
            max_size=4 * MAX_MESSAGE_BYTES,  # beyond what is answered with a CallError: the connection closes
            ping_interval=30,
            ping_timeout=30,
        ) as server:
            stop = asyncio.get_running_loop().create_future()
            for signum in (signal.SIGTERM, signal.SIGINT):
                asyncio.get_running_loop().add_signal_handler(signum, stop.set_result, None)
            log.info("OCPP service on %s:%s (API on %s), %d chargers registered", self.config.host,
                     self.config.port, self.config.api_bind, len(self.csms.links))  # fmt: skip
            if ready is not None:
                ready.set()
            await stop
            self.draining = True
            await asyncio.sleep(self.config.shutdown_drain_s)
            server.close()
            api_server.close()
        for task in loops:
            task.cancel()
        await self.grid.close()


def basic_auth_matches(header: str | None, user: str, password: str) -> bool:
    if header is None or not header.startswith("Basic "):
        return False
    try:
        given = base64.b64decode(header[6:], validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return False
    name, _, secret = given.partition(":")
    return hmac.compare_digest(name.encode(), user.encode()) & hmac.compare_digest(secret.encode(), password.encode())


class SubstationCollector:
    """Per substation, at scrape time: chargers offline mid-transaction, and measured against allocated power."""

    def __init__(self, csms: Csms) -> None:
        self.csms = csms

    def collect(self):
        by = ["substation"]
        offline = GaugeMetricFamily(
            "ocpp_chargers_offline_in_transaction", "Chargers disconnected while their transaction lasts.", labels=by
        )
        measured = GaugeMetricFamily("ocpp_measured_power_watts", "What chargers' meters read last, summed.", labels=by)
        allocated = GaugeMetricFamily(
            "ocpp_allocated_power_watts", "What chargers' sessions may draw, summed.", labels=by
        )
        sums = {name: [0, 0.0, 0.0] for name in self.csms.feeds}
        for link in self.csms.links.values():
            if link.transaction is None:
                continue
            row = sums[link.charger.substation]
            row[0] += 0 if link.connected else 1
            row[1] += (link.measured_kw or 0.0) * 1000
            row[2] += link.allocated_kw * 1000
        for name, (down, measured_w, allocated_w) in sums.items():
            offline.add_metric([name], down)
            measured.add_metric([name], measured_w)
            allocated.add_metric([name], allocated_w)
        yield from (offline, measured, allocated)
