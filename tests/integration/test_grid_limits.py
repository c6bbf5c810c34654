"""The grid operator's limit on a real substation process: only with its token, applied within one allocation
step, shown in /load and /metrics while in force, and lapsed back to the rated capacity at its end."""

from __future__ import annotations

import signal
import time

from tests.helpers import call, metric_value, wait_until

TOKEN = "a-grid-operator-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
STEP_S = 0.2


def metric(url: str, name: str) -> float | None:
    return metric_value(call("GET", f"{url}/metrics").raw.decode(), name, substation="s")


def allocated(url: str, session_ids: list[str]) -> list[float]:
    return [call("GET", f"{url}/sessions/{key}").body["allocated_kw"] for key in session_ids]


def test_a_curtailment_window_holds_within_a_step_and_lapses_back_to_the_rated_capacity(services):
    substation = services.substation("s", 100, GRID_LIMIT_TOKEN=TOKEN, ALLOCATION_STEP_S=str(STEP_S), TIME_SCALE="1")
    url = substation.url
    body = {"energy_kwh": 200, "max_power_kw": 22, "min_power_kw": 6, "wait": True}
    ids = [call("POST", f"{url}/begin_charging", {**body, "priority": p}).body["session"]["session_id"]
           for p in (1, 0, 0, 0)]  # fmt: skip
    assert sum(allocated(url, ids)) == 88.0, "four cars at their maximum under 100 kW"

    assert call("PUT", f"{url}/grid_limit", {"limit_kw": 20, "duration_s": 3}).status == 401
    wrong = call("PUT", f"{url}/grid_limit", {"limit_kw": 20, "duration_s": 3}, headers={"Authorization": "Bearer x"})
    assert wrong.status == 403 and wrong.content_type == "application/problem+json"
    invalid = call("PUT", f"{url}/grid_limit", {"periods": [{"start": "2026-12-07T10:00:00", "end": "x",
                                                              "limit_kw": 1}]}, headers=AUTH)  # fmt: skip
    assert invalid.status == 422 and invalid.body["errors"][0]["field"] == "periods[0].start"

    set_at = time.monotonic()
    answer = call("PUT", f"{url}/grid_limit", {"limit_kw": 20, "duration_s": 3}, headers=AUTH)
    assert answer.status == 200 and answer.body["limit_in_force_kw"] == 20 and len(answer.body["periods"]) == 1
    shares = allocated(url, ids)
    assert sum(shares) <= 20 + 1e-6, "held from the answer on, not a step later"
    assert shares[0] > 0 and shares.count(0.0) == 1, "three minimums of 6 kW fit: the newest car waits"
    load = call("GET", f"{url}/load").body
    assert load["grid_limit_kw"] == 20 and load["ev_power_kw"] + load["background_kw"] <= 20 + 1e-6
    assert metric(url, "substation_grid_limit_watts") == 20_000
    assert metric(url, "substation_grid_limit_changes_total") == 1

    wait_until(lambda: sum(allocated(url, ids)) == 88.0, timeout=3 + 3 * STEP_S + 2)
    assert time.monotonic() - set_at >= 3 - STEP_S, "not before its end (less the step it looks ahead)"
    load = call("GET", f"{url}/load").body
    assert "grid_limit_kw" not in load
    assert metric(url, "substation_grid_limit_watts") is None
    assert metric(url, "substation_overload_seconds_total") == 0
    assert call("GET", f"{url}/grid_limit").body["periods"] == []


def test_grid_limits_are_off_without_a_token(services):
    substation = services.substation("s", 100)
    refused = call("PUT", f"{substation.url}/grid_limit", {"limit_kw": 20, "duration_s": 3}, headers=AUTH)
    assert refused.status == 403 and "GRID_LIMIT_TOKEN" in refused.body["detail"]
    assert call("GET", f"{substation.url}/grid_limit").body["limit_in_force_kw"] is None


def test_a_schedule_that_cannot_be_kept_is_a_problem_and_changes_nothing(services):
    substation = services.substation("s", 100, GRID_LIMIT_TOKEN=TOKEN)
    url = f"{substation.url}/grid_limit"
    far = {"periods": [{"start": "2026-01-01T00:00:00Z", "end": "9999-12-31T23:59:59-12:00", "limit_kw": 10}]}
    for body in ({"limit_kw": 10**400, "duration_s": 10}, {"limit_kw": 10, "duration_s": True}, far,
                 {"limit_kw": 10, "duration_s": 10, "extra": 1}):  # fmt: skip
        refused = call("PUT", url, body, headers=AUTH)
        assert refused.status == 422 and refused.content_type == "application/problem+json", (body, refused.body)
    assert call("GET", url).body == {**call("GET", url).body, "periods": [], "changes": 0}
    assert call("HEAD", url).status == 200, "reading is open, HEAD as GET"


def test_a_substation_killed_and_restarted_holds_the_limit_it_was_given(services, tmp_path):
    journal = str(tmp_path / "s.sqlite3")
    substation = services.substation("s", 100, GRID_LIMIT_TOKEN=TOKEN, SESSION_DB=journal, TIME_SCALE="1")
    car = call("POST", f"{substation.url}/begin_charging", {"energy_kwh": 200, "max_power_kw": 22, "min_power_kw": 6})
    session_id = car.body["session"]["session_id"]
    set_to = call("PUT", f"{substation.url}/grid_limit", {"limit_kw": 10, "duration_s": 600}, headers=AUTH).body
    substation.process.signal(signal.SIGKILL)
    substation.process.process.wait()
    substation.process.start().wait_healthy()
    after = call("GET", f"{substation.url}/grid_limit").body
    assert after["periods"] == set_to["periods"] and after["limit_in_force_kw"] == 10
    assert call("GET", f"{substation.url}/sessions/{session_id}").body["allocated_kw"] == 10
