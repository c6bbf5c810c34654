"""A tiny HTTP helper for tests: status, headers and decoded JSON in one object."""

from __future__ import annotations

import json
from dataclasses import dataclass

import urllib3

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
