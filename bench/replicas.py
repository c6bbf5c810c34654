"""What a second balancer replica costs and keeps: `python -m bench.replicas`.

One gateway over one balancer, then the same over two (BALANCER_URL=a,b), against the same 3
substations (one process simulates them, as in `make bench`), driven by wrk at 32 connections. Each
round measures both, one right after the other, so their ratio is not the machine's noise. Per setup:
requests per second, p99, the spread of active sessions across the equal substations when the load
stops, and the second choices per placed session (a substation declined with 412 because the other
replica had placed sessions there since this one last heard).

On a 2-core machine a second balancer adds processes, not cores: the throughput ratio says what the
agreement between replicas costs, not what a second machine would add.

    .venv/bin/python -m bench.replicas [--duration 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import urllib.request
from pathlib import Path

from bench.grid import Substations, balancer_env, bench_stack, settled_sessions, wait_all_healthy, wait_idle
from bench.wrk import warm_up, wrk

SUBSTATIONS = 3


def counter_total(exposition: str, name: str) -> float:
    """The sum of every labelled sample of one counter in a Prometheus text exposition."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in exposition.splitlines() if line.startswith(name + "{"))


def scrape(url: str) -> str:
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        return response.read().decode()


def measure(replicas: int, urls: list[str], log_dir: Path, duration: float) -> dict:
    stack = bench_stack(log_dir)
    try:
        balancers = [
            stack.service(f"balancer{n}", "balancer", balancer_env(urls, "least_utilization"))
            for n in range(1, replicas + 1)
        ]
        for balancer in balancers:
            wait_all_healthy(balancer.url, len(urls))
        gateway = stack.service("gateway", "gateway", {"BALANCER_URL": ",".join(b.url for b in balancers)})
        url = f"{gateway.url}/initiate_energy_transfer"
        wait_idle(urls, timeout=duration + 60)
        warm_up(url)
        wait_idle(urls, timeout=duration + 60)

        def second_choices() -> float:
            return sum(counter_total(scrape(b.url), "balancer_outdated_choices_total") for b in balancers)

        before = second_choices()
        figures = wrk(url, duration)
        placed = settled_sessions(urls)
        return {
            **figures,
            "spread_sessions": max(placed) - min(placed),
            "second_choices_per_session": round((second_choices() - before) / max(1, sum(placed)), 3),
        }
    finally:
        stack.stop_all(timeout_s=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of load per run (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of both setups (default 3)")
    args = parser.parse_args(argv)

    log_dir = Path(tempfile.mkdtemp(prefix="bench-replicas-"))
    # Sessions outlast a run by 4 s, so the spread is read on every session of the run.
    substations = Substations(SUBSTATIONS, log_dir, session_s=args.duration + 4, process_each=False)
    runs: dict[int, list[dict]] = {1: [], 2: []}
    try:
        for round_number in range(1, args.rounds + 1):
            print(f"round {round_number}/{args.rounds}", flush=True)
            for replicas in (1, 2) if round_number % 2 else (2, 1):  # alternate who goes first
                run = measure(replicas, substations.urls, log_dir, args.duration)
                runs[replicas].append(run)
                print(
                    f"  {replicas} balancer(s)  {run['rps']:7.1f} req/s  p99 {run['p99_ms']:6.1f} ms  "
                    f"spread {run['spread_sessions']}  second choices/session {run['second_choices_per_session']}",
                    flush=True,
                )
    finally:
        substations.stop()

    ratios = [two["rps"] / one["rps"] for one, two in zip(runs[1], runs[2], strict=True)]
    print(f"\nmedians of {args.rounds} rounds of {args.duration:g} s at 32 connections, {SUBSTATIONS} substations")
    print(f"{'balancers':>9} {'req/s':>8} {'p99 ms':>7} {'worst spread':>12} {'second choices/session':>22}")
    for replicas, samples in runs.items():
        print(
            f"{replicas:>9} {statistics.median(s['rps'] for s in samples):>8.1f} "
            f"{statistics.median(s['p99_ms'] for s in samples):>7.1f} "
            f"{max(s['spread_sessions'] for s in samples):>12} "
            f"{statistics.median(s['second_choices_per_session'] for s in samples):>22.3f}"
        )
    print(f"throughput, 2 balancers / 1 (within each round): {statistics.median(ratios):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
