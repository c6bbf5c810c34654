"""Every metric the gateway exposes, in one place, and the hooks that count each request."""

import functools
import time

from flask import Flask, Response, g, request
from prometheus_client import Counter, Histogram

REQUESTS = Counter("gateway_requests_total", "Requests answered, by route and status.", ["route", "method", "status"])
REQUEST_SECONDS = Histogram(
    "gateway_request_duration_seconds",
    "Time to answer a request.",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


# A client chooses the method it sends, even one that exists nowhere: every label value comes from a closed
# set, or a client could create series without end.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label(method: str) -> str:
    return method if method in METHODS else "other"


def instrument(app: Flask) -> None:
    """Count every request by route, and create each route's latency series at zero, so that its panel has
    data before the first request."""
    for rule in app.url_map.iter_rules():
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:  # None: any method, which Flask never makes
            REQUEST_SECONDS.labels(rule.rule, method)

    @app.before_request
    def _start_timer():
        g.started = time.perf_counter()

    @app.after_request
    def _count(response: Response):
        rule = request.url_rule
        route = rule.rule if rule else "unmatched"
        count, duration = series(route, method_label(request.method), response.status_code)
        count.inc()
        duration.observe(time.perf_counter() - g.started)
        return response


@functools.cache  # a few routes, methods and statuses: finding a series by its labels costs more than counting
def series(route: str, method: str, status: int) -> tuple:
    """The request counter's and the latency histogram's series for one route, method and status."""
    return REQUESTS.labels(route, method, str(status)), REQUEST_SECONDS.labels(route, method)
