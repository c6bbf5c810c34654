"""Load tester for the smart grid gateway: fire charging requests and summarise what came back.

Standard library only, so it runs with any Python 3.11 without installing anything; only --plot needs
matplotlib (`pip install matplotlib`), imported when the option is given.

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

    # Chart every substation's utilization and sessions over time, sampling the balancer's
    # /substations every 0.25 s during the run and for 25 s after it, while the sessions end
    python load_tester/test.py -n 60 -c 4 -q --energy-kwh 22 --plot utilization.png --plot-tail 25

Every request has a timeout; HTTP error statuses, timeouts and connection errors are counted as
outcomes, never raised. The exit code is 0 if at least one request got a 2xx answer (or none were
asked for) and 1 if every request failed; the chart of --plot never changes it.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import json
import math
import os
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TextIO

ENDPOINT = "/initiate_energy_transfer"
PROGRESS_THRESHOLD = 50  # runs with more requests than this show a progress bar
PROGRESS_INTERVAL_S = 0.1  # redraw the progress bar at most ~10 times a second
PERCENTILES = (50, 95, 99)
SAMPLE_INTERVAL_S = 0.25  # default of --sample-interval
SAMPLE_TIMEOUT_S = 1.0  # one read of the balancer's /substations while sampling


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
    parser.add_argument(
        "--plot",
        metavar="FILE.png",
        help="sample the balancer's /substations during the run and chart utilization and sessions "
        "over time to FILE.png (needs matplotlib)",
    )
    parser.add_argument(
        "--sample-interval",
        type=float,
        metavar="S",
        help=f"seconds between samples, with --plot (default: {SAMPLE_INTERVAL_S})",
    )
    parser.add_argument(
        "--plot-tail",
        type=float,
        metavar="S",
        help="with --plot, sample on this many seconds after the last request, to watch sessions end (default: 0)",
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
    if args.plot is None and (args.sample_interval is not None or args.plot_tail is not None):
        parser.error("--sample-interval and --plot-tail only apply with --plot")
    args.sample_interval = SAMPLE_INTERVAL_S if args.sample_interval is None else args.sample_interval
    args.plot_tail = 0.0 if args.plot_tail is None else args.plot_tail
    if not (args.sample_interval > 0 and math.isfinite(args.sample_interval)):
        parser.error("--sample-interval must be more than 0")
    if not (args.plot_tail >= 0 and math.isfinite(args.plot_tail)):
        parser.error("--plot-tail must be 0 or more")
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
    retry_after: str | None = None  # what a refusal told the client
    sent_at: float | None = None  # wall-clock time the request was sent (Unix seconds)

    def as_json(self) -> dict[str, Any]:
        body = self.body if isinstance(self.body, dict) else {}
        return {
            "index": self.index,
            "status": self.status,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 3),
            "session_id": body.get("session_id"),
            "substation": body.get("substation"),
            "retry_after": self.retry_after,
            "sent_at": self.sent_at,
        }

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
    sent_at = time.time()
    started = time.perf_counter()
    try:
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, raw, headers = response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:  # an HTTP answer with an error status is an outcome too
            with error:
                status, raw, headers = error.code, error.read(), error.headers
    except (OSError, http.client.HTTPException, ValueError) as error:
        return Outcome(index, describe_error(error), body=describe_error(error), sent_at=sent_at)
    latency_ms = (time.perf_counter() - started) * 1000
    return Outcome(index, str(status), latency_ms, decode(raw), headers.get("Retry-After"), sent_at)


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


def run(args: argparse.Namespace, sampler: Sampler | None = None) -> tuple[list[Outcome], float]:
    """Send every request and return the outcomes (in request order) and the wall time in seconds.

    A sampler, if given, is started just before the first request; the caller stops it.
    """
    url = args.url.rstrip("/") + ENDPOINT
    progress = Progress(args.requests, args.quiet or args.requests > PROGRESS_THRESHOLD)
    outcomes: list[Outcome] = []
    if sampler is not None:
        sampler.start()
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
    finished = time.perf_counter()
    if sampler is not None:
        sampler.run_span = (sampler.since_start(started), sampler.since_start(finished))
    outcomes.sort(key=lambda o: o.index)
    return outcomes, finished - started


def read_substations(balancer_url: str, timeout: float) -> tuple[dict[str, Any] | None, str | None]:
    """The balancer's `GET /substations` answer, or None and the reason it could not be read."""
    url = balancer_url.rstrip("/") + "/substations"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            listing = json.loads(response.read())
        substations = listing["substations"]
        if not isinstance(substations, list) or not all(isinstance(s, dict) and "name" in s for s in substations):
            raise ValueError("unexpected /substations body")
        return listing, None
    except urllib.error.HTTPError as error:
        error.close()
        return None, f"HTTP {error.code}"
    except (OSError, http.client.HTTPException) as error:
        return None, describe_error(error).removeprefix("error: ")
    except (ValueError, KeyError, TypeError) as error:
        return None, f"unreadable answer ({error})"


