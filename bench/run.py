"""`make bench`: throughput, latency and fairness of the suite, against the floor of its own stack.

It starts max(N) substations once and keeps them for the whole run: capacity large enough that nothing
fills, and sessions that last 4 s longer than a run, so that nothing ends during a run and every run
starts on an empty grid. By default one process simulates them all (SUBSTATION_COUNT), each at its own
URL; `--process-per-substation` gives each its own process, as in compose. Then, for each round, it
measures the floor (a trivial 3-hop Flask chain with the same server and client settings) and, for each
strategy and each N in (2, 8, 64), a fresh balancer over the first N substations and a fresh gateway,
driven by wrk (a compiled load generator) at 32 connections. Then the decision microbenchmark and the
CPU cost of an idle balancer polling max(N) substations.

Why rounds: these machines are noisy (the same run a minute apart differs by 20 %), so every figure is
the median of several rounds, and every ratio is taken within a round, between runs made next to each
other, then its median is reported.

    make bench                      # or: .venv/bin/python -m bench.run [--duration 5] [--rounds 5] [--sizes 2 8 64]
    make bench ARGS=--process-per-substation

Figures go to stdout as tables, and to bench/results.json and bench/results.png.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench import decision
from tools.processes import ROOT, ServiceProcess, free_port

STRATEGIES = ("least_utilization", "round_robin", "random")
CONNECTIONS = 32
GUNICORN = ["gunicorn", "--config", "python:grid_common.gunicorn_conf"]
QUIET = {"ACCESS_LOG": "false", "LOG_LEVEL": "warning"}
BENCH_SUBSTATION = {"CAPACITY_KW": "10000000", "BACKGROUND_PEAK_FRACTION": "0", **QUIET}
SESSION_HOURS = 1.0  # bench/post.lua asks for 11 kWh at 11 kW
WARM_UP_S = 1.0
RESULTS = ROOT / "bench" / "results.json"
CHART = ROOT / "bench" / "results.png"


class Stack:
    """Processes started for one measurement, stopped together."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.processes: list[ServiceProcess] = []

    def start(self, name: str, app: str, env: dict[str, str]) -> str:
        port = free_port()
        process = ServiceProcess(
            name,
            [*GUNICORN, app],
            {"BIND": f"127.0.0.1:{port}", **QUIET, **env},
            f"http://127.0.0.1:{port}/healthz",
            log_path=self.log_dir / f"{name}.log",
        )
        self.processes.append(process.start())
        return f"http://127.0.0.1:{port}"

    def wait_healthy(self) -> None:
        for process in self.processes:
            process.wait_healthy(timeout=180)

    def pid(self, index: int) -> int:
        return self.processes[index].process.pid

    def stop(self) -> None:
        for process in self.processes:
            process.signal(15)
        for process in self.processes:
            process.stop(timeout=10)
        self.processes.clear()


def wrk(url: str, duration: float) -> dict:
    command = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{duration:g}s", "--timeout", "5s", "-s", "bench/post.lua", url]
    output = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=duration + 60).stdout
    line = next(line for line in output.splitlines() if line.startswith("BENCH_JSON "))
    stats = json.loads(line.removeprefix("BENCH_JSON "))
    errors = sum(stats[key] for key in ("connect", "read", "write", "status", "timeout"))
    return {
        "rps": round(stats["requests"] / (stats["duration_us"] / 1e6), 1),
        "p50_ms": round(stats["p50_us"] / 1000, 2),
        "p99_ms": round(stats["p99_us"] / 1000, 2),
        "errors": errors,
        "requests": stats["requests"],
    }


