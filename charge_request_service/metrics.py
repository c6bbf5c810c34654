"""Every metric the gateway exposes, in one place, and the hooks that count each request."""

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
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            REQUEST_SECONDS.labels(rule.rule, method)

    @app.before_request
    def _start_timer():
        g.started = time.perf_counter()

    @app.after_request
    def _count(response: Response):
        route = request.url_rule.rule if request.url_rule else "unmatched"
        method = method_label(request.method)
        REQUESTS.labels(route, method, str(response.status_code)).inc()
        REQUEST_SECONDS.labels(route, method).observe(time.perf_counter() - g.started)
        return response
