"""How long the OCPP service takes to tell every charger a new limit, with 1 000 and 5 000 chargers connected.

    python -m bench.ocpp [--sizes 1000 5000] [--steps 4] [--simulators 3] [--meter-interval 20]
                         [--py-spy SECONDS]

One CSMS process (`python -m ocpp_service`, as compose runs it) and one substation hold N chargers; the
simulated fleet (load_tester/fleet, schema checks off) runs in `--simulators` processes of its own, every
charger with a 22 kW car plugged in and meter values every `--meter-interval` seconds (their phases spread
by the staggered connections). The substation's capacity is the chargers' maxima plus STEP_SLACK_KW, so at
rest every charger is told 32 A. A step changes every charger's limit at once: a session of
STEP_KW without a charger is admitted at the substation over HTTP (every charging session gets its
minimum, so the chargers' fair shares all drop by (STEP_KW - STEP_SLACK_KW) / N), or it is stopped again
(they all go back up); steps alternate down and up.

Per step, per charger: wall seconds from just before the substation was asked to change (the request's
send time: an upper bound of the delay) to when the charger accepted the TxProfile carrying its new limit
(the simulator's ProfileEvent.at, the same clock). A size's p50 / p99 / max pool every charger of every
step; the per-step p99s are shown beside. CPU per profile: the CSMS's user + system CPU (/proc) from the
step to its last delivery over the SetChargingProfile calls it made meanwhile (renewals included); the
idle CPU is its share of a core in the seconds before the step (meter values, heartbeats, renewals of N
chargers). The machine column: every process's CPU (CSMS, substation, simulators) over the step, over
the two cores' time: where it nears 1, the machine, not the CSMS alone, sets the pace.

`--py-spy SECONDS` samples the CSMS with py-spy through the steps of the largest size and keeps the share of
its samples by library (the frame running) in the results. Written to bench/results/ocpp.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import multiprocessing
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench.proc import cpu_seconds
from bench.report import Table, targets_table
from bench.report import text as render
from bench.stamp import write_results

SUBSTATION = "s"
PHASES, MAX_CURRENT_A, VOLTAGE_V = 3, 32.0, 230.0
CHARGER_MAX_KW = round(PHASES * MAX_CURRENT_A * VOLTAGE_V / 1000, 3)  # what the CSMS asks for each: 22.08 kW
STEP_KW = 1000.0  # the session that makes a step: the most one admission may ask for (MAX_POWER_KW)
STEP_SLACK_KW = 100.0  # capacity beyond the chargers' maxima: a few late meters do not move anyone's share
TARGET_P99_S = 2.0
TARGET_CONNECTED = 5000
DELIVERY_TIMEOUT_S = 60.0
SETTLE_MARGIN_S = 120.0  # beyond the time the connections take: then the chargers are reported as they are
IDLE_WINDOW_S = 5.0
POLL_S = 0.25

# --- pure helpers ---------------------------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest rank: the smallest value with at least pct % of the values at or below it."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[max(0, min(len(ordered) - 1, -(-len(ordered) * pct // 100) - 1))]  # type: ignore[call-overload]


def limit_a(kw: float) -> float:
    """What the CSMS tells a 3 x 32 A charger for `kw` (ocpp_service.limits.limit_a: 0.1 A steps, rounded down,
    0 below 6 A)."""
    from ocpp_service.limits import limit_a as csms_limit
    from ocpp_service.registry import Charger

    return csms_limit(kw, Charger("x", SUBSTATION, PHASES, MAX_CURRENT_A), VOLTAGE_V)


def reserve_steps(chargers: int, connect_rate: float, meter_interval_s: float) -> int:
    """Sessions of STEP_KW that hold, once every charger has settled, the headroom the connections needed: a
    charger whose meter has not spoken yet may draw its default (all of its 22 kW here) beside its share, so the
    substation keeps that apart (docs/ocpp.md). Without room for it while chargers connect, every admission
    would move every share and the CSMS would re-send every limit at each of them."""
    silent = min(chargers, connect_rate * meter_interval_s * 1.5)
    return math.ceil(silent * CHARGER_MAX_KW / STEP_KW)


def capacity_kw(chargers: int, reserve: int) -> float:
    """Every charger's maximum, a little slack, and the reserve."""
    return round(chargers * CHARGER_MAX_KW + STEP_SLACK_KW + reserve * STEP_KW, 3)


