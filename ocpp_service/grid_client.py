"""The OCPP service's calls to the substations, async, each with a deadline: admit a plugged car at its charger's
substation (never elsewhere), stop it, read the feed of sessions on chargers, send meter readings on."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import time

import httpx
import msgspec

from grid_common.protocol import (
    BALANCER_ID,
    REQUEST_DEADLINE,
    ChargerFeed,
    MeterReading,
    MeterReadings,
    SessionChange,
    decode_charger_feed,
)

# httpcore asks `import sniffio` at every lock and event it sets up, four times a request, and a module that is
# not installed is looked for on the disk every time (about 50 us each, as much as the rest of a request): it is
# said once here that there is none, which httpcore takes as it would the failed import (asyncio).
if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
    sys.modules["sniffio"] = None  # type: ignore[assignment]

# The name the OCPP service's sessions are placed under: balancers count them as another's.
PLACED_BY = "ocpp"
# Admissions and stops in flight to one substation at once: a thousand chargers plugged in together wait
# here, not in the connection pool, so that each request's deadline starts when it leaves.
CHANGES_IN_FLIGHT = 16


class GridUnavailable(Exception):
    """No answer, or one that says nothing usable: the outcome of a change is not known."""


class GridClient:
    def __init__(self, substations: dict[str, str], timeout_s: float) -> None:
        self.urls = substations
        self.timeout_s = timeout_s
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
        self._http = httpx.AsyncClient(timeout=timeout_s, limits=limits)
        self._changes = {name: asyncio.Semaphore(CHANGES_IN_FLIGHT) for name in substations}

    async def close(self) -> None:
        await self._http.aclose()

    async def admit(self, substation: str, body: dict) -> tuple[int, dict]:
        """(status, body) of the substation's answer to an admission; GridUnavailable when there is none."""
        async with self._changes[substation]:
            headers = {BALANCER_ID: PLACED_BY, REQUEST_DEADLINE: f"{time.time() + self.timeout_s:.3f}"}
            return await self._json("POST", f"{self.urls[substation]}/begin_charging", json=body, headers=headers)

    async def stop(self, session_id: str, substation: str) -> tuple[int, dict]:
        async with self._changes[substation]:
            headers = {REQUEST_DEADLINE: f"{time.time() + self.timeout_s:.3f}"}
            return await self._json("POST", f"{self.urls[substation]}/sessions/{session_id}/stop", headers=headers)

    async def amend(self, session_id: str, substation: str, change: SessionChange) -> tuple[int, dict]:
        """A session's energy or departure said anew (its car's charging needs)."""
        async with self._changes[substation]:
            headers = {REQUEST_DEADLINE: f"{time.time() + self.timeout_s:.3f}"}
            url = f"{self.urls[substation]}/sessions/{session_id}"
            return await self._json("PATCH", url, json=change.to_json(), headers=headers)

    async def feed(self, substation: str, since: int, epoch: str | None = None, wait_s: float = 0.0) -> ChargerFeed:
        """The sessions on chargers changed since `since`; with `wait_s`, held by the substation until one changes
        (or `wait_s` passes), so the deadline is that much longer."""
        params: dict[str, str | int | float] = {"since": since}
        if wait_s > 0 and epoch is not None:
            params.update(wait=wait_s, epoch=epoch)
        else:
            wait_s = 0.0
        deadline = time.time() + wait_s + self.timeout_s
        try:
            response = await self._http.get(
                f"{self.urls[substation]}/chargers/feed", params=params, headers={REQUEST_DEADLINE: f"{deadline:.3f}"},
                timeout=wait_s + self.timeout_s,
            )  # fmt: skip
        except httpx.HTTPError as error:
            raise GridUnavailable(f"{substation}: {error!r}") from None
        if response.status_code != 200:
            raise GridUnavailable(f"{substation}: feed answered {response.status_code}")
        try:
            return decode_charger_feed(response.content)
        except (msgspec.ValidationError, msgspec.DecodeError) as error:
            raise GridUnavailable(f"{substation}: a feed that is not one: {error}") from None

    async def meters(self, substation: str, readings: list[MeterReading]) -> list[str]:
        """The sessions the substation does not hold."""
        body = msgspec.json.encode(MeterReadings(readings))
        status, answer = await self._json(
            "POST", f"{self.urls[substation]}/meters", content=body, headers={"Content-Type": "application/json"}
        )
        if status != 200:
            raise GridUnavailable(f"{substation}: meters answered {status}")
        return list(answer.get("unknown", []))

    async def _json(self, method: str, url: str, **kwargs) -> tuple[int, dict]:
        try:
            response = await self._http.request(method, url, **kwargs)
        except httpx.HTTPError as error:
            raise GridUnavailable(f"{url}: {error!r}") from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        return response.status_code, body if isinstance(body, dict) else {}
