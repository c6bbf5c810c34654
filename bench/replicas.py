"""What a second balancer replica costs and keeps: `python -m bench.replicas`.

One gateway over one balancer, then the same over two (BALANCER_URL=a,b), against the same 3
substations (one process simulates them, as in `make bench`), driven by wrk at 32 connections. Each
round measures both, one right after the other, so their ratio is not the machine's noise. Per setup:
requests per second, p99, the spread of active sessions across the equal substations when the load
stops, and the second choices per placed session (a substation declined with 412 because the other
replica had placed sessions there since this one last heard).

On a 2-core machine a second balancer adds processes, not cores: the throughput ratio says what the
agreement between replicas costs, not what a second machine would add.

    .venv/bin/python -m bench.replicas [--duration 5] [--rounds 3]     # writes bench/results/replicas.json
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import urllib.request
from pathlib import Path

from bench.grid import Substations, balancer_env, bench_stack, settled_sessions, wait_all_healthy, wait_idle
from bench.report import Table, text
from bench.stamp import write_results
from bench.wrk import CONNECTIONS, warm_up, wrk

SUBSTATIONS = 3
STRATEGY = "least_utilization"


def counter_total(exposition: str, name: str) -> float:
    """The sum of every labelled sample of one counter in a Prometheus text exposition."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in exposition.splitlines() if line.startswith(name + "{"))


def scrape(url: str) -> str:
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        return response.read().decode()


def measure(replicas: int, substations: Substations, log_dir: Path, duration: float) -> dict:
    urls = substations.urls
    stack = bench_stack(log_dir)
    try:
        balancers = [
            stack.service(f"balancer{n}", "balancer", balancer_env(urls, STRATEGY)) for n in range(1, replicas + 1)
        ]
        for balancer in balancers:
            wait_all_healthy(balancer.url, len(urls))
        gateway = stack.service("gateway", "gateway", {"BALANCER_URL": ",".join(b.url for b in balancers)})
        url = f"{gateway.url}/initiate_energy_transfer"
        wait_idle(urls, timeout=duration + 60)
        warm_up(url, substations.energy_kwh)
        wait_idle(urls, timeout=duration + 60)

        def second_choices() -> float:
            return sum(counter_total(scrape(b.url), "balancer_outdated_choices_total") for b in balancers)

        before = second_choices()
        figures = wrk(url, duration, substations.energy_kwh)
        placed = settled_sessions(urls)
        return {
            **figures,
            "spread_sessions": max(placed) - min(placed),
            "second_choices_per_session": round((second_choices() - before) / max(1, sum(placed)), 3),
        }
    finally:
        stack.stop_all(timeout_s=10)


def summarise_replicas(runs: dict[int, list[dict]]) -> dict:
    """Medians per setup, the worst spread, and the throughput ratio taken within each round."""
    setups = {
        str(replicas): {
            "rps": round(statistics.median(s["rps"] for s in samples), 1),
            "p99_ms": round(statistics.median(s["p99_ms"] for s in samples), 2),
            "errors": sum(s["errors"] for s in samples),
            "worst_spread_sessions": max(s["spread_sessions"] for s in samples),
            "second_choices_per_session": round(statistics.median(s["second_choices_per_session"] for s in samples), 3),
            "rps_rounds": [s["rps"] for s in samples],
        }
        for replicas, samples in runs.items()
    }
    ratios = [two["rps"] / one["rps"] for one, two in zip(runs[1], runs[2], strict=True)]
    return {"setups": setups, "rps_two_over_one": round(statistics.median(ratios), 3)}


def replicas_table(figures: dict) -> Table:
    rows = [
        [replicas, f"{s['rps']:.0f}", f"{s['p99_ms']:.0f}", str(s["errors"]), str(s["worst_spread_sessions"]),
         f"{s['second_choices_per_session']:.2f}"]
        for replicas, s in figures["setups"].items()
    ]  # fmt: skip
    rows.append(["2 / 1, within a round", f"{figures['rps_two_over_one']:.2f}", "", "", "", ""])
    return ["balancers", "req/s", "p99 ms", "errors", "worst spread", "second choices per session"], rows


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
                run = measure(replicas, substations, log_dir, args.duration)
                runs[replicas].append(run)
                print(
                    f"  {replicas} balancer(s)  {run['rps']:7.1f} req/s  p99 {run['p99_ms']:6.1f} ms  "
                    f"spread {run['spread_sessions']}  second choices/session {run['second_choices_per_session']}",
                    flush=True,
                )
    finally:
        substations.stop()

    figures = summarise_replicas(runs)
    settings = {"rounds": args.rounds, "duration_s": args.duration, "connections": CONNECTIONS,
                "substations": SUBSTATIONS, "strategy": STRATEGY}  # fmt: skip
    path = write_results("replicas", argv, settings, figures)
    print(f"\nmedians of {args.rounds} rounds of {args.duration:g} s at {CONNECTIONS} connections")
    print(text(replicas_table(figures)))
    print(f"written: {path.relative_to(path.parents[2])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
