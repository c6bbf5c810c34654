"""Load tester for the smart grid gateway: fire charging requests and summarise what came back.

Standard library only, so it runs with any Python 3.11 without installing anything.

Usage examples:

    # Like the first version: 16 body-less requests, one after another, each reply printed
    python load_tester/test.py

    # 200 requests, 8 at a time, summary only, also written as JSON
    python load_tester/test.py -n 200 -c 8 -q --json summary.json

    # Each request asks for 22 kWh at up to 11 kW, as vehicles EV-1, EV-2, ...
    python load_tester/test.py -n 50 --energy-kwh 22 --max-power-kw 11

    # A fixed JSON body for every request, against another gateway and balancer
    python load_tester/test.py --body '{"max_power_kw": 7.4}' --url http://grid.example:6000 \\
        --balancer-url http://grid.example:7000

Every request has a timeout; HTTP error statuses, timeouts and connection errors are counted as
outcomes, never raised. The exit code is 0 if at least one request got a 2xx answer (or none were
asked for) and 1 if every request failed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import json
import math
import socket
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from typing import Any, TextIO

ENDPOINT = "/initiate_energy_transfer"
PROGRESS_THRESHOLD = 50  # runs with more requests than this show a progress bar
PROGRESS_INTERVAL_S = 0.1  # redraw the progress bar at most ~10 times a second
PERCENTILES = (50, 95, 99)


# --------------------------------------------------------------------------- command line


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Send charging requests to the gateway and summarise the outcomes.",
        epilog="Example: python load_tester/test.py -n 200 -c 8 -q --json summary.json",
    )
    parser.add_argument("--url", default="http://localhost:6000", help="gateway base URL (default: %(default)s)")
    parser.add_argument(
        "-n", "--requests", type=int, default=16, help="number of requests to send (default: %(default)s)"
    )
    parser.add_argument(
        "-c", "--concurrency", type=int, default=1, help="requests in flight at once (default: %(default)s)"
    )
    parser.add_argument("--body", help="JSON object sent as the body of every request (default: body-less POST)")
    parser.add_argument("--energy-kwh", type=float, help="build a body asking for this much energy")
    parser.add_argument("--max-power-kw", type=float, help="build a body asking for at most this power")
    parser.add_argument(
        "--vehicle-prefix", default="EV-", help="vehicle_id prefix when a body is built (default: %(default)s)"
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request (default: %(default)s)")
    parser.add_argument("-q", "--quiet", action="store_true", help="do not print each reply")
    parser.add_argument("--json", metavar="FILE", help="also write the summary as JSON to FILE")
    parser.add_argument(
        "--balancer-url",
        default="http://localhost:7000",
        help="balancer base URL, read after the run (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.requests < 0:
        parser.error("-n/--requests must be 0 or more")
    if args.concurrency < 1:
        parser.error("-c/--concurrency must be 1 or more")
    if args.timeout <= 0:
        parser.error("--timeout must be more than 0")
    if args.body is not None:
        try:
            args.body = json.loads(args.body)
        except ValueError as error:
            parser.error(f"--body is not valid JSON: {error}")
        if not isinstance(args.body, dict):
            parser.error("--body must be a JSON object")
    return args


def body_for(args: argparse.Namespace, index: int) -> dict[str, Any] | None:
    """The JSON body of request `index` (1-based), or None for a body-less POST."""
    built = args.energy_kwh is not None or args.max_power_kw is not None
    if args.body is None and not built:
        return None
    body = dict(args.body or {})
    if built:
        body.setdefault("vehicle_id", f"{args.vehicle_prefix}{index}")
        if args.energy_kwh is not None:
            body["energy_kwh"] = args.energy_kwh
        if args.max_power_kw is not None:
            body["max_power_kw"] = args.max_power_kw
    return body


# --------------------------------------------------------------------------- one request


@dataclass
class Outcome:
    index: int
    status: str  # "201", "503", "error: timeout", ...
    latency_ms: float | None = None  # only for requests that got an HTTP answer
    body: Any = None  # decoded JSON, text, or the error description

    @property
    def ok(self) -> bool:
        return self.status.isdigit() and 200 <= int(self.status) < 300


def decode(raw: bytes) -> Any:
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def describe_error(error: BaseException) -> str:
    """A short, stable outcome label for a failure that produced no HTTP answer."""
    if isinstance(error, urllib.error.URLError) and isinstance(error.reason, BaseException):
        error = error.reason
    if isinstance(error, TimeoutError):
        return "error: timeout"
    if isinstance(error, ConnectionRefusedError):
        return "error: connection refused"
    if isinstance(error, ConnectionResetError):
        return "error: connection reset"
    if isinstance(error, http.client.RemoteDisconnected):
        return "error: remote disconnected"
    if isinstance(error, socket.gaierror):
        return "error: unknown host"
    if isinstance(error, urllib.error.URLError):
        return f"error: {error.reason}"
    return f"error: {type(error).__name__}"


def send(url: str, body: dict[str, Any] | None, timeout: float, index: int) -> Outcome:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Accept": "application/json"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    started = time.perf_counter()
    try:
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:  # an HTTP answer with an error status is an outcome too
            with error:
                status, raw = error.code, error.read()
    except (OSError, http.client.HTTPException, ValueError) as error:
        return Outcome(index, describe_error(error), body=describe_error(error))
    latency_ms = (time.perf_counter() - started) * 1000
    return Outcome(index, str(status), latency_ms, decode(raw))


# --------------------------------------------------------------------------- progress


class Progress:
    """A one-line progress bar on stderr, drawn only when stderr is a terminal."""

    WIDTH = 30

    def __init__(self, total: int, enabled: bool, stream: TextIO = sys.stderr) -> None:
        self.total = total
        self.enabled = enabled and stream.isatty()
        self.stream = stream
        self.started = time.monotonic()
        self.last_draw = 0.0
        self.shown = False

    def update(self, done: int, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self.last_draw < PROGRESS_INTERVAL_S:
            return
        self.last_draw = now
        elapsed = now - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        filled = self.WIDTH * done // self.total if self.total else self.WIDTH
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        self.stream.write(f"\r\x1b[2K[{bar}] {done}/{self.total}  {rate:.1f} req/s  {elapsed:.1f} s")
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.enabled and self.shown:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self.shown = False


# --------------------------------------------------------------------------- the run


def print_reply(outcome: Outcome, progress: Progress) -> None:
    progress.clear()  # keep the bar from mixing with the line when both go to the terminal
    shown = outcome.body if isinstance(outcome.body, str) else repr(outcome.body)
    print(f"Request {outcome.index}: {shown}", flush=True)


def run(args: argparse.Namespace) -> tuple[list[Outcome], float]:
    """Send every request and return the outcomes (in request order) and the wall time in seconds."""
    url = args.url.rstrip("/") + ENDPOINT
    progress = Progress(args.requests, args.quiet or args.requests > PROGRESS_THRESHOLD)
    outcomes: list[Outcome] = []
    started = time.perf_counter()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=args.concurrency)
    try:
        pending = {
            pool.submit(send, url, body_for(args, index), args.timeout, index) for index in range(1, args.requests + 1)
        }
        while pending:
            done, pending = concurrent.futures.wait(
                pending, timeout=PROGRESS_INTERVAL_S, return_when=concurrent.futures.FIRST_COMPLETED
            )
            for outcome in sorted((f.result() for f in done), key=lambda o: o.index):
                outcomes.append(outcome)
                if not args.quiet:
                    print_reply(outcome, progress)
            progress.update(len(outcomes))
    finally:
        progress.clear()
        pool.shutdown(wait=True, cancel_futures=True)  # on Ctrl-C, drop what has not started yet
    duration = time.perf_counter() - started
    outcomes.sort(key=lambda o: o.index)
    return outcomes, duration


def fetch_balancer_view(balancer_url: str, timeout: float) -> tuple[list[dict[str, Any]] | None, str | None]:
    """The balancer's substations after the run, or None and the reason it could not be read."""
    url = balancer_url.rstrip("/") + "/substations"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            listing = json.loads(response.read())
        substations = listing["substations"]
        if not isinstance(substations, list) or not all(isinstance(s, dict) and "name" in s for s in substations):
            raise ValueError("unexpected /substations body")
        return substations, None
    except urllib.error.HTTPError as error:
        error.close()
        return None, f"HTTP {error.code}"
    except (OSError, http.client.HTTPException) as error:
        return None, describe_error(error).removeprefix("error: ")
    except (ValueError, KeyError, TypeError) as error:
        return None, f"unreadable answer ({error})"


