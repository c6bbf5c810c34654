"""A fleet of simulated OCPP chargers in one process: connect them gently, give them cars, watch, summarise.

For integration tests, for the benchmark (thousands of chargers: one asyncio loop, connections opened at
`connect_rate` per second rather than all in one millisecond, heartbeats and meter values at random phases)
and for `make up`'s small default fleet. Each charger gets a driver task: connect (retrying while the CSMS is
not there yet, giving up on a refusal), plug a car from the mix, and with `cycle` a new car some seconds after
the last one left.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from ocpp.exceptions import OCPPError  # type: ignore[import-untyped, unused-ignore]

from load_tester.fleet.car import CAR_MIX, DEFAULT_FOLLOW_DELAY_S, ENERGY_NEED_RANGE_WH, Car, CarModel, random_car
from load_tester.fleet.charger import (
    ChargerBusy,
    ChargerError,
    ChargerOffline,
    ChargerRefused,
    ChargerState,
    SimulatedCharger,
)
from load_tester.fleet.session import BootRefused, OcppVersion, StartRefused

DEFAULT_URL = "ws://127.0.0.1:9000/ocpp"
PROTOCOLS = ("mixed", "1.6", "2.0.1")
CONNECT_RETRY_MAX_S = 30.0
OFFLINE_POLL_S = 1.0  # how often a driver looks whether its charger is back, to plug the next car
CLOSE_CONCURRENCY = 1000  # chargers stopping at once at the end (each sends its StopTransaction, then closes)
FILE_DESCRIPTOR_MARGIN = 64  # the process's own files, besides one socket per charger


@dataclass
class FleetConfig:
    url: str = DEFAULT_URL  # the CSMS's base: each charger connects to <url>/<id>
    chargers: int = 10
    prefix: str = "fleet-cp"  # ids <prefix>1 .. <prefix>N
    ids: Sequence[str] | None = None  # or exactly these ids
    protocol: str = "mixed"  # "1.6", "2.0.1", or "mixed": alternating, 1.6 first
    password: str | None = None  # HTTP Basic password of every charger (username: its id)
    passwords: dict[str, str] = field(default_factory=dict)  # or per charger
    time_scale: float = 1.0
    meter_interval_s: float = 1.0
    duration_s: float | None = 60.0  # None: until stopped
    cycle: bool = False
    cycle_pause_s: float = 10.0  # with cycle, the next car comes after uniform(pause/2, pause) seconds
    seed: int = 1
    connect_rate: float = 200.0  # connections opened per second
    plug: bool = True  # a car at every charger once it is connected
    car_mix: tuple[CarModel, ...] = CAR_MIX
    energy_range_wh: tuple[float, float] = ENERGY_NEED_RANGE_WH
    follow_delay_s: float = DEFAULT_FOLLOW_DELAY_S
    max_current_a: float = 32.0
    phases: int = 3
    validate_messages: bool = True
    auto_reconnect: bool = True
    progress_interval_s: float | None = 5.0  # None: no progress lines
    sample_limit: int = 60  # samples (time, limit, draw) kept per charger, for the record
    id_tag_prefix: str = "TAG-"

    def charger_ids(self) -> list[str]:
        return list(self.ids) if self.ids is not None else [f"{self.prefix}{n}" for n in range(1, self.chargers + 1)]

    def protocol_of(self, index: int) -> OcppVersion:
        if self.protocol == "mixed":
            return OcppVersion.V16 if index % 2 == 0 else OcppVersion.V201
        return OcppVersion.parse(self.protocol)


@dataclass
class FleetResult:
    """What the fleet did; `as_json()` is the --record file."""

    chargers: int
    duration_s: float
    ever_connected: int
    online_at_end: int
    refused: dict[str, str]  # charger id: why
    never_connected: list[str]
    transactions: int
    energy_wh: float
    profiles_received: int
    profiles_rejected: int
    errors: int
    messages_sent: int
    per_charger: list[dict[str, Any]]

    @property
    def ok(self) -> bool:
        """Every charger got in, and none was refused."""
        return not self.refused and not self.never_connected and self.chargers > 0

    def as_json(self) -> dict[str, Any]:
        return {
            "chargers": self.chargers,
            "duration_s": round(self.duration_s, 3),
            "ever_connected": self.ever_connected,
            "online_at_end": self.online_at_end,
            "refused": self.refused,
            "never_connected": self.never_connected,
            "transactions": self.transactions,
            "energy_kwh": round(self.energy_wh / 1000, 3),
            "profiles_received": self.profiles_received,
            "profiles_rejected": self.profiles_rejected,
            "errors": self.errors,
            "messages_sent": self.messages_sent,
            "per_charger": self.per_charger,
        }


def raise_open_file_limit(sockets: int) -> int:
    """Let the process hold `sockets` connections (soft RLIMIT_NOFILE up to the hard one); the limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = sockets + FILE_DESCRIPTOR_MARGIN
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return soft


