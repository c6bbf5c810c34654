"""What many tests use: HTTP calls with status, headers and decoded JSON in one object, metric samples,
waiting for a condition, and the protocol's shapes built with test defaults."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import urllib3
from prometheus_client.mmap_dict import MmapedDict

from grid_common.protocol import ChargeRequest, LoadReport

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


def refuses_connections(port: int) -> bool:
    """Whether nothing listens on the loopback `port` any more. A killed process's socket may accept a connection
    and reset it until its last process is gone: not down yet."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    return False


def wait_until_down(port: int) -> None:
    """Until a killed service's port refuses connections: what its callers then see at once."""
    wait_until(lambda: refuses_connections(port))


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
    others_sessions: int | None = None,
    **fields,
) -> LoadReport:
    """A substation's report as a balancer receives it: by default a substation that gives each session its
    maximum ("fixed"), `load_kw` all EV power, no background; any other field by keyword."""
    spare = max(0.0, capacity_kw - load_kw)
    defaults = {
        "allocation": "fixed",
        "headroom_kw": capacity_kw,
        "admission_headroom_kw": capacity_kw,
        "committed_kw": load_kw,
        "queue_limit": 100,
        "shareable_kw": (spare,) * 4,
        "demand_kw": load_kw,
    }
    return LoadReport.of(
        name=name,
        capacity_kw=capacity_kw,
        ev_power_kw=load_kw,
        background_kw=0.0,
        active_sessions=active_sessions,
        charger_max_power_kw=charger_max_power_kw,
        epoch=epoch,
        sequence=sequence,
        others_ev_power_kw=others_ev_power_kw,
        others_sessions=others_sessions,
        **{**defaults, **fields},
    )


def charge(vehicle_id: str = "EV", energy_kwh: float = 11.0, max_power_kw: float = 11.0, **fields) -> ChargeRequest:
    """A charging request as the substation's domain takes it; its minimum 1.4 kW unless given (the domain tests'
    figures were made with that minimum, the protocol's default before minimums were 6 A a phase)."""
    fields.setdefault("min_power_kw", min(max_power_kw, 1.4))
    return ChargeRequest(vehicle_id, energy_kwh, max_power_kw, **fields)


def view_of(balancer_or_grid, name: str) -> dict:
    """One substation as a balancer (a running service, or a grid's) sees it, from its /substations."""
    balancer = getattr(balancer_or_grid, "balancer", None) or balancer_or_grid
    listed = call("GET", f"{balancer.url}/substations").body["substations"]
    return next(s for s in listed if s["name"] == name)


def requests_served_by_each_worker(metrics_dir: Path) -> dict[str, float]:
    """Per worker process, the charging requests it counted, read from its own multiprocess file."""
    served = {}
    for path in metrics_dir.glob("counter_*.db"):
        served[path.stem] = 0.0
        for key, value, *_ in MmapedDict.read_all_values_from_file(str(path)):
            _, sample, labels, _ = json.loads(key)
            if sample == "gateway_requests_total" and labels.get("route") == "/initiate_energy_transfer":
                served[path.stem] += value
    return served