def fetch_balancer_view(balancer_url: str, timeout: float) -> tuple[list[dict[str, Any]] | None, str | None]:
    """The balancer's substations after the run, or None and the reason it could not be read."""
    listing, error = read_substations(balancer_url, timeout)
    return (None, error) if listing is None else (listing["substations"], None)


# --------------------------------------------------------------------------- sampling the balancer (--plot)


def number(value: Any) -> float | None:
    """A JSON number as a float; None for anything else (bool included)."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass
class Sample:
    t: float  # seconds since the sampler started, just before the first request
    substations: dict[str, dict[str, float | None]]  # name -> {"utilization": 0..1, "active_sessions": n}

    def as_json(self) -> dict[str, Any]:
        return {"t": self.t, "substations": self.substations}


class Sampler:
    """Reads the balancer's /substations every `interval` seconds on a background thread.

    A sample that fails (timeout, refused, unreadable) is counted and skipped, so sampling never stops the
    run, and it never slows the requests down: only the first sample, taken before them, can hold their
    start, for at most one timeout. Only this class's own thread appends samples until stop() has joined it.
    """

    def __init__(self, balancer_url: str, interval: float, timeout: float = SAMPLE_TIMEOUT_S) -> None:
        self.balancer_url = balancer_url
        self.interval = interval
        self.timeout = timeout
        self.samples: list[Sample] = []
        self.errors = 0
        self.last_error: str | None = None
        self.strategy: str | None = None
        self.capacities: dict[str, float] = {}  # name -> capacity_kw, as last reported
        self.run_span: tuple[float, float] | None = None  # when requests were being sent, in sample time
        self.origin = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="balancer-sampler", daemon=True)

    def since_start(self, moment: float) -> float:
        """A time.perf_counter() value as seconds since the sampler started."""
        return moment - self.origin

    def start(self) -> None:
        """Take the first sample (the grid before any request), then sample on in the background."""
        self.origin = time.perf_counter()
        self._take()
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it; safe to call more than once."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def finish(self) -> None:
        """Stop the thread, then take one last sample: the state after the last request (and the tail)."""
        self.stop()
        self._take()

    def _loop(self) -> None:
        tick = 1
        while not self._stop.wait(max(0.0, tick * self.interval - self.since_start(time.perf_counter()))):
            self._take()
            # Keep a regular cadence whatever one read took; skip the ticks a slow read overran.
            tick = max(tick + 1, math.floor(self.since_start(time.perf_counter()) / self.interval) + 1)

    def _take(self) -> None:
        t = self.since_start(time.perf_counter())
        try:
            listing, error = read_substations(self.balancer_url, self.timeout)
            if listing is None:
                self._failed(error)
                return
            substations = {}
            for sub in listing["substations"]:
                name = str(sub["name"])
                substations[name] = {
                    "utilization": number(sub.get("utilization")),
                    "active_sessions": number(sub.get("active_sessions")),
                }
                if (capacity := number(sub.get("capacity_kw"))) is not None:
                    self.capacities[name] = capacity
            if isinstance(listing.get("strategy"), str):
                self.strategy = listing["strategy"]
            self.samples.append(Sample(round(t, 3), substations))
        except Exception as error:  # whatever goes wrong with one sample must not end the sampling
            self._failed(f"{type(error).__name__}: {error}")

    def _failed(self, error: str | None) -> None:
        self.errors += 1
        self.last_error = error


def watch_tail(sampler: Sampler, seconds: float) -> None:
    """Let the sampler run on after the last request; Ctrl-C cuts the wait short and keeps the samples."""
    if seconds <= 0:
        return
    print(f"sampling the balancer for {seconds:g} s more (--plot-tail; Ctrl-C to stop early)", file=sys.stderr)
    try:
        time.sleep(seconds)
    except KeyboardInterrupt:
        print("tail cut short", file=sys.stderr)


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
    sampler: Sampler | None = None  # with --plot
    replies: list[Outcome] = field(default_factory=list)

    @property
    def throughput_rps(self) -> float:
        return round(self.requests / self.duration_s, 2) if self.duration_s > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        data = {
            "requests": self.requests,
            "concurrency": self.concurrency,
            "duration_s": round(self.duration_s, 3),
            "throughput_rps": self.throughput_rps,
            "outcomes": self.outcomes,
            "latency_ms": self.latency_ms,
            "sessions_by_substation": self.sessions,
            "spread_sessions": spread(self.sessions),
            "balancer_substations": self.balancer,
            "replies": [outcome.as_json() for outcome in self.replies],
        }
        if self.sampler is not None:
            data["samples"] = [sample.as_json() for sample in self.sampler.samples]
            data["sample_errors"] = self.sampler.errors
        return data


def summarise(args, outcomes, duration, balancer, balancer_error, sampler=None) -> Summary:
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
        sampler=sampler,
        replies=outcomes,
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

    if summary.sampler is not None:
        sampler = summary.sampler
        lines += ["", f"Samples of the balancer's view, every {sampler.interval:g} s (--plot)"]
        failed = f"{sampler.errors} failed" + (f", last: {sampler.last_error}" if sampler.errors else "")
        if sampler.samples:
            lines.append(f"  {len(sampler.samples)} samples over {fmt(sampler.samples[-1].t)} s, {failed}")
        else:
            lines.append(f"  none: {failed}")
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


# --------------------------------------------------------------------------- chart (--plot)


def chart_subtitle(args: argparse.Namespace, summary: Summary, strategy: str | None) -> str:
    """The run's parameters and outcomes, in one line."""
    body = body_for(args, 1) or {}
    asked = [f"{summary.requests} requests", f"concurrency {summary.concurrency}"]
    if (energy := number(body.get("energy_kwh"))) is not None:
        asked.append(f"{energy:g} kWh each")
    if (power := number(body.get("max_power_kw"))) is not None:
        asked.append(f"at most {power:g} kW")
    outcomes = ", ".join(
        f"{'HTTP ' + status if status.isdigit() else status.removeprefix('error: ')}: {count}"
        for status, count in summary.outcomes.items()
    )
    return "  ·  ".join(part for part in (", ".join(asked), f"strategy {strategy or '?'}", outcomes) if part)