def share_kw(chargers: int, steps_taken: int) -> float:
    """Each charger's fair share with the reserve and `steps_taken` more sessions of STEP_KW admitted."""
    return min(CHARGER_MAX_KW, (chargers * CHARGER_MAX_KW + STEP_SLACK_KW - steps_taken * STEP_KW) / chargers)


def summarise_size(chargers: int, connected: int, steps: list[dict]) -> dict:
    """A size's figures from its steps: every charger of every step pooled for p50 / p99 / max, each step's own
    p99 beside, chargers that never got their limit counted, CPU per profile summed over the steps."""
    pooled = [latency for step in steps for latency in step["latencies_s"]]
    missing = sum(step["chargers"] - len(step["latencies_s"]) for step in steps)
    profiles = sum(step["profiles_sent"] for step in steps)
    cpu = sum(step["csms_cpu_s"] for step in steps)
    simulators_cpu = sum(step["simulators_cpu_s"] for step in steps)
    return {
        "chargers": chargers,
        "connected": connected,
        "steps": len(steps),
        "deliveries": len(pooled),
        "missing": missing,
        "p50_s": round(percentile(pooled, 50), 3) if pooled else None,
        "p99_s": round(percentile(pooled, 99), 3) if pooled else None,
        "max_s": round(max(pooled), 3) if pooled else None,
        "step_p99_s": [round(percentile(s["latencies_s"], 99), 3) if s["latencies_s"] else None for s in steps],
        "csms_cpu_ms_per_profile": round(1000 * cpu / profiles, 3) if profiles else None,
        "simulators_cpu_ms_per_profile": round(1000 * simulators_cpu / profiles, 3) if profiles else None,
        "csms_idle_core_share": round(statistics.median(step["csms_idle_share"] for step in steps), 3),
        "machine_busy_share": round(statistics.median(step["machine_share"] for step in steps), 3),
    }


def targets(sizes: dict[str, dict]) -> list[dict]:
    found = []
    largest = sizes.get(str(TARGET_CONNECTED))
    if largest is not None:
        connected = largest["connected"]
        found.append({"name": "chargers connected at once", "target": f">= {TARGET_CONNECTED}",
                      "measured": connected, "met": connected >= TARGET_CONNECTED})  # fmt: skip
        p99 = largest["p99_s"]
        met = p99 is not None and p99 <= TARGET_P99_S and largest["missing"] == 0
        found.append({"name": f"p99 of a full reallocation's delivery, {TARGET_CONNECTED:,} chargers (s)",
                      "target": f"<= {TARGET_P99_S:g}", "measured": p99 if p99 is not None else float("inf"),
                      "rounds": [p for p in largest["step_p99_s"] if p is not None], "met": met})  # fmt: skip
    return found


def ocpp_table(figures: dict) -> Table:
    header = ["chargers", "connected", "charging at their limit", "steps", "told", "not told", "p50 s", "p99 s",
              "max s", "step p99s s", "CSMS CPU ms/profile", "simulators CPU ms/profile", "CSMS idle (core)",
              "machine busy"]  # fmt: skip
    rows = []
    for size, row in figures["sizes"].items():

        def cell(value: float | None, form: str = ".2f") -> str:
            return "-" if value is None else format(value, form)

        spread = [p for p in row["step_p99_s"] if p is not None]
        rows.append([
            f"{int(size):,}", f"{row['connected']:,}",
            f"{row['told_first_limit']:,}" if not row.get("settled", True) else f"{int(size):,}",
            str(row["steps"]), f"{row['deliveries']:,}", f"{row['missing']:,}",
            cell(row["p50_s"]), cell(row["p99_s"]), cell(row["max_s"]),
            "-" if not spread else f"{min(spread):.2f} to {max(spread):.2f}",
            cell(row["csms_cpu_ms_per_profile"], ".3f"), cell(row.get("simulators_cpu_ms_per_profile"), ".3f"),
            cell(row["csms_idle_core_share"]),
            cell(row["machine_busy_share"]),
        ])  # fmt: skip
    return header, rows


