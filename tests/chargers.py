"""Simulated OCPP chargers (load_tester/fleet) for tests whose own code is synchronous: the monitoring test's
Prometheus and the live page's browser run in the test's thread, the chargers on an event loop of their own."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from load_tester.fleet.charger import SimulatedCharger
from load_tester.fleet.profiles import ChargingProfile, ProfileError

T = TypeVar("T")


class ChargerLoop:
    """An event loop in a daemon thread; `run(coroutine)` waits for its result. Chargers connect, plug and
    unplug through it, and keep their connections (meters, heartbeats, profiles) between calls."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="chargers", daemon=True)
        self.chargers: list[SimulatedCharger] = []

    def __enter__(self) -> ChargerLoop:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        try:
            self.run(self._close_all(), timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=5)
            self.loop.close()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 15) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def connect(
        self,
        url: str,
        charger_id: str,
        protocol: str = "1.6",
        *,
        prepare: Callable[[SimulatedCharger], None] | None = None,
        **settings: Any,
    ) -> SimulatedCharger:
        """A charger connected to the OCPP service at `url` (`ws://host:port/ocpp`), its boot answered;
        `prepare` is done to it before it connects."""

        async def connect() -> SimulatedCharger:
            charger = SimulatedCharger(charger_id, protocol, **{"meter_interval_s": 0.5, **settings})
            if prepare is not None:
                prepare(charger)
            await charger.connect(url)
            return charger

        charger = self.run(connect())
        self.chargers.append(charger)
        return charger

    async def _close_all(self) -> None:
        for charger in self.chargers:
            await charger.close()


class RejectProfiles:
    """For `prepare`: the charger answers Rejected to its next `left` SetChargingProfile (add to it to have more
    rejected), and installs the others as usual."""

    def __init__(self, left: int = 1) -> None:
        self.left = left

    def __call__(self, charger: SimulatedCharger) -> None:
        install = charger.profiles.install

        def picky(profile: ChargingProfile, now: float) -> ChargingProfile:
            if self.left > 0:
                self.left -= 1
                raise ProfileError("rejected by the test")
            return install(profile, now)

        charger.profiles.install = picky  # type: ignore[method-assign]
