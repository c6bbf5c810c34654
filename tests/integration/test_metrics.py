"""Each service's /metrics exposes its metrics, named the Prometheus way, with values that add up."""

from __future__ import annotations

import concurrent.futures

import pytest

from tests.helpers import call, metric_value, requests_served_by_each_worker, wait_until


def scrape(service) -> str:
    reply = call("GET", f"{service.url}/metrics")
    assert reply.status == 200
    assert reply.content_type.startswith("text/plain")
    return reply.raw.decode()


def test_metrics_after_traffic(services):
    grid = services.grid({"a": 44, "b": 150}, substation_env={"TIME_SCALE": "1"})
    for _ in range(3):
        assert call("POST", f"{grid.gateway.url}/initiate_energy_transfer").status == 201
    # A session started on "a" without the balancer (it fits beside the balancer's): substations count
    # what they admit, whoever asks.
    call("POST", f"{grid.substations['a'].url}/begin_charging", {"max_power_kw": 22})
    call("POST", f"{grid.gateway.url}/initiate_energy_transfer", {"energy_kwh": "x"})

    gateway = scrape(grid.gateway)
    assert metric_value(gateway, "gateway_requests_total", route="/initiate_energy_transfer", status="201") == 3
    assert metric_value(gateway, "gateway_requests_total", route="/initiate_energy_transfer", status="422") == 1
    assert metric_value(gateway, "gateway_request_duration_seconds_count", route="/initiate_energy_transfer") == 4
    assert (
        metric_value(gateway, "gateway_request_duration_seconds_bucket", route="/initiate_energy_transfer", le="+Inf")
        == 4
    )

    balancer = scrape(grid.balancer)
    decided = sum(metric_value(balancer, "balancer_decisions_total", substation=s) or 0 for s in ("a", "b"))
    assert decided == 3
    assert metric_value(balancer, "balancer_decision_duration_seconds_count") >= 3
    assert metric_value(balancer, "balancer_assign_duration_seconds_count") == 3
    assert metric_value(balancer, "balancer_substation_up", substation="a") == 1
    assert metric_value(balancer, "balancer_healthy_substations") == 2

    total_started = 0
    for name, substation in grid.substations.items():
        text = scrape(substation)
        load = call("GET", f"{substation.url}/load").body
        assert metric_value(text, "substation_load", substation=name) == load["active_sessions"]
        assert metric_value(text, "substation_capacity_watts", substation=name) == load["capacity_kw"] * 1000
        # /load rounds to 6 decimals; the metrics do not.
        assert metric_value(text, "substation_power_watts", substation=name) == pytest.approx(load["load_kw"] * 1000)
        assert metric_value(text, "substation_utilization_ratio", substation=name) == pytest.approx(
            load["utilization"], abs=1e-6
        )
        total_started += metric_value(text, "substation_sessions_started_total", substation=name)
        assert metric_value(text, "substation_sessions_refused_total", substation=name, reason="capacity") == 0
        assert metric_value(text, "substation_sessions_completed_total", substation=name) == 0
    assert total_started == 4


def test_upstream_failures_and_up_gauge_follow_a_dead_substation(services):
    grid = services.grid({"a": 150, "b": 150}, substation_env={"TIME_SCALE": "1"})
    grid.substations["a"].process.stop()

    def balancer_sees_a_down():
        text = scrape(grid.balancer)
        return text if metric_value(text, "balancer_substation_up", substation="a") == 0 else None

    text = wait_until(balancer_sees_a_down, timeout=5)
    assert metric_value(text, "balancer_healthy_substations") == 1
    failures = metric_value(text, "balancer_upstream_failures_total", substation="a", operation="poll")
    assert failures >= 1


def test_completed_sessions_are_counted(services):
    grid = services.grid({"a": 150}, substation_env={"TIME_SCALE": "36000"})  # 11 kWh at 11 kW: 0.1 s
    for _ in range(2):
        assert call("POST", f"{grid.gateway.url}/initiate_energy_transfer").status == 201
    wait_until(
        lambda: metric_value(scrape(grid.substations["a"]), "substation_sessions_completed_total", substation="a") == 2,
        timeout=5,
    )
    assert metric_value(scrape(grid.substations["a"]), "substation_load", substation="a") == 0


def test_counters_sum_over_several_gunicorn_workers(services, tmp_path):
    """With WEB_CONCURRENCY > 1, /metrics must report every worker's requests, not the answering one's."""
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    workers = {
        "WEB_CONCURRENCY": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "IDEMPOTENCY_DB": str(tmp_path / "keys.sqlite3"),
    }
    grid = services.grid({"a": 1000}, substation_env={"TIME_SCALE": "1"}, gateway_env=workers)
    sent = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        # Until both workers have served some: the kernel decides which worker accepts a connection, so every
        # request comes on a new one (kept-alive connections would all stay with the worker that took them).
        fresh = {"Connection": "close"}
        url = f"{grid.gateway.url}/initiate_energy_transfer"
        while sent < 400 and sum(n > 0 for n in requests_served_by_each_worker(metrics_dir).values()) < 2:
            statuses = list(pool.map(lambda _: call("POST", url, headers=fresh).status, range(40)))
            assert statuses == [201] * 40
            sent += 40
    served = requests_served_by_each_worker(metrics_dir)
    assert sum(n > 0 for n in served.values()) == 2, f"both workers served: {served}"
    assert sum(served.values()) == sent
    for _ in range(4):  # whichever worker answers the scrape, the total is the same
        text = scrape(grid.gateway)
        assert metric_value(text, "gateway_requests_total", route="/initiate_energy_transfer", status="201") == sent