def profile_tables(figures: dict) -> list[Table]:
    spied = figures["py_spy"]
    rows = [[name, f"{share:.1f}"] for name, share in spied["self_percent"]]
    found = [([f"CSMS samples at {spied['chargers']:,} chargers, {spied['during']}, by library", "% of samples"],
              rows)]  # fmt: skip
    if spied.get("top_functions"):
        rows = [[f"`{name}`", f"{share:.1f}"] for name, share in spied["top_functions"]]
        found.append((["CSMS function (its own samples)", "% of samples"], rows))
    simulator = spied.get("simulator")
    if simulator:
        rows = [[name, f"{share:.1f}"] for name, share in simulator["self_percent"]]
        found.append((["one simulator process's samples, by library", "% of samples"], rows))
        rows = [[f"`{name}`", f"{share:.1f}"] for name, share in simulator.get("top_functions", [])]
        found.append((["simulator function (its own samples)", "% of samples"], rows))
    return found


def tables(figures: dict) -> list[Table]:
    found = [ocpp_table(figures), targets_table(figures["targets"])]
    if figures.get("py_spy"):
        found += profile_tables(figures)
    return found


TOP_FUNCTIONS = 12  # functions kept by their own samples
# Where a frame's file lives decides its bucket; the first match wins.
BUCKETS = (
    ("load_tester/fleet/", "the fleet simulator's own code"),
    ("jsonschema/", "jsonschema (the ocpp library's validation)"),
    ("referencing/", "jsonschema (the ocpp library's validation)"),
    ("rpds", "jsonschema (the ocpp library's validation)"),
    ("/ocpp/", "ocpp library (routing, dataclasses)"),
    ("ocpp_service/", "ocpp_service's own code"),
    ("websockets/", "websockets"),
    ("json/", "json"),
    ("httpx/", "httpx (feed, meters)"),
    ("httpcore/", "httpx (feed, meters)"),
    ("msgspec", "msgspec"),
    ("prometheus_client/", "prometheus_client"),
    ("asyncio/", "asyncio (event loop)"),
    ("dataclasses", "dataclasses"),
    ("ssl", "sockets"),
    ("selectors", "asyncio (event loop)"),
)


def bucket_of(frame: str) -> str:
    return next((name for marker, name in BUCKETS if marker in frame), "other (stdlib, interpreter)")


def self_shares(collapsed: str) -> dict:
    """Share of py-spy's samples by the library of the frame that was running, from its collapsed stacks."""
    from bench.profile import parse_collapsed, short

    stacks = parse_collapsed(collapsed)
    total = sum(count for _, count in stacks) or 1
    by_bucket: dict[str, int] = {}
    for frames, count in stacks:
        bucket = bucket_of(frames[-1])
        by_bucket[bucket] = by_bucket.get(bucket, 0) + count
    ordered = sorted(by_bucket.items(), key=lambda item: -item[1])
    by_function: dict[str, int] = {}
    for frames, count in stacks:
        by_function[short(frames[-1])] = by_function.get(short(frames[-1]), 0) + count
    top = sorted(by_function.items(), key=lambda item: -item[1])[:TOP_FUNCTIONS]
    return {
        "samples": total,
        "self_percent": [[name, round(100 * count / total, 1)] for name, count in ordered],
        "top_functions": [[name, round(100 * count / total, 1)] for name, count in top],
    }


def unsettled(chargers: int, counts: dict, timeout_s: float) -> dict:
    """A size whose chargers never all charged at their limit within `timeout_s`: how far they got, no steps."""
    return {"chargers": chargers, "connected": int(counts["connected"]), "charging": int(counts["charging"]),
            "told_first_limit": int(counts["at_limit"]), "settled": False, "settle_timeout_s": round(timeout_s),
            "steps": 0, "deliveries": 0, "missing": chargers, "p50_s": None, "p99_s": None, "max_s": None,
            "step_p99_s": [], "csms_cpu_ms_per_profile": None, "csms_idle_core_share": None,
            "machine_busy_share": None}  # fmt: skip