# --------------------------------------------------------------------------- statistics


def percentile(ordered: list[float], pct: float) -> float:
    """Nearest-rank percentile of already sorted data."""
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_stats(outcomes: list[Outcome]) -> dict[str, float | None]:
    ordered = sorted(o.latency_ms for o in outcomes if o.latency_ms is not None)
    if not ordered:
        return dict.fromkeys(("min", *(f"p{p}" for p in PERCENTILES), "max"))
    stats = {"min": ordered[0]}
    stats.update({f"p{p}": percentile(ordered, p) for p in PERCENTILES})
    stats["max"] = ordered[-1]
    return {key: round(value, 2) for key, value in stats.items()}


def outcome_counts(outcomes: list[Outcome]) -> dict[str, int]:
    """Counts per status: HTTP statuses in numeric order first, then errors by name."""
    counts = Counter(o.status for o in outcomes)
    return dict(sorted(counts.items(), key=lambda item: (not item[0].isdigit(), item[0].zfill(3))))


def sessions_by_substation(outcomes: list[Outcome], known: list[str]) -> dict[str, int]:
    """201 replies per substation; substations the balancer knows of but got none count as 0."""
    counts = Counter(
        o.body["substation"]
        for o in outcomes
        if o.status == "201" and isinstance(o.body, dict) and "substation" in o.body
    )
    for name in known:
        counts.setdefault(name, 0)
    return dict(sorted(counts.items()))


