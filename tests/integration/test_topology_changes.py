"""Registering and removing substations at run time, behind a bearer token."""

from __future__ import annotations

from tests.helpers import call, view_of, wait_until

TOKEN = "tok-9f8e7d6c5b4a3210"
LONG = {"TIME_SCALE": "1"}


def auth(token: str = TOKEN) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_a_registered_substation_takes_sessions_and_a_removed_one_none(services):
    grid = services.grid({"a": 150}, substation_env=LONG, balancer_env={"TOPOLOGY_TOKEN": TOKEN})
    newcomer = services.substation("b", 300, **LONG)

    added = call("POST", f"{grid.balancer.url}/substations", {"name": "b", "url": newcomer.url}, headers=auth())
    assert added.status == 201 and added.headers["Location"] == "/substations/b"
    assert added.body["name"] == "b" and added.body["healthy"] is True, "polled at once"
    replies = [call("POST", f"{grid.gateway.url}/initiate_energy_transfer").body for _ in range(3)]
    assert "b" in {r["substation"] for r in replies}, "the larger newcomer takes sessions"
    again = call("POST", f"{grid.balancer.url}/substations", {"name": "b", "url": newcomer.url}, headers=auth())
    assert again.status == 409

    removed = call("DELETE", f"{grid.balancer.url}/substations/b", headers=auth())
    assert removed.status == 204 and removed.raw == b""
    assert "Content-Type" not in removed.headers, "no body, so no type of one"
    assert [s["name"] for s in call("GET", f"{grid.balancer.url}/substations").body["substations"]] == ["a"]
    after = {call("POST", f"{grid.gateway.url}/initiate_energy_transfer").body["substation"] for _ in range(3)}
    assert after == {"a"}
    assert call("DELETE", f"{grid.balancer.url}/substations/b", headers=auth()).status == 404
    metrics = call("GET", f"{grid.balancer.url}/metrics").raw.decode()
    assert 'substation="b"' not in metrics, "a removed substation's series go"
    wait_until(lambda: view_of(grid, "a")["healthy"])


def test_topology_changes_need_the_token_and_are_off_without_one(services, tmp_path):
    verbose = {"TOPOLOGY_TOKEN": TOKEN, "ACCESS_LOG": "true", "LOG_LEVEL": "debug"}
    grid = services.grid({"a": 150}, substation_env=LONG, balancer_env=verbose)
    body = {"name": "x", "url": "http://127.0.0.1:1"}
    missing = call("POST", f"{grid.balancer.url}/substations", body)
    assert missing.status == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert missing.content_type == "application/problem+json"
    wrong = call("POST", f"{grid.balancer.url}/substations", body, headers=auth("tok-0000000000000000"))
    assert wrong.status == 403
    assert call("DELETE", f"{grid.balancer.url}/substations/a", headers=auth("nope")).status == 403
    invalid = call("POST", f"{grid.balancer.url}/substations", {"name": "bad name"}, headers=auth())
    assert invalid.status == 422 and {e["field"] for e in invalid.body["errors"]} == {"name", "url"}
    assert len(call("GET", f"{grid.balancer.url}/substations").body["substations"]) == 1

    off = services.balancer({"a": grid.substations["a"]})
    refused = call("POST", f"{off.url}/substations", body, headers=auth())
    assert refused.status == 403 and "TOPOLOGY_TOKEN" in refused.body["detail"]

    logs = "".join(path.read_text() for path in tmp_path.glob("*.log"))
    assert '"POST /substations HTTP/1.1" 401' in logs, "the requests were logged"
    assert TOKEN not in logs, "the token never reaches a log"


def test_substations_found_by_dns_take_sessions(services):
    """SUBSTATIONS_DNS: every address of the name is a substation, known by the name it reports."""
    substation = services.substation("found-by-dns", 150, **LONG)
    balancer = services.balancer({}, SUBSTATIONS_DNS=f"localhost:{substation.port}", DISCOVERY_INTERVAL_S="0.2")
    wait_until(lambda: call("GET", f"{balancer.url}/readyz").status == 200, timeout=10)
    assert view_of(balancer, "found-by-dns")["url"] == f"http://127.0.0.1:{substation.port}"
    gateway = services.gateway(balancer.url)
    reply = call("POST", f"{gateway.url}/initiate_energy_transfer")
    assert reply.status == 201 and reply.body["substation"] == "found-by-dns"