def warm_up(url: str) -> None:
    command = ["wrk", "-t1", "-c4", f"-d{WARM_UP_S:g}s", "-s", "bench/post.lua", url]
    subprocess.run(command, cwd=ROOT, capture_output=True, timeout=30)


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def wait_all_healthy(balancer: str, size: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = get_json(f"{balancer}/substations")["substations"]
        if sum(s["healthy"] for s in listed) == size:
            return
        time.sleep(0.2)
    raise TimeoutError(f"the balancer did not see all {size} substations healthy within {timeout:.0f} s")


def active_sessions(urls: list[str]) -> list[int]:
    return [get_json(f"{url}/load")["active_sessions"] for url in urls]


def settled_sessions(urls: list[str]) -> list[int]:
    """Active sessions per substation once the requests still in flight when wrk stopped have landed."""
    previous = None
    for _ in range(50):
        current = active_sessions(urls)
        if current == previous:
            return current
        previous = current
        time.sleep(0.2)
    return current


def wait_idle(urls: list[str], timeout: float) -> None:
    """Every session of the previous run has ended: each run starts on an empty grid."""
    deadline = time.monotonic() + timeout
    while any(active_sessions(urls)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"sessions of the previous run did not end within {timeout:.0f} s")
        time.sleep(0.5)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process and its children (gunicorn master and its worker)."""
    total = 0.0
    for process in [pid, *children(pid)]:
        fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


class Substations:
    """The bench's substations: simulated in one process (the default), or one process each."""

    def __init__(self, size: int, log_dir: Path, session_s: float, *, process_each: bool) -> None:
        self.stack = Stack(log_dir)
        self.process_each = process_each
        env = {**BENCH_SUBSTATION, "TIME_SCALE": f"{SESSION_HOURS * 3600 / session_s:g}"}
        app = "substation_service.wsgi:app"
        if process_each:
            self.urls = [
                self.stack.start(f"substation{n}", app, {**env, "SUBSTATION_NAME": f"s{n}"}) for n in range(1, size + 1)
            ]
        else:
            host = self.stack.start("substations", app, {**env, "SUBSTATION_NAME": "s", "SUBSTATION_COUNT": str(size)})
            self.urls = [f"{host}/s{n}" for n in range(1, size + 1)]
        try:
            self.stack.wait_healthy()
        except Exception:
            self.stack.stop()
            raise

    def pids(self, size: int) -> list[int]:
        """The processes that serve the first `size` substations."""
        return [self.stack.pid(i) for i in range(size)] if self.process_each else [self.stack.pid(0)]

    def stop(self) -> None:
        self.stack.stop()


def measure_floor(log_dir: Path, duration: float) -> dict:
    stack = Stack(log_dir)
    try:
        app = "bench.trivial_chain:app_from_env()"
        last = stack.start("chain-substation", app, {})
        middle = stack.start("chain-balancer", app, {"NEXT_URL": last})
        first = stack.start("chain-gateway", app, {"NEXT_URL": middle})
        stack.wait_healthy()
        warm_up(f"{first}/hop")
        return wrk(f"{first}/hop", duration)
    finally:
        stack.stop()


def balancer_env(urls: list[str], strategy: str) -> dict[str, str]:
    listing = ",".join(f"s{n}={url}" for n, url in enumerate(urls, start=1))
    return {"SUBSTATIONS": listing, "STRATEGY": strategy}


def measure_suite(urls: list[str], substations: Substations, strategy: str, log_dir: Path, duration: float) -> dict:
    """One strategy over the given substations, from an empty grid, so its spread is its own."""
    front = Stack(log_dir)
    try:
        balancer = front.start("balancer", "load_balancer.wsgi:app", balancer_env(urls, strategy))
        front.wait_healthy()
        wait_all_healthy(balancer, len(urls))
        gateway = front.start("gateway", "charge_request_service.wsgi:app", {"BALANCER_URL": balancer})
        front.wait_healthy()
        url = f"{gateway}/initiate_energy_transfer"
        wait_idle(urls, timeout=duration + 60)
        warm_up(url)
        pids = {
            "gateway": [front.pid(1)],
            "balancer": [front.pid(0)],
            "substations": substations.pids(len(urls)),
        }
        cpu_before = {part: sum(map(cpu_seconds, group)) for part, group in pids.items()}
        figures = wrk(url, duration)
        cpu_ms = {
            part: round((sum(map(cpu_seconds, group)) - cpu_before[part]) / max(1, figures["requests"]) * 1000, 3)
            for part, group in pids.items()
        }
        placed = settled_sessions(urls)
        return {**figures, "spread_sessions": max(placed) - min(placed), "cpu_ms_per_request": cpu_ms}
    finally:
        front.stop()


def measure_polling(urls: list[str], log_dir: Path, seconds: float = 10.0) -> float:
    """Share of one core an idle balancer spends polling every substation once a second."""
    stack = Stack(log_dir)
    try:
        balancer = stack.start("balancer-idle", "load_balancer.wsgi:app", balancer_env(urls, STRATEGIES[0]))
        stack.wait_healthy()
        wait_all_healthy(balancer, len(urls))
        start = cpu_seconds(stack.pid(0))
        time.sleep(seconds)
        return round((cpu_seconds(stack.pid(0)) - start) / seconds, 4)
    finally:
        stack.stop()


def summarise(rounds: list[dict], sizes: list[int]) -> dict:
    """Medians over rounds; ratios are taken within each round, then their median."""
    runs = []
    for size in sizes:
        for strategy in STRATEGIES:
            samples = [r["suite"][(strategy, size)] for r in rounds]
            runs.append(
                {
                    "strategy": strategy,
                    "substations": size,
                    "rps": round(statistics.median(s["rps"] for s in samples), 1),
                    "p50_ms": round(statistics.median(s["p50_ms"] for s in samples), 2),
                    "p99_ms": round(statistics.median(s["p99_ms"] for s in samples), 2),
                    "errors": sum(s["errors"] for s in samples),
                    # The worst round, not a typical one: fairness must hold every time.
                    "spread_sessions": max(s["spread_sessions"] for s in samples),
                    "cpu_ms_per_request": {
                        part: round(statistics.median(s["cpu_ms_per_request"][part] for s in samples), 3)
                        for part in samples[0]["cpu_ms_per_request"]
                    },
                    "rps_rounds": [s["rps"] for s in samples],
                }
            )
    smallest, largest = min(sizes), max(sizes)
    reference = (STRATEGIES[0], smallest)
    return {
        "runs": runs,
        "rounds": len(rounds),
        "floor_rps": round(statistics.median(r["floor"]["rps"] for r in rounds), 1),
        "floor": {
            "rps_rounds": [r["floor"]["rps"] for r in rounds],
            "p50_ms": round(statistics.median(r["floor"]["p50_ms"] for r in rounds), 2),
            "p99_ms": round(statistics.median(r["floor"]["p99_ms"] for r in rounds), 2),
            "errors": sum(r["floor"]["errors"] for r in rounds),
        },
        "efficiency": round(statistics.median(r["suite"][reference]["rps"] / r["floor"]["rps"] for r in rounds), 3),
        "efficiency_of": {"strategy": reference[0], "substations": reference[1]},
        "scaling": {
            "substations": [smallest, largest],
            "rps_ratio": round(
                statistics.median(
                    r["suite"][(STRATEGIES[0], largest)]["rps"] / r["suite"][reference]["rps"] for r in rounds
                ),
                3,
            ),
        },
    }


def table(runs: list[dict], floor_rps: float) -> str:
    header = (
        f"{'strategy':<18} {'N':>3} {'req/s':>8} {'vs floor':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} "
        f"{'spread':>6} {'balancer CPU ms/req':>19}"
    )
    lines = [header, "-" * len(header)]
    for run in runs:
        lines.append(
            f"{run['strategy']:<18} {run['substations']:>3} {run['rps']:>8.0f} {run['rps'] / floor_rps:>8.2f} "
            f"{run['p50_ms']:>7.1f} {run['p99_ms']:>7.1f} {run['errors']:>6} {run['spread_sessions']:>6} "
            f"{run['cpu_ms_per_request']['balancer']:>19.3f}"
        )
    return "\n".join(lines)


def chart(results: dict, path: Path) -> None:
    """Throughput per strategy and N against the floor, and the spread each strategy left."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import ScalarFormatter

    figure = Figure(figsize=(11, 4.6), dpi=110)
    throughput, spread = figure.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    sizes = sorted({run["substations"] for run in results["runs"]})
    width = 0.8 / len(STRATEGIES)

    def figures(strategy: str, key: str) -> list[float]:
        runs = results["runs"]
        return [next(r[key] for r in runs if r["strategy"] == strategy and r["substations"] == n) for n in sizes]

    for index, strategy in enumerate(STRATEGIES):
        positions = [i + (index - 1) * width for i in range(len(sizes))]
        throughput.bar(positions, figures(strategy, "rps"), width, label=strategy, color=f"C{index}")
        spread.bar(positions, [max(v, 0.08) for v in figures(strategy, "spread_sessions")], width, color=f"C{index}")
    throughput.axhline(results["floor_rps"], color="black", linestyle="--", linewidth=1, label="floor: 3-hop chain")
    for axes in (throughput, spread):
        axes.set_xticks(range(len(sizes)), [f"N = {n}" for n in sizes])
        axes.grid(axis="y", alpha=0.3)
    throughput.set_ylabel("requests per second (median of rounds)")
    throughput.set_title(f"Throughput at {CONNECTIONS} connections, efficiency {results['efficiency']:.2f}")
    throughput.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=4, fontsize=8, frameon=False)
    spread.set_yscale("log")
    spread.yaxis.set_major_formatter(ScalarFormatter())
    spread.set_ylabel("active sessions, most minus least loaded")
    spread.set_title("Spread after the run (worst round)")
    figure.tight_layout()
    figure.savefig(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of load per run (default 5)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of every measurement (default 5)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[2, 8, 64], help="numbers of substations")
    parser.add_argument(
        "--process-per-substation",
        action="store_true",
        help="run every substation in a process of its own (default: one process simulates them all)",
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is missing: `apt-get install wrk` (Debian/Ubuntu)", file=sys.stderr)
        return 2
    sizes = sorted(set(args.sizes))
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-") as logs:
        log_dir = Path(logs)
        mode = "one process each" if args.process_per_substation else "simulated in one process"
        print(f"starting {max(sizes)} substations ({mode})...", flush=True)
        # Sessions outlast the warm-up and the run by 4 s, then end before the next run's warm-up.
        substations = Substations(
            max(sizes), log_dir, WARM_UP_S + args.duration + 4, process_each=args.process_per_substation
        )
        urls = substations.urls
        try:
            print(f"idle balancer polling {max(sizes)} substations for 10 s...", flush=True)
            poll_cpu = measure_polling(urls, log_dir)
            print(f"  {poll_cpu * 100:.1f} % of one core", flush=True)
            rounds = []
            # The figures that are compared sit next to each other: the floor beside least_utilization at
            # the smallest N, and each strategy's sizes in a row. Odd rounds run in reverse, so a machine
            # that speeds up or slows down during the run favours no size.
            order = [("floor", 0)] + [(strategy, size) for strategy in STRATEGIES for size in sizes]
            for number in range(args.rounds):
                print(f"round {number + 1}/{args.rounds} ({time.monotonic() - started:.0f} s so far)", flush=True)
                measured = {}
                for strategy, size in order if number % 2 == 0 else reversed(order):
                    if strategy == "floor":
                        run = measured["floor"] = measure_floor(log_dir, args.duration)
                        print(f"  {'floor (3-hop chain)':<24} {run['rps']:>7.0f} req/s  p99 {run['p99_ms']:.1f} ms")
                        continue
                    run = measured[(strategy, size)] = measure_suite(
                        urls[:size], substations, strategy, log_dir, args.duration
                    )
                    print(
                        f"  {strategy:<18} N={size:<3} {run['rps']:>7.0f} req/s  p99 {run['p99_ms']:.1f} ms  "
                        f"spread {run['spread_sessions']}",
                        flush=True,
                    )
                rounds.append({"floor": measured.pop("floor"), "suite": measured})
        finally:
            substations.stop()
    print("decision microbenchmark...", flush=True)
    results = {
        **summarise(rounds, sizes),
        "decision_us": decision.measure(),
        "poll_cpu_fraction_64": poll_cpu if max(sizes) == 64 else None,
        "command": "make bench" + (" ARGS=--process-per-substation" if args.process_per_substation else ""),
        "substation_processes": max(sizes) if args.process_per_substation else 1,
        "duration_s": args.duration,
        "connections": CONNECTIONS,
    }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    chart(results, CHART)

    print()
    print(f"medians of {args.rounds} rounds of {args.duration:g} s at {CONNECTIONS} connections; spread: worst round")
    print(table(results["runs"], results["floor_rps"]))
    print()
    floor = results["floor"]
    print(f"floor (trivial 3-hop chain): {results['floor_rps']:.0f} req/s, p50 {floor['p50_ms']:.1f} ms, ", end="")
    print(f"p99 {floor['p99_ms']:.1f} ms")
    print(f"efficiency (least_utilization, N={min(sizes)}, over the floor): {results['efficiency']:.2f}")
    scaling = results["scaling"]
    print(f"throughput N={max(sizes)} / N={min(sizes)} (least_utilization): {scaling['rps_ratio']:.2f}")
    print("decision: " + ", ".join(f"N={n}: {us} us" for n, us in results["decision_us"].items()))
    print(f"balancer polling {max(sizes)} substations, idle: {poll_cpu * 100:.1f} % of one core")
    print(f"written: {RESULTS.relative_to(ROOT)}, {CHART.relative_to(ROOT)} ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