def write_chart(path: str, args: argparse.Namespace, summary: Summary, sampler: Sampler) -> str | None:
    """Chart every substation's utilization and active sessions over time; None, or what went wrong."""
    if not sampler.samples:
        return (
            f"no chart written: the balancer at {sampler.balancer_url} never answered a sample "
            f"({sampler.errors} tried, last: {sampler.last_error})"
        )
    try:  # only --plot needs matplotlib, so only --plot imports it; Agg draws without any display
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        return "--plot needs matplotlib: pip install matplotlib"

    times = [sample.t for sample in sampler.samples]
    names = list(dict.fromkeys(name for sample in sampler.samples for name in sample.substations))

    def series(name: str, key: str, scale: float = 1.0) -> list[float]:
        values = (sample.substations.get(name, {}).get(key) for sample in sampler.samples)
        return [math.nan if value is None else value * scale for value in values]

    figure = Figure(figsize=(11, 6.6), layout="constrained")
    FigureCanvasAgg(figure)
    utilization_ax, sessions_ax = figure.subplots(2, 1, sharex=True, height_ratios=[3, 1.3])
    marker = "o" if len(times) <= 40 else None  # a short run has few samples: show where they are

    if sampler.run_span is not None and args.plot_tail > 0:
        start, end = sampler.run_span  # a burst can be too short to see: the label says when it was
        for ax, label in ((utilization_ax, f"requests being sent\n({start:.1f}–{end:.1f} s)"), (sessions_ax, None)):
            ax.axvspan(start, end, color="0.88", zorder=0, label=label)
    for index, name in enumerate(names):
        capacity = sampler.capacities.get(name)
        label = name if capacity is None else f"{name} ({capacity:g} kW)"
        # Equal substations draw equal lines: each line is narrower than the ones under it, so all show.
        width = 1.6 + 0.9 * (len(names) - 1 - index)
        style = {"color": f"C{index}", "linewidth": width, "marker": marker, "markersize": 2 + width}
        utilization_ax.plot(times, series(name, "utilization", 100), label=label, **style)
        sessions_ax.step(times, series(name, "active_sessions"), where="post", **style)
    utilization_ax.axhline(100, color="0.25", linestyle="--", linewidth=1, label="capacity (100 %)")
    utilization_ax.axhline(90, color="0.45", linestyle=":", linewidth=1.2, label="90 %")

    figure.suptitle("Substation utilization during the load test", fontsize=13, fontweight="bold")
    utilization_ax.set_title(chart_subtitle(args, summary, sampler.strategy), fontsize=10, color="0.25")
    utilization_ax.set(ylabel="utilization (%)", ylim=(0, 105))
    utilization_ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False, fontsize=9)
    sessions_ax.set(ylabel="active sessions", xlabel="time since start (s)")
    sessions_ax.set_ylim(bottom=0)
    sessions_ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in (utilization_ax, sessions_ax):
        ax.margins(x=0.01)  # just room for the first and last sample's markers
        ax.grid(alpha=0.3)
    try:
        figure.savefig(path, dpi=120)
    except (OSError, ValueError) as error:  # a missing folder, or an extension matplotlib cannot write
        return f"could not write {path}: {error}"
    return None


# --------------------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sampler = Sampler(args.balancer_url, args.sample_interval) if args.plot else None
    try:
        outcomes, duration = run(args, sampler)
        balancer, balancer_error = fetch_balancer_view(args.balancer_url, args.timeout)
        if sampler is not None:
            watch_tail(sampler, args.plot_tail)
            sampler.finish()
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        if sampler is not None:
            sampler.stop()
    summary = summarise(args, outcomes, duration, balancer, balancer_error, sampler)
    print(report(summary))
    if args.json:
        problem = write_json(args.json, summary)
        if problem:
            print(problem, file=sys.stderr)
    if sampler is not None:
        problem = write_chart(args.plot, args, summary, sampler)
        if problem:
            print(problem, file=sys.stderr)
        else:
            print(f"chart written to {args.plot}")
    if not outcomes or any(o.ok for o in outcomes):
        return 0
    return 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:
        # Piped into `head` or a pager that quit: stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)
