"""Every metric the gateway exposes, in one place."""

from prometheus_client import Counter, Histogram

REQUESTS = Counter("gateway_requests_total", "Requests answered, by route and status.", ["route", "method", "status"])
REQUEST_SECONDS = Histogram(
    "gateway_request_duration_seconds",
    "Time to answer a request.",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def initialize(routes: list[tuple[str, str]]) -> None:
    """Create the latency series of every route at zero, so its panel has data before the first request."""
    for route, method in routes:
        REQUEST_SECONDS.labels(route, method)
