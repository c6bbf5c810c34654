"""One measurement each: a floor, the suite over N substations with one strategy, an idle balancer.

Every measurement starts its own balancer and gateway over substations started for the round, so that
each run begins on an empty grid and its spread is its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from bench.grid import QUIET, Substations, balancer_env, bench_stack, pid, settled_sessions, wait_all_healthy, wait_idle
from bench.proc import cpu_seconds
from bench.wrk import warm_up, wrk

STRATEGIES = ("most_power", "least_utilization", "round_robin", "random")
# Strategies that balance by load: their spread must be at most one session on equal substations.
BALANCING = STRATEGIES[:2]
TRIVIAL_CHAIN = "bench.trivial_chain:app_from_env()"


class Floor:
    """A trivial 3-hop Flask chain with the suite's server and client settings, its middle hop forwarding to
    `last_hops` do-nothing processes in turn: what the stack and that many processes cost, without logic.

    It stays up while the suite runs, so that it can be measured right before and right after each of the
    suite's runs: these machines speed up and slow down within minutes, and the mean of the two sides
    cancels a steady drift. Idle, its processes only wake for gunicorn's heartbeats; what that costs beside
    the suite's runs is a handicap for the suite, if anything. Each hop's CPU per request is kept under the
    name of the service it stands in for."""

    def __init__(self, log_dir: Path, last_hops: int) -> None:
        stack = self.stack = bench_stack(log_dir)
        try:
            ends = [stack.app(f"chain-substation{n}", TRIVIAL_CHAIN, QUIET, wait=False) for n in range(last_hops)]
            stack.wait_healthy(timeout_s=180)
            middle = stack.app("chain-balancer", TRIVIAL_CHAIN, {**QUIET, "NEXT_URL": ",".join(e.url for e in ends)})
            first = stack.app("chain-gateway", TRIVIAL_CHAIN, {**QUIET, "NEXT_URL": middle.url})
        except BaseException:
            stack.stop_all(timeout_s=10)
            raise
        self.url = f"{first.url}/hop"
        self.pids = {"gateway": [pid(first)], "balancer": [pid(middle)], "substations": [pid(end) for end in ends]}

    def measure(self, duration: float) -> dict:
        warm_up(self.url)  # as every suite run is, after the same idle time
        return measured_with_cpu(self.pids, lambda: wrk(self.url, duration))

    def stop(self) -> None:
        self.stack.stop_all(timeout_s=10)


def measured_with_cpu(pids: dict[str, list[int]], measure: Callable[[], dict]) -> dict:
    """`measure()`'s figures, and the CPU time each group of processes spent per request meanwhile."""
    before = {part: sum(map(cpu_seconds, group)) for part, group in pids.items()}
    figures = measure()
    cpu_ms = {
        part: round((sum(map(cpu_seconds, group)) - before[part]) / max(1, figures["requests"]) * 1000, 3)
        for part, group in pids.items()
    }
    return {**figures, "cpu_ms_per_request": cpu_ms}


def measure_suite(urls: list[str], substations: Substations, strategy: str, log_dir: Path, duration: float) -> dict:
    """One strategy over the given substations, from an empty grid: throughput, latency, the spread of
    sessions left, and each part's CPU per request."""
    front = bench_stack(log_dir)
    try:
        balancer = front.service("balancer", "balancer", balancer_env(urls, strategy))
        wait_all_healthy(balancer.url, len(urls))
        gateway = front.service("gateway", "gateway", {"BALANCER_URL": balancer.url})
        url = f"{gateway.url}/initiate_energy_transfer"
        wait_idle(urls, timeout=duration + 60)
        warm_up(url, substations.energy_kwh)
        pids = {"gateway": [pid(gateway)], "balancer": [pid(balancer)], "substations": substations.pids(len(urls))}
        figures = measured_with_cpu(pids, lambda: wrk(url, duration, substations.energy_kwh))
        placed = settled_sessions(urls)
        return {**figures, "spread_sessions": max(placed) - min(placed)}
    finally:
        front.stop_all(timeout_s=10)


def measure_polling(urls: list[str], log_dir: Path, seconds: float = 10.0) -> float:
    """Share of one core an idle balancer spends polling every substation once a second."""
    stack = bench_stack(log_dir)
    try:
        balancer = stack.service("balancer-idle", "balancer", balancer_env(urls, STRATEGIES[0]))
        wait_all_healthy(balancer.url, len(urls))
        start = cpu_seconds(pid(balancer))
        time.sleep(seconds)
        return round((cpu_seconds(pid(balancer)) - start) / seconds, 4)
    finally:
        stack.stop_all(timeout_s=10)
