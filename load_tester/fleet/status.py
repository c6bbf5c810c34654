"""A running fleet's own small HTTP endpoint, for compose's healthcheck and `make up`'s supervisor, and for
people: `GET /healthz` and `/readyz` (200 while it runs) and `GET /status` (its counts: connected, charging,
power, profiles). Bound where `BIND` says (host:port), as every service of the suite is."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from grid_common.settings import EnvReader


async def serve_status(bind: str, counts: Callable[[], dict]) -> asyncio.Server:
    host, _, port = bind.rpartition(":")

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            async with asyncio.timeout(5):
                request = await reader.readuntil(b"\r\n\r\n")
            method, path, *_ = [*request.split(b"\r\n", 1)[0].decode("latin-1").split(" "), "", ""]
            if method != "GET":
                status, body = "405 Method Not Allowed", {"title": "Method Not Allowed", "status": 405}
            elif path in ("/healthz", "/readyz"):
                status, body = "200 OK", {"status": "ok"}
            elif path == "/status":
                status, body = "200 OK", counts()
            else:
                status, body = "404 Not Found", {"title": "Not Found", "status": 404, "detail": "/healthz, /status"}
            payload = json.dumps(body).encode()
            kind = "application/json" if status.startswith("200") else "application/problem+json"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(payload)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, host or "0.0.0.0", int(port))


@dataclass(frozen=True)
class FleetEnvironment:
    """What the fleet reads from its environment when compose or `make up` runs it, checked at start."""

    bind: str | None
    ocpp_url: str | None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> FleetEnvironment:
        env = EnvReader(environ)
        bind = env.string("BIND", "") or None
        url = env.string("OCPP_URL", "") or None
        if bind is not None:
            host, _, port = bind.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                env.errors.append(f"BIND must be host:port, got {bind!r}")
        if url is not None and urlsplit(url).scheme not in ("ws", "wss"):
            env.errors.append(f"OCPP_URL must be a ws:// or wss:// URL, got {url!r}")
        env.check("load_tester.fleet")
        return cls(bind, url)
