"""What many tests use: HTTP calls with status, headers and decoded JSON in one object, metric samples,
waiting for a condition, and the protocol's shapes built with test defaults."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import urllib3

from grid_common.protocol import LoadReport

_pool = urllib3.PoolManager(retries=False, maxsize=64)


@dataclass
class Reply:
    status: int
    headers: dict
    body: object
    raw: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")


def call(
    method: str,
    url: str,
    json_body: object = None,
    *,
    body: bytes | None = None,
    headers: dict | None = None,
    timeout: float = 10.0,
) -> Reply:
    headers = dict(headers or {})
    if json_body is not None:
        body = json.dumps(json_body).encode()
        headers.setdefault("Content-Type", "application/json")
    response = _pool.request(method, url, body=body, headers=headers, timeout=timeout)
    try:
        decoded = json.loads(response.data) if response.data else None
    except ValueError:
        decoded = None
    return Reply(response.status, dict(response.headers), decoded, response.data)


def metric_value(metrics_text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus text format, or None when absent."""
    for line in metrics_text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        series, _, value = line.rpartition(" ")
        metric, _, label_text = series.partition("{")
        if metric != name:
            continue
        if all(f'{key}="{val}"' in label_text for key, val in labels.items()):
            return float(value)
    return None


def close_connections() -> None:
    _pool.clear()


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05):
    """Poll a condition instead of sleeping a fixed time; fail with a clear message if it never holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s: {getattr(predicate, '__name__', predicate)}")


def load_report(
    name: str = "s1",
    *,
    capacity_kw: float = 150.0,
    load_kw: float = 0.0,
    active_sessions: int = 0,
    charger_max_power_kw: float = 22.0,
    epoch: str = "e1",
    sequence: int = 1,
    others_ev_power_kw: float | None = None,
) -> LoadReport:
    """A substation's report as a balancer receives it; `load_kw` is all EV power unless said otherwise."""
    return LoadReport(
        name=name,
        capacity_kw=capacity_kw,
        ev_power_kw=load_kw,
        background_kw=0.0,
        active_sessions=active_sessions,
        charger_max_power_kw=charger_max_power_kw,
        epoch=epoch,
        sequence=sequence,
        others_ev_power_kw=others_ev_power_kw,
    )


def view_of(balancer_or_grid, name: str) -> dict:
    """One substation as a balancer (a running service, or a grid's) sees it, from its /substations."""
    balancer = getattr(balancer_or_grid, "balancer", None) or balancer_or_grid
    listed = call("GET", f"{balancer.url}/substations").body["substations"]
    return next(s for s in listed if s["name"] == name)