def spy_on(pid: int, seconds: float, path: Path) -> tuple[subprocess.Popen, Path]:
    """py-spy recording `pid` for `seconds` into `path`, started."""
    from bench.profile import whole_seconds

    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    command = [py_spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "100", "--nonblocking",
               "--duration", whole_seconds(seconds), "--output", str(path)]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), path


def record_profile(pid: int, seconds: float, scratch: Path) -> dict:
    """py-spy's samples of `pid` for `seconds`, by library."""
    process, path = spy_on(pid, seconds, scratch / f"py-spy-{pid}.collapsed")
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=seconds + 60)
    return self_shares(path.read_text()) if path.exists() else {"samples": 0, "self_percent": []}


# --- the simulators (each its own process) ---------------------------------------------------------------


def simulate(conn: Connection, settings: dict[str, Any]) -> None:
    """A process of the fleet: its chargers connect and plug in; it answers the coordinator's questions on
    `conn` until told to stop."""
    with contextlib.suppress(ValueError, OSError):
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    logging.basicConfig(level=logging.ERROR)  # the library's late answers are counted as errors, not printed
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator stops us
    asyncio.run(_simulate(conn, settings))


def _tx_limits_after(charger: Any, since: float) -> list[tuple[float, float]]:
    """(time, limit A) of the TxProfiles the charger accepted at or after `since`."""
    found = []
    for event in reversed(charger.record.profiles):
        if event.at < since:
            break
        if event.purpose == "TxProfile" and event.accepted and event.limits:
            found.append((event.at, event.limits[0]))
    found.reverse()
    return found


def _current_limit(charger: Any) -> float | None:
    for event in reversed(charger.record.profiles):
        if event.purpose == "TxProfile" and event.accepted and event.limits:
            return event.limits[0]
    return None


async def _simulate(conn: Connection, settings: dict[str, Any]) -> None:
    from grid_common.long_lived import freeze_after_full_collections
    from load_tester.fleet import Fleet, FleetConfig
    from load_tester.fleet.car import CAR_MIX

    config = FleetConfig(
        url=settings["url"], ids=settings["ids"], protocol="mixed", meter_interval_s=settings["meter_interval_s"],
        duration_s=None, connect_rate=settings["connect_rate"], seed=settings["seed"],
        car_mix=tuple(model for model in CAR_MIX if model.phases == PHASES and model.max_current_a == MAX_CURRENT_A),
        energy_range_wh=(200_000.0, 200_000.0), validate_messages=False, progress_interval_s=None,
        sample_limit=4,
    )  # fmt: skip
    freeze_after_full_collections()  # as the fleet's own command does
    fleet = Fleet(config, progress=None)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    def answer() -> None:
        kind, argument = conn.recv()
        chargers = fleet.chargers
        if kind == "status":
            counts = fleet.counts()
            at_limit = sum(_current_limit(charger) == argument for charger in chargers)
            conn.send({**counts, "at_limit": at_limit})
        elif kind == "told":  # how many accepted `limit` since `since`
            since, limit = argument
            conn.send(sum(any(a == limit for _, a in _tx_limits_after(c, since)) for c in chargers))
        elif kind == "deliveries":
            since, limit = argument
            latencies, other = [], 0
            for charger in chargers:
                seen = _tx_limits_after(charger, since)
                first = next((at for at, amperes in seen if amperes == limit), None)
                if first is not None:
                    latencies.append(first - since)
                other += sum(amperes != limit for _, amperes in seen)
            conn.send({"latencies_s": latencies, "other_limits": other, "chargers": len(chargers)})
        elif kind == "stop":
            done.set()

    await fleet.start()
    loop.add_reader(conn.fileno(), answer)
    conn.send("started")
    await done.wait()
    loop.remove_reader(conn.fileno())
    result = await fleet.stop()
    conn.send({"errors": result.errors, "refused": len(result.refused), "never": len(result.never_connected)})