class Fleet:
    """`async with Fleet(config) as fleet:` starts the chargers' drivers (connections staggered), and
    `await fleet.run()` waits `config.duration_s` printing progress; leaving the block stops every charger
    (ending its transaction) and `fleet.result` says what happened."""

    def __init__(self, config: FleetConfig, *, progress: TextIO | None = sys.stderr) -> None:
        self.config = config
        self.progress = progress if config.progress_interval_s else None
        self.chargers: list[SimulatedCharger] = []
        self.result: FleetResult | None = None
        self._drivers: list[asyncio.Task[None]] = []
        self._never: set[str] = set()
        self._started_at = 0.0
        self._stopping = asyncio.Event()

    async def __aenter__(self) -> Fleet:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    # --- life ----------------------------------------------------------------------------------------------
    async def start(self) -> None:
        config = self.config
        ids = config.charger_ids()
        raise_open_file_limit(len(ids))
        self._started_at = time.monotonic()
        for index, charger_id in enumerate(ids):
            rng = random.Random(f"{config.seed}:{charger_id}")  # the same cars for the same seed, in any order
            charger = SimulatedCharger(
                charger_id,
                config.protocol_of(index),
                password=config.passwords.get(charger_id, config.password),
                max_current_a=config.max_current_a,
                phases=config.phases,
                meter_interval_s=config.meter_interval_s,
                time_scale=config.time_scale,
                car_factory=functools.partial(self._car, rng),
                validate_messages=config.validate_messages,
                auto_reconnect=config.auto_reconnect,
                sample_limit=config.sample_limit,
                rng=rng,
            )
            self.chargers.append(charger)
            self._never.add(charger_id)
            delay = index / config.connect_rate if config.connect_rate > 0 else 0.0
            self._drivers.append(asyncio.create_task(self._drive(charger, delay, rng), name=f"drive {charger_id}"))

    def _car(self, rng: random.Random) -> Car:
        return random_car(
            rng,
            mix=self.config.car_mix,
            energy_range_wh=self.config.energy_range_wh,
            follow_delay_s=self.config.follow_delay_s,
        )

    async def _drive(self, charger: SimulatedCharger, delay: float, rng: random.Random) -> None:
        config = self.config
        await asyncio.sleep(delay)
        retry_s = 1.0
        while True:
            try:
                await charger.connect(config.url)
                break
            except ChargerRefused:
                return  # the charger says why (charger.refusal); retrying would not help
            except (ChargerError, BootRefused, OCPPError, TimeoutError) as error:
                charger.record.error(f"connect: {error}")
                if not config.auto_reconnect:
                    return
                await asyncio.sleep(retry_s * rng.uniform(0.5, 1.0))
                retry_s = min(retry_s * 2, CONNECT_RETRY_MAX_S)
        self._never.discard(charger.id)
        if not config.plug:
            return
        while True:
            if not charger.online:
                await asyncio.sleep(OFFLINE_POLL_S)
                continue
            try:
                await charger.plug(id_tag=f"{config.id_tag_prefix}{charger.id}")
            except ChargerBusy:
                pass  # a remote start was quicker: that car will do
            except (ChargerOffline, StartRefused, OCPPError, TimeoutError) as error:
                charger.record.error(f"plug: {error}")
                await asyncio.sleep(OFFLINE_POLL_S)
                continue
            await charger.wait_idle()
            if not config.cycle:
                return
            await asyncio.sleep(rng.uniform(config.cycle_pause_s / 2, config.cycle_pause_s))

    async def run(self, duration_s: float | None = None) -> None:
        """Wait `duration_s` (the config's if None; forever if that is None too, until stop_soon()),
        printing a progress line every `progress_interval_s`."""
        duration = self.config.duration_s if duration_s is None else duration_s
        deadline = None if duration is None or duration <= 0 else time.monotonic() + duration
        every = self.config.progress_interval_s or 3600.0
        while not self._stopping.is_set():
            wait = every if deadline is None else min(every, deadline - time.monotonic())
            if wait <= 0:
                break
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._stopping.wait()
            self.print_progress()

    def stop_soon(self) -> None:
        """Make run() return (from a signal handler, say)."""
        self._stopping.set()

    async def stop(self) -> FleetResult:
        """Stop the drivers, end every transaction and close every connection; the result."""
        if self.result is not None:
            return self.result
        online_at_end = sum(charger.online for charger in self.chargers)
        for driver in self._drivers:
            driver.cancel()
        for driver in self._drivers:
            with contextlib.suppress(asyncio.CancelledError):
                await driver
        gate = asyncio.Semaphore(CLOSE_CONCURRENCY)

        async def close(charger: SimulatedCharger) -> None:
            async with gate:
                await charger.close(stop_transaction=True)

        await asyncio.gather(*(close(charger) for charger in self.chargers))
        self.result = self._summarise(online_at_end)
        return self.result

    # --- watching ------------------------------------------------------------------------------------------
    def counts(self) -> dict[str, float]:
        chargers = self.chargers
        return {
            "connected": sum(charger.online for charger in chargers),
            "charging": sum(charger.charging for charger in chargers),
            "draw_kw": sum(charger.draw_w for charger in chargers) / 1000,
            "profiles": sum(len(charger.record.profiles) for charger in chargers),
            "refused": sum(charger.state is ChargerState.REFUSED for charger in chargers),
            "errors": sum(charger.record.error_count for charger in chargers),
        }

    def print_progress(self) -> None:
        if self.progress is None:
            return
        counts = self.counts()
        elapsed = time.monotonic() - self._started_at
        line = (
            f"[fleet {elapsed:7.1f} s] connected {counts['connected']:.0f}/{len(self.chargers)}  "
            f"charging {counts['charging']:.0f}  draw {counts['draw_kw']:.1f} kW  "
            f"profiles {counts['profiles']:.0f}  refused {counts['refused']:.0f}  errors {counts['errors']:.0f}"
        )
        print(line, file=self.progress, flush=True)

    def _summarise(self, online_at_end: int) -> FleetResult:
        per_charger = []
        for charger in self.chargers:
            record = charger.record
            entry: dict[str, Any] = {
                "id": charger.id,
                "protocol": charger.protocol.version,
                "state": charger.state.value,
                "meter_wh": round(charger.meter_wh, 1),
                **record.as_json(),
            }
            if charger.refusal is not None:
                entry["refused"] = str(charger.refusal)
            per_charger.append(entry)
        return FleetResult(
            chargers=len(self.chargers),
            duration_s=time.monotonic() - self._started_at,
            ever_connected=sum(charger.record.connects > 0 for charger in self.chargers),
            online_at_end=online_at_end,
            refused={c.id: str(c.refusal) for c in self.chargers if c.refusal is not None},
            never_connected=sorted(self._never),
            transactions=sum(len(charger.record.transactions) for charger in self.chargers),
            energy_wh=sum(charger.meter_wh for charger in self.chargers),
            profiles_received=sum(len(charger.record.profiles) for charger in self.chargers),
            profiles_rejected=sum(not event.accepted for charger in self.chargers for event in charger.record.profiles),
            errors=sum(charger.record.error_count for charger in self.chargers),
            messages_sent=sum(charger.record.messages_sent for charger in self.chargers),
            per_charger=per_charger,
        )


async def run_fleet(config: FleetConfig, *, progress: TextIO | None = sys.stderr) -> FleetResult:
    """Start the fleet, run it for `config.duration_s`, stop it; the result."""
    fleet = Fleet(config, progress=progress)
    async with fleet:
        await fleet.run()
    assert fleet.result is not None
    return fleet.result
