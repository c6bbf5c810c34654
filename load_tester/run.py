"""The run: send every request, print the replies, and let the sampler watch the tail."""

from __future__ import annotations

import argparse
import concurrent.futures
import sys
import time

from load_tester.client import Outcome, body_for, send
from load_tester.progress import PROGRESS_INTERVAL_S, Progress
from load_tester.sampler import Sampler

ENDPOINT = "/initiate_energy_transfer"
PROGRESS_THRESHOLD = 50  # runs with more requests than this show a progress bar


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


def watch_tail(sampler: Sampler, seconds: float) -> None:
    """Let the sampler run on after the last request; Ctrl-C cuts the wait short and keeps the samples."""
    if seconds <= 0:
        return
    print(f"sampling the balancer for {seconds:g} s more (--plot-tail; Ctrl-C to stop early)", file=sys.stderr)
    try:
        time.sleep(seconds)
    except KeyboardInterrupt:
        print("tail cut short", file=sys.stderr)