def spread(counts: dict[str, int]) -> int | None:
    return max(counts.values()) - min(counts.values()) if counts else None


@dataclass
class Summary:
    requests: int
    concurrency: int
    duration_s: float
    outcomes: dict[str, int]
    latency_ms: dict[str, float | None]
    sessions: dict[str, int]
    balancer_url: str
    balancer: list[dict[str, Any]] | None = None
    balancer_error: str | None = None
    answered: int = 0

    @property
    def throughput_rps(self) -> float:
        return round(self.requests / self.duration_s, 2) if self.duration_s > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "concurrency": self.concurrency,
            "duration_s": round(self.duration_s, 3),
            "throughput_rps": self.throughput_rps,
            "outcomes": self.outcomes,
            "latency_ms": self.latency_ms,
            "sessions_by_substation": self.sessions,
            "spread_sessions": spread(self.sessions),
            "balancer_substations": self.balancer,
        }


def summarise(args, outcomes, duration, balancer, balancer_error) -> Summary:
    known = [s["name"] for s in balancer or []]
    return Summary(
        requests=len(outcomes),
        concurrency=args.concurrency,
        duration_s=duration,
        outcomes=outcome_counts(outcomes),
        latency_ms=latency_stats(outcomes),
        sessions=sessions_by_substation(outcomes, known),
        balancer_url=args.balancer_url,
        balancer=balancer,
        balancer_error=balancer_error,
        answered=sum(o.latency_ms is not None for o in outcomes),
    )


# --------------------------------------------------------------------------- report


def table(headers: list[str], rows: list[list[Any]], left: int = 1, indent: str = "  ") -> list[str]:
    """Plain aligned text: the first `left` columns left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        parts = [
            cell.ljust(w) if i < left else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        return (indent + "  ".join(parts)).rstrip()

    return [line(cells[0]), indent + "  ".join("-" * w for w in widths)] + [line(row) for row in cells[1:]]


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def pct(part: float, whole: float) -> str:
    return fmt(100 * part / whole if whole else None)


def report(summary: Summary) -> str:
    total = summary.requests
    lines = ["", "Summary", "=======", "", "Outcomes"]
    lines += table(["status", "count", "%"], [[s, n, pct(n, total)] for s, n in summary.outcomes.items()])

    lines += ["", f"Latency (ms, over {summary.answered} HTTP answers)"]
    lines += table(list(summary.latency_ms), [[fmt(v) for v in summary.latency_ms.values()]], left=0)

    lines += ["", "Throughput"]
    lines += table(
        ["requests", "concurrency", "wall time s", "requests/s"],
        [[total, summary.concurrency, fmt(summary.duration_s, 3), fmt(summary.throughput_rps)]],
        left=0,
    )

    lines += ["", "Sessions by substation (201 replies)"]
    placed = sum(summary.sessions.values())
    if summary.sessions:
        lines += table(
            ["substation", "sessions", "share %"], [[k, n, pct(n, placed)] for k, n in summary.sessions.items()]
        )
        lines.append(f"  spread (max - min): {spread(summary.sessions)} sessions")
    else:
        lines.append("  no sessions started")

    lines += ["", f"Balancer view after the run ({summary.balancer_url})"]
    if summary.balancer is None:
        lines.append(f"  balancer unavailable: {summary.balancer_error}")
    else:
        lines += table(
            ["substation", "healthy", "active", "load_kw / capacity_kw", "utilization %"], balancer_rows(summary)
        )
        utilizations = [u for sub in summary.balancer if isinstance(u := sub.get("utilization"), int | float)]
        if utilizations:
            # Substations differ in capacity, so balance shows in utilization, not in session counts.
            gap = (max(utilizations) - min(utilizations)) * 100
            lines.append(f"  utilization spread (max - min): {fmt(gap)} percentage points")
    return "\n".join(lines)


def balancer_rows(summary: Summary) -> list[list[Any]]:
    rows = []
    for sub in summary.balancer or []:
        utilization = sub.get("utilization")
        load = f"{fmt(sub.get('load_kw'))} / {fmt(sub.get('capacity_kw'))}"
        rows.append(
            [
                sub["name"],
                "yes" if sub.get("healthy") else "no",
                sub.get("active_sessions", "-"),
                load,
                fmt(utilization * 100 if isinstance(utilization, int | float) else None),
            ]
        )
    return rows


def write_json(path: str, summary: Summary) -> str | None:
    try:
        with open(path, "w", encoding="utf-8") as out:
            json.dump(summary.as_json(), out, indent=2)
            out.write("\n")
    except OSError as error:
        return f"could not write {path}: {error}"
    return None


# --------------------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        outcomes, duration = run(args)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    balancer, balancer_error = fetch_balancer_view(args.balancer_url, args.timeout)
    summary = summarise(args, outcomes, duration, balancer, balancer_error)
    print(report(summary))
    if args.json:
        problem = write_json(args.json, summary)
        if problem:
            print(problem, file=sys.stderr)
    if not outcomes or any(o.ok for o in outcomes):
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
