"""Every error is problem+json with the right status, and an upstream that fails gives 502, 503 or 504."""

from __future__ import annotations

import json

import pytest

from charge_request_service.config import GatewayConfig
from tests.in_process import BALANCER_URL, in_process_grid, substation_url

PROBLEM = "application/problem+json"


def assert_problem(response, status):
    raw = response.get_data()
    assert response.status_code == status, (response.status_code, raw[:300])
    assert response.content_type == PROBLEM
    body = json.loads(raw)
    assert body["status"] == status and body["title"]
    assert b"Traceback" not in raw and b"<html" not in raw.lower()
    return body


@pytest.mark.parametrize(
    ("kwargs", "status", "detail"),
    [
        ({"data": b"{not json", "content_type": "application/json"}, 400, "not valid JSON"),
        ({"data": b"energy=11", "content_type": "application/x-www-form-urlencoded"}, 415, "json"),
        ({"json": {"energy_kwh": -5}}, 422, "energy_kwh"),
        ({"json": {"max_power_kw": 1e308}}, 422, "max_power_kw"),
        ({"data": b'{"energy_kwh": NaN}', "content_type": "application/json"}, 422, "finite"),
        ({"json": {"battery": "big"}}, 422, "battery"),
        ({"json": ["energy_kwh", 11]}, 422, "JSON object"),
        ({"data": b"null", "content_type": "application/json"}, 422, "not null"),
        ({"json": {"vehicle_id": "EV 1; DROP"}}, 422, "vehicle_id"),
        ({"data": b"{" + b" " * 20_000 + b"}", "content_type": "application/json"}, 413, ""),
    ],
)
def test_bad_input_is_a_clear_4xx(gateway, balancer, kwargs, status, detail):
    for client, path in ((gateway, "/initiate_energy_transfer"), (balancer, "/assign_substation")):
        response = client.post(path, **kwargs)
        assert_problem(response, status)
        assert detail.lower() in response.get_data(as_text=True).lower()


def test_unknown_routes_methods_and_sessions(gateway):
    assert_problem(gateway.get("/nowhere"), 404)
    response = gateway.get("/initiate_energy_transfer")
    assert_problem(response, 405)
    assert "POST" in response.headers["Allow"]
    assert_problem(gateway.get("/sessions/not-a-session"), 400)
    assert_problem(gateway.get("/sessions/substation1.0123456789abcdef"), 404)
    assert_problem(gateway.get("/sessions/nosuchstation.0123456789abcdef"), 404)
    assert_problem(gateway.post("/sessions/substation1.0123456789abcdef/stop"), 404)


def test_a_balancer_that_cannot_be_reached_gives_502_after_the_retries(grid, gateway):
    del grid.transport.apps[BALANCER_URL]
    body = assert_problem(gateway.post("/initiate_energy_transfer"), 502)
    assert "load balancer" in body["detail"]
    tried = [url for _, url, _ in grid.transport.sent if url.startswith(BALANCER_URL)]
    assert len(tried) == 1 + GatewayConfig.connect_retries, "a connection refused is tried again, then given up"


def test_a_call_that_could_not_connect_is_tried_again():
    """The request was never sent, so the gateway may repeat it: a balancer back within the retries serves it."""
    grid = in_process_grid(gateway={"connect_retries": 2})
    balancer_app = grid.transport.apps.pop(BALANCER_URL)
    send = grid.transport.send

    def back_after_one_refusal(method, url, body, headers, timeout):
        try:
            return send(method, url, body, headers, timeout)
        finally:
            grid.transport.apps[BALANCER_URL] = balancer_app  # the balancer is up from now on

    grid.transport.send = back_after_one_refusal
    response = grid.gateway.test_client().post("/initiate_energy_transfer")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["result"] == "Charging started"


def test_a_balancer_too_slow_gives_504(grid, gateway):
    grid.transport.slow.add(BALANCER_URL)
    assert_problem(gateway.post("/initiate_energy_transfer"), 504)


def test_the_owning_substation_down_gives_502_for_its_sessions(grid, gateway):
    session = gateway.post("/initiate_energy_transfer").get_json()
    del grid.transport.apps[substation_url(session["substation"])]
    body = assert_problem(gateway.get(f"/sessions/{session['session_id']}"), 502)
    assert f"substation {session['substation']}" in body["detail"]


def test_no_healthy_substation_gives_503_with_retry_after():
    grid = in_process_grid({"a": 150})
    del grid.transport.apps[substation_url("a")]
    grid.poll()
    response = grid.gateway.test_client().post("/initiate_energy_transfer")
    body = assert_problem(response, 503)
    assert int(response.headers["Retry-After"]) >= 1
    assert "reachable" in body["detail"]