class Simulators:
    """The fleet split over processes, each asked the same question at once and their answers summed."""

    def __init__(self, url: str, ids: list[str], processes: int, meter_interval_s: float, connect_rate: float,
                 seed: int) -> None:  # fmt: skip
        context = multiprocessing.get_context("spawn")
        self.links: list[Connection] = []
        self.processes = []
        for index in range(processes):
            parent, child = context.Pipe()
            settings = {"url": url, "ids": ids[index::processes], "meter_interval_s": meter_interval_s,
                        "connect_rate": connect_rate / processes, "seed": seed}  # fmt: skip
            process = context.Process(target=simulate, args=(child, settings), name=f"fleet-{index}", daemon=True)
            process.start()
            self.links.append(parent)
            self.processes.append(process)
        for link in self.links:
            if link.recv() != "started":
                raise RuntimeError("a simulator did not start")

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes if process.pid is not None]

    def ask(self, kind: str, argument: Any = None) -> list[Any]:
        for link in self.links:
            link.send((kind, argument))
        return [link.recv() for link in self.links]

    def status(self, limit: float) -> dict[str, float]:
        total: dict[str, float] = {}
        for answer in self.ask("status", limit):
            for key, value in answer.items():
                total[key] = total.get(key, 0) + value
        return total

    def stop(self, timeout_s: float = 60.0) -> dict[str, int]:
        """End every transaction and close every connection; killed if that takes more than `timeout_s`."""
        total = {"errors": 0, "refused": 0, "never": 0}
        with contextlib.suppress(EOFError, OSError):
            for link in self.links:
                link.send(("stop", None))
            deadline = time.monotonic() + timeout_s
            for link in self.links:
                if not link.poll(max(0.0, deadline - time.monotonic())):
                    break
                answer = link.recv()
                for key in total:
                    total[key] += answer[key]
        self.kill()
        return total

    def kill(self) -> None:
        for process in self.processes:
            process.join(timeout=1)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)


# --- the coordinator ------------------------------------------------------------------------------------


def http(method: str, url: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def profiles_sent(metrics_url: str) -> float:
    """ocpp_profiles_total, every purpose and answer, from the CSMS's /metrics."""
    with urllib.request.urlopen(metrics_url, timeout=10) as response:
        exposition = response.read().decode()
    return sum(float(value) for value in re.findall(r"^ocpp_profiles_total\{[^}]*\} (\S+)$", exposition, re.M))


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def settle(simulators: Simulators, chargers: int, limit: float, started: float, timeout_s: float) -> dict[str, float]:
    """Wait until every charger is connected, charging and has accepted `limit` last; the counts (with
    settled False if that did not happen within `timeout_s`)."""
    deadline = time.monotonic() + timeout_s
    shown = 0.0
    while True:
        counts = simulators.status(limit)
        if counts["at_limit"] >= chargers and counts["charging"] >= chargers:
            return {**counts, "settled": True}
        if time.monotonic() - shown >= 5:
            shown = time.monotonic()
            log(f"  [{time.monotonic() - started:6.1f} s] connected {counts['connected']:.0f}/{chargers}  "
                f"charging {counts['charging']:.0f}  told {limit:g} A {counts['at_limit']:.0f}  "
                f"errors {counts['errors']:.0f}")  # fmt: skip
        if time.monotonic() > deadline:
            log(f"  not settled within {timeout_s:.0f} s: {counts}")
            return {**counts, "settled": False}
        time.sleep(1.0)


def run_size(chargers: int, args: argparse.Namespace, log_dir: Path, spy: bool) -> tuple[dict, dict | None]:
    from tools.stack import Stack

    load_before = os.getloadavg()[0]
    stack = Stack(log_dir / str(chargers))
    (log_dir / str(chargers)).mkdir(parents=True, exist_ok=True)
    simulators: Simulators | None = None
    profile: dict | None = None
    simulator_profile: dict | None = None
    try:
        reserve = reserve_steps(chargers, args.connect_rate, args.meter_interval)
        substation = stack.substation(
            SUBSTATION, capacity_kw(chargers, reserve), TIME_SCALE="1", CHARGER_MAX_POWER_KW=str(STEP_KW),
            METER_STALE_S=str(3 * args.meter_interval),
        )  # fmt: skip
        ocpp = stack.ocpp({SUBSTATION: substation}, CHARGERS_PER_SUBSTATION=str(chargers),
                          FLEET_CHARGERS_PER_SUBSTATION="0")  # fmt: skip
        csms_pid = ocpp.process.pid
        substation_pid = substation.process.pid
        ids = [f"{SUBSTATION}-cp{n}" for n in range(1, chargers + 1)]
        started = time.monotonic()
        log(f"{chargers:,} chargers: {args.simulators} simulator processes connecting at {args.connect_rate:g}/s")
        simulators = Simulators(f"ws://127.0.0.1:{ocpp.port}/ocpp", ids, args.simulators, args.meter_interval,
                                args.connect_rate, args.seed)  # fmt: skip
        levels = [limit_a(share_kw(chargers, 0)), limit_a(share_kw(chargers, 1))]
        if levels[0] == levels[1]:
            raise ValueError(f"a step of {STEP_KW:g} kW changes no limit at {chargers} chargers")
        timeout = chargers / args.connect_rate + SETTLE_MARGIN_S
        counts = settle(simulators, chargers, levels[0], started, timeout)
        connected = int(counts["connected"])
        if not counts["settled"]:
            if spy:
                profile = {"chargers": chargers, "during": "connections (never settled)",
                           **record_profile(csms_pid, min(args.py_spy, 15.0), log_dir)}  # fmt: skip
            summary = unsettled(chargers, counts, timeout)
            summary["load_average_before"] = round(load_before, 2)
            log(f"  simulators stopped: {simulators.stop(timeout_s=20)}")
            return summary, profile
        log(f"  {connected} connected, all told {levels[0]:g} A after {time.monotonic() - started:.0f} s; "
            f"their first meter values, then {reserve} sessions of {STEP_KW:g} kW take the reserve")  # fmt: skip
        time.sleep(args.meter_interval * 1.2)
        for number in range(reserve):
            http("POST", f"{substation.url}/begin_charging", {
                "vehicle_id": f"bench-reserve-{number}", "energy_kwh": 250.0, "max_power_kw": STEP_KW,
                "min_power_kw": STEP_KW})  # fmt: skip
        time.sleep(2)
        settle(simulators, chargers, levels[0], started, SETTLE_MARGIN_S)
        log(f"  settled after {time.monotonic() - started:.0f} s")
        # The CSMS and one simulator process, both through the steps: which of them the machine's time goes to.
        spies = {"csms": csms_pid, "simulator": simulators.pids[0]} if spy else {}
        spying = {name: spy_on(pid, args.py_spy, log_dir / f"{name}.collapsed") for name, pid in spies.items()}
        steps = []
        blocker: str | None = None
        metrics_url = f"{ocpp.url}/metrics"
        everyone = [csms_pid, substation_pid, *simulators.pids]
        for number in range(args.steps):
            down = blocker is None
            limit = levels[1] if down else levels[0]
            idle_cpu, idle_at = cpu_seconds(csms_pid), time.monotonic()
            time.sleep(IDLE_WINDOW_S)
            csms_before, wall_before = cpu_seconds(csms_pid), time.monotonic()
            idle_share = (csms_before - idle_cpu) / (wall_before - idle_at)
            each_before = {pid: cpu_seconds(pid) for pid in everyone}
            sent_before = profiles_sent(metrics_url)
            csms_before = cpu_seconds(csms_pid)
            t0 = time.time()
            if down:
                answer = http("POST", f"{substation.url}/begin_charging", {
                    "vehicle_id": f"bench-step-{number}", "energy_kwh": 250.0, "max_power_kw": STEP_KW,
                    "min_power_kw": STEP_KW})  # fmt: skip
                blocker = answer["session"]["session_id"]
            else:
                http("POST", f"{substation.url}/sessions/{blocker}/stop")
                blocker = None
            asked_s = time.time() - t0
            deadline = time.monotonic() + DELIVERY_TIMEOUT_S
            told, shown = 0, 0.0
            while told < chargers and time.monotonic() < deadline:
                time.sleep(POLL_S)
                told = sum(simulators.ask("told", (t0, limit)))
                if time.monotonic() - shown >= 1 or told >= chargers:
                    shown = time.monotonic()
                    log(f"  step {number + 1}/{args.steps} ({'down' if down else 'up'} to {limit:g} A): "
                        f"{told:,}/{chargers:,} told after {time.time() - t0:5.2f} s")  # fmt: skip
            # The CSMS counts a profile once it has read the charger's answer: a moment after the charger counted it.
            grace = time.monotonic() + 3.0
            while profiles_sent(metrics_url) - sent_before < told and time.monotonic() < grace:
                time.sleep(0.05)
            csms_cpu = cpu_seconds(csms_pid) - csms_before
            wall = time.monotonic() - wall_before
            each_cpu = {pid: cpu_seconds(pid) - before for pid, before in each_before.items()}
            all_cpu = sum(each_cpu.values())
            sent = profiles_sent(metrics_url) - sent_before
            answers = simulators.ask("deliveries", (t0, limit))
            latencies = sorted(latency for answer in answers for latency in answer["latencies_s"])
            step = {
                "direction": "down" if down else "up",
                "limit_a": limit,
                "chargers": chargers,
                "latencies_s": [round(latency, 4) for latency in latencies],
                "other_limits": sum(answer["other_limits"] for answer in answers),
                "asked_s": round(asked_s, 4),
                "profiles_sent": sent,
                "csms_cpu_s": round(csms_cpu, 3),
                "csms_idle_share": round(idle_share, 3),
                "substation_cpu_s": round(each_cpu[substation_pid], 3),
                "simulators_cpu_s": round(sum(each_cpu[pid] for pid in simulators.pids), 3),
                "machine_share": round(all_cpu / (wall * (os.cpu_count() or 1)), 3),
                "wall_s": round(wall, 3),
            }
            steps.append(step)
            p99 = percentile(latencies, 99) if latencies else float("nan")
            log(f"  step {number + 1}: {len(latencies):,} told, p50 {percentile(latencies, 50):.2f} s, p99 "
                f"{p99:.2f} s, {sent:.0f} profiles, CSMS {1000 * csms_cpu / max(sent, 1):.2f} ms CPU each")  # fmt: skip
        for name, (process, path) in spying.items():
            process.wait(timeout=args.py_spy + 60)
            if path.exists():
                shares = self_shares(path.read_text())
                if name == "csms":
                    profile = {"chargers": chargers, "during": "steps", **shares}
                else:
                    simulator_profile = shares
        if profile is not None and simulator_profile is not None:
            profile["simulator"] = simulator_profile
        summary = summarise_size(chargers, connected, steps)
        summary["load_average_before"] = round(load_before, 2)
        summary["reserve_sessions"] = reserve
        summary["step_details"] = [{k: v for k, v in step.items() if k != "latencies_s"} for step in steps]
    except BaseException:
        if simulators is not None:
            simulators.kill()
        raise
    else:
        log(f"  simulators stopped: {simulators.stop()}")
        return summary, profile
    finally:
        stack.kill_all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000], help="chargers (default 1000 5000)")
    parser.add_argument("--steps", type=int, default=4, help="steps per size, alternating down and up (default 4)")
    parser.add_argument("--simulators", type=int, default=3, help="simulator processes (default 3)")
    parser.add_argument("--meter-interval", type=float, default=20.0, help="seconds between meter values (20)")
    parser.add_argument("--connect-rate", type=float, default=20.0, help="connections opened per second (20)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--py-spy", type=float, default=0.0, metavar="SECONDS",
                        help="sample the CSMS with py-spy for this long through the largest size's steps")  # fmt: skip
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in the background
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # the processes are stopped on the way out
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the CSMS and the simulators inherit it
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < max(args.sizes) + 256:
        log(f"warning: open files limited to {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}: raise ulimit -n")
    figures: dict[str, Any] = {"sizes": {}}
    with tempfile.TemporaryDirectory(prefix="bench-ocpp-") as scratch:
        for size in args.sizes:
            spy = bool(args.py_spy) and size == max(args.sizes)
            summary, profile = run_size(size, args, Path(scratch), spy)
            figures["sizes"][str(size)] = summary
            if profile is not None:
                figures["py_spy"] = profile
    figures["targets"] = targets(figures["sizes"])
    print("\n\n".join(render(table) for table in tables(figures)))
    settings = {**vars(args), "step_kw": STEP_KW, "slack_kw": STEP_SLACK_KW, "profile_validity_s": 60.0,
                "feed_wait_s": 10.0}  # fmt: skip
    path = write_results("ocpp", argv, settings, figures)
    print(f"written: {path.relative_to(path.parents[2])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
