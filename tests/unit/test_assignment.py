"""The assignment loop with a fake substation call: fallback, refusal, failure and deadline."""

import pytest

from grid_common.protocol import SESSION_EXISTS, ChargeRequest
from grid_common.upstream import UpstreamRefused, UpstreamResponse, UpstreamTimeout, UpstreamUnavailable
from load_balancer import metrics
from load_balancer.assignment import (
    MAX_OUTDATED_CHOICES,
    MAX_RETRY_AFTER_S,
    NO_ESTIMATE_RETRY_AFTER_S,
    AdmissionUnknown,
    Assigner,
    NotPlaced,
    SessionExists,
)
from load_balancer.grid_view import GridView
from load_balancer.strategies import LeastUtilization
from tests.helpers import load_report

REQUEST = ChargeRequest("EV-1", 11, 11)


def load(name, capacity=150.0, load_kw=0.0, sequence=100, others_ev_power_kw=None):
    others = load_kw if others_ev_power_kw is None else others_ev_power_kw
    return load_report(
        name, capacity_kw=capacity, load_kw=load_kw, epoch="e", sequence=sequence, others_ev_power_kw=others
    ).to_json()


def make_grid(capacities):
    grid = GridView([(name, f"http://{name}") for name in capacities])
    metrics.initialize(list(capacities), "least_utilization")  # as the app does for the substations it starts with
    for name, capacity in capacities.items():
        grid.apply_report(name, load(name, capacity, sequence=1), now=0)
    return grid


class Admissions:
    """Each substation's scripted answers to begin_charging, and to the look-up of a session (`lookups`, by
    substation); every call is kept in `calls`, every look-up in `looked_up`."""

    def __init__(self, answers, calls, lookups=None):
        self.answers = answers
        self.calls = calls
        self.lookups = lookups or {}
        self.looked_up = []

    def begin_charging(self, url, admission, *, timeout_s, deadline, condition=None):
        name = url.removeprefix("http://")
        allowed_kw = None if condition is None else condition.others_ev_power_at_most
        self.calls.append((name, admission, timeout_s, allowed_kw))
        return _scripted(self.answers, name)

    def session(self, url, session_id, *, timeout_s):
        name = url.removeprefix("http://")
        self.looked_up.append(session_id)
        return _scripted(self.lookups, name)


def _scripted(answers, name):
    answer = answers[name]
    if isinstance(answer, list):  # answers in turn
        answer = answer.pop(0)
    if isinstance(answer, Exception):
        raise answer
    return answer


class WallClock:
    """Wall time for deadlines that moves only when slept on."""

    def __init__(self, now=1_700_000_000.0):
        self.now = now

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def assigner(grid, answers, calls, deadline_s=5.0, clock=None, lookups=None):
    kwargs = {"clock": clock} if clock else {}
    wall = WallClock()
    admissions = Admissions(answers, calls, lookups)
    return Assigner(
        grid,
        LeastUtilization(),
        admissions,
        admission_timeout_s=2,
        deadline_s=deadline_s,
        wall_clock=wall,
        sleep=wall.sleep,
        **kwargs,
    )


def charge_request(**fields):
    return ChargeRequest("EV-1", 11, 11, **fields)


def admitted(name):
    session = {"session_id": f"{name}.0123456789abcdef", "substation": name}
    return UpstreamResponse(201, {"session": session, "load": load(name)}, None)


def refused(name, retry_after="7"):
    return UpstreamResponse(409, {"status": 409, "load": load(name, load_kw=150)}, retry_after)


def test_places_on_the_best_and_names_the_session_after_it():
    grid = make_grid({"a": 150, "b": 300})
    calls = []
    placed = assigner(grid, {"a": admitted("a"), "b": admitted("b")}, calls).assign(REQUEST)
    assert placed.session["substation"] == "b"
    assert calls[0][1]["session_id"].startswith("b.")
    assert grid.get("b").pending_sessions == 0, "the reservation is released once the answer is in"


def test_refused_substation_falls_back_to_the_next_best():
    grid = make_grid({"a": 150, "b": 300})
    calls = []
    placed = assigner(grid, {"a": admitted("a"), "b": refused("b")}, calls).assign(REQUEST)
    assert [c[0] for c in calls] == ["b", "a"]
    assert placed.session["substation"] == "a"
    assert grid.get("b").load_kw == 150, "the refusal's load report updates the view at once"


def test_failures_fall_back_and_mark_the_substation():
    grid = make_grid({"a": 150, "b": 300})
    calls = []
    placed = assigner(grid, {"a": admitted("a"), "b": UpstreamRefused("down")}, calls).assign(REQUEST)
    assert placed.session["substation"] == "a"
    assert not grid.get("b").healthy


def not_found():
    return UpstreamResponse(404, {"status": 404}, None)


def held(name, state="charging"):
    return UpstreamResponse(200, {"session_id": f"{name}.0123456789abcdef", "substation": name, "state": state}, None)


@pytest.mark.parametrize(
    "failure", [UpstreamTimeout("slow"), UpstreamUnavailable("reset"), UpstreamResponse(500, {}, None)]
)
def test_an_admission_without_an_answer_is_looked_up_and_what_it_made_is_the_answer(failure):
    grid = make_grid({"a": 150, "b": 300})
    calls = []
    balancer = assigner(grid, {"a": admitted("a"), "b": failure}, calls, lookups={"b": held("b")})
    placed = balancer.assign(REQUEST)
    assert placed.session["substation"] == "b", "b admitted it before its deadline: that session, not a second"
    assert [c[0] for c in calls] == ["b"]
    assert balancer.admissions.looked_up == [calls[0][1]["session_id"]], "looked up by the id it was sent with"


def test_an_admission_that_a_look_up_after_its_deadline_does_not_find_is_placed_elsewhere():
    grid = make_grid({"a": 150, "b": 300})
    calls = []
    balancer = assigner(grid, {"a": admitted("a"), "b": UpstreamTimeout("slow")}, calls, lookups={"b": not_found()})
    placed = balancer.assign(REQUEST)
    assert placed.session["substation"] == "a"
    assert [c[0] for c in calls] == ["b", "a"]


def test_a_look_up_waits_for_the_admissions_deadline_so_that_its_404_is_for_good():
    grid = make_grid({"a": 150, "b": 300})
    calls, asked_at = [], []
    balancer = assigner(grid, {"a": admitted("a"), "b": UpstreamUnavailable("reset")}, calls)
    sent_at = balancer.wall_clock()

    def look_up(url, session_id, *, timeout_s):
        asked_at.append(balancer.wall_clock())
        return not_found()

    balancer.admissions.session = look_up
    assert balancer.assign(REQUEST).session["substation"] == "a"
    # Asked 2 s: the deadline sent is 1.8 s later, and the look-up waits the clocks' margin beyond it.
    assert asked_at == [pytest.approx(sent_at + 2.0)]


@pytest.mark.parametrize("lookup", [UpstreamTimeout("still slow"), UpstreamResponse(503, {}, None)])
def test_an_admission_whose_outcome_nobody_can_tell_is_placed_nowhere_else(lookup):
    grid = make_grid({"a": 150, "b": 300})
    calls = []
    balancer = assigner(grid, {"a": admitted("a"), "b": UpstreamTimeout("slow")}, calls, lookups={"b": lookup})
    with pytest.raises(AdmissionUnknown) as unknown:
        balancer.assign(REQUEST)
    assert unknown.value.substation == "b" and unknown.value.session_id == calls[0][1]["session_id"]
    assert [c[0] for c in calls] == ["b"], "a is never asked: b may hold the session"
    assert grid.get("b").pending_sessions == 0


def test_a_408_answered_in_time_is_the_substations_clock_not_lateness():
    grid = make_grid({"a": 150})
    calls = []
    balancer = assigner(grid, {}, calls)
    ahead = {"status": 408, "deadline": 0.0, "now": balancer.wall_clock() + 3600}
    balancer.admissions.answers["a"] = UpstreamResponse(408, ahead, None)
    with pytest.raises(NotPlaced) as refusal:
        balancer.assign(REQUEST)
    assert refusal.value.reason == "clock_skew"
    assert "a about 3600.0 s" in refusal.value.detail and "NTP" in refusal.value.detail
    assert grid.get("a").healthy, "its clock, not its health"


def test_all_refusing_gives_no_capacity_with_the_soonest_retry():
    grid = make_grid({"a": 150, "b": 300})
    answers = {"a": refused("a", "9"), "b": refused("b", "4")}
    with pytest.raises(NotPlaced) as caught:
        assigner(grid, answers, []).assign(REQUEST)
    assert caught.value.reason == "no_capacity"
    assert caught.value.retry_after_s == 4
    assert sorted(caught.value.attempts) == ["a", "b"]


def full(name, sequence=1, next_session_end_s=None):
    """A substation where nothing more starts, and when its soonest session ends."""
    return load_report(name, load_kw=150, epoch="e", sequence=sequence, next_session_end_s=next_session_end_s)


@pytest.mark.parametrize(
    ("ends", "retry_after"),
    [
        ({"a": 41.2, "b": 17.5}, 18),  # the soonest end anywhere, in whole seconds, not before it
        ({"a": 5000.0, "b": None}, MAX_RETRY_AFTER_S),  # bounded: the estimate misses sessions stopped early
        ({"a": 0.2, "b": None}, 1),  # never 0, which would invite a hot loop
        ({"a": None, "b": None}, NO_ESTIMATE_RETRY_AFTER_S),  # no session to end: no estimate
    ],
)
def test_when_the_view_shows_every_substation_full_retry_after_is_when_the_soonest_session_ends(ends, retry_after):
    grid = GridView([("a", "http://a"), ("b", "http://b")])
    for name, end in ends.items():
        grid.apply_report(name, full(name, next_session_end_s=end), now=100.0)
    calls = []
    with pytest.raises(NotPlaced) as refusal:
        assigner(grid, {}, calls, clock=lambda: 100.0).assign(REQUEST)
    assert calls == [] and refusal.value.attempts == [], "nothing asked: the view showed every one full"
    assert refusal.value.retry_after_s == retry_after


def test_a_session_end_is_counted_from_when_its_report_came():
    grid = GridView([("a", "http://a")])
    grid.apply_report("a", full("a", next_session_end_s=30), now=100.0)
    with pytest.raises(NotPlaced) as refusal:
        assigner(grid, {}, [], clock=lambda: 112.0).assign(REQUEST)
    assert refusal.value.retry_after_s == 18
    grid.record_failure("a", certain=True)
    assert grid.soonest_session_end_s(112.0) is None, "an unhealthy substation's sessions are no estimate"


def test_all_failing_gives_unavailable():
    grid = make_grid({"a": 150})
    with pytest.raises(NotPlaced) as caught:
        assigner(grid, {"a": UpstreamRefused("down")}, []).assign(REQUEST)
    assert caught.value.reason == "unavailable"


def test_deadline_bounds_the_retries_and_each_call():
    grid = make_grid({"a": 150, "b": 150, "c": 150})
    now = [0.0]

    def clock():
        return now[0]

    calls = []

    def slow_timeout():
        now[0] += 3.0  # each failed call costs 3 s of the 5 s budget, and changes nothing there
        return UpstreamResponse(503, {"status": 503, "title": "Journal unavailable"}, "5")

    class Slow(dict):
        def __getitem__(self, key):
            return slow_timeout()

    with pytest.raises(NotPlaced):
        assigner(grid, Slow(), calls, deadline_s=5.0, clock=clock).assign(REQUEST)
    assert len(calls) == 2, "no third attempt once the deadline has passed"
    assert calls[1][2] <= 2.0


def outdated(name, load_kw, sequence, capacity=150.0):
    report = load(name, capacity, load_kw=load_kw, sequence=sequence)
    return UpstreamResponse(412, {"status": 412, "load": report}, None)


def test_each_admission_states_how_much_other_balancers_sessions_may_draw_for_the_choice_to_stand():
    grid = make_grid({"a": 150, "b": 300})
    grid.apply_report("a", load("a", 150, load_kw=100, sequence=2), now=0)
    grid.apply_report("b", load("b", 300, load_kw=30, sequence=2, others_ev_power_kw=22), now=0)
    grid.reserve("b", 11)  # another request of this balancer, on its way to b: its own, so not in the condition
    calls = []
    assigner(grid, {"a": admitted("a"), "b": admitted("b")}, calls).assign(REQUEST)
    # b stays the better choice until it draws a's utilization, 100/150 of its 300 kW: 200 kW, of which
    # 41 are committed (30 reported + 11 in flight). Others may add 159 kW to the 22 they draw, and a
    # session (11 kW) of tolerance.
    assert calls[0][0] == "b" and calls[0][3] == pytest.approx(22 + 200 - 41 + 11)


def test_an_outdated_choice_is_made_again_with_the_fresh_load():
    grid = make_grid({"a": 150, "b": 150})
    first = next(grid.ranked()).name
    other = "b" if first == "a" else "a"
    calls = []
    before = metrics.OUTDATED_CHOICES.labels(first)._value.get()
    # Another replica filled `first` to 44 kW meanwhile: it declines, and the balancer goes to `other`.
    answers = {first: outdated(first, 44, sequence=5), other: admitted(other)}
    placed = assigner(grid, answers, calls).assign(REQUEST)
    assert [c[0] for c in calls] == [first, other]
    assert placed.session["substation"] == other
    assert grid.get(first).load_kw == 44 and grid.get(first).pending_sessions == 0
    assert metrics.OUTDATED_CHOICES.labels(first)._value.get() == before + 1


def test_an_outdated_substation_stays_a_candidate_when_it_is_still_the_best():
    grid = make_grid({"a": 150, "b": 300})
    grid.apply_report("a", load("a", 150, load_kw=30, sequence=2), now=0)
    calls = []
    # b (0 of 300 kW) stays ahead of a (20 %) up to 60 kW, 71 with a session of tolerance. Another replica's
    # sessions took it past that (the fake says 22 kW, as if the condition had been tighter): still ahead,
    # so b is asked again.
    answers = {"b": [outdated("b", 22, sequence=5, capacity=300), admitted("b")], "a": admitted("a")}
    placed = assigner(grid, answers, calls).assign(REQUEST)
    assert [(c[0], c[3]) for c in calls] == [("b", 71), ("b", 71)], "22 kW drawn, 38 more to a's 20 %, 11"
    assert placed.session["substation"] == "b"


def test_after_a_few_outdated_choices_the_balancer_asks_without_a_condition():
    grid = make_grid({"a": 150, "b": 150})
    grid.apply_report("b", load("b", 150, load_kw=100, sequence=2), now=0)
    answers = {"a": [outdated("a", 11 * n, sequence=10 + n) for n in range(1, 10)]}
    answers["a"].insert(MAX_OUTDATED_CHOICES, admitted("a"))
    calls = []
    assigner(grid, answers, calls).assign(REQUEST)
    believed = [c[3] for c in calls]
    assert len(believed) == MAX_OUTDATED_CHOICES + 1
    assert None not in believed[:-1] and believed[-1] is None, "bounded: contention cannot starve a request"


def test_with_no_other_choice_an_admission_has_no_condition():
    grid = make_grid({"a": 150})
    calls = []
    assigner(grid, {"a": admitted("a")}, calls).assign(REQUEST)
    assert calls[0][3] is None, "whatever other balancers placed there, a is the only place it can go"


def queued(name):
    session = {"session_id": f"{name}.0123456789abcdef", "substation": name, "state": "queued"}
    return UpstreamResponse(202, {"session": session, "load": load(name)}, None)


def test_a_request_that_may_wait_is_queued_where_it_should_start_soonest():
    grid = GridView([("a", "http://a"), ("b", "http://b")])
    grid.apply_report("a", load_report("a", capacity_kw=150, load_kw=150, estimated_start_s=(30, 30, 30, 30)), now=0)
    grid.apply_report("b", load_report("b", capacity_kw=150, load_kw=150, estimated_start_s=(12, 12, 12, 12)), now=0)
    calls = []
    placed = assigner(grid, {"b": queued("b"), "a": queued("a")}, calls).assign(charge_request(wait=True))
    assert placed.queued and placed.session["substation"] == "b"
    assert [(name, admission["wait"]) for name, admission, *_ in calls] == [("b", True)], "no room to start anywhere"


def test_a_request_that_may_wait_is_counted_in_flight_too_for_it_may_start_at_once():
    grid = GridView([("a", "http://a")])
    full = load_report("a", load_kw=150, estimated_start_s=(0.5,) * 4, started_for_you=3)
    grid.apply_report("a", full, now=0)
    in_flight = []

    class RoomCame:
        def begin_charging(self, url, admission, *, timeout_s, deadline, condition=None):
            in_flight.append(grid.get("a").pending_sessions)
            session = {"session_id": admission["session_id"], "substation": "a"}
            started = load_report("a", load_kw=150, sequence=2, started_for_you=4)
            return UpstreamResponse(201, {"session": session, "load": started.to_json()}, None)

    assigner = Assigner(grid, LeastUtilization(), RoomCame(), admission_timeout_s=2, deadline_s=5)
    placed = assigner.assign(charge_request(wait=True))
    assert not placed.queued and in_flight == [1], "its power was counted while the call was under way"
    assert grid.get("a").pending_sessions == 0 and grid.get("a").started_heard == 4


def test_a_request_that_may_not_wait_is_refused_when_nothing_starts_it():
    grid = GridView([("a", "http://a")])
    grid.apply_report("a", load_report("a", capacity_kw=150, load_kw=150), now=0)
    with pytest.raises(NotPlaced) as refusal:
        assigner(grid, {"a": queued("a")}, []).assign(charge_request())
    assert refusal.value.reason == "no_capacity"


def test_a_full_queue_sends_the_request_to_the_next_soonest():
    grid = GridView([("a", "http://a"), ("b", "http://b")])
    grid.apply_report("a", load_report("a", load_kw=150, estimated_start_s=(5, 5, 5, 5)), now=0)
    grid.apply_report("b", load_report("b", load_kw=150, estimated_start_s=(9, 9, 9, 9)), now=0)
    calls = []
    placed = assigner(grid, {"a": refused("a"), "b": queued("b")}, calls).assign(charge_request(wait=True))
    assert placed.session["substation"] == "b" and [c[0] for c in calls] == ["a", "b"]


TOKEN = "reusedtoken0001"


def exists(name):
    body = {"status": 409, "reason": SESSION_EXISTS, "session_id": f"{name}.{TOKEN}"}
    return UpstreamResponse(409, body, None)


def test_a_session_id_a_substation_holds_for_another_request_ends_the_assignment():
    grid = make_grid({"a": 150, "b": 300})
    calls = []
    with pytest.raises(SessionExists) as caught:
        assigner(grid, {"b": exists("b"), "a": admitted("a")}, calls).assign(REQUEST, token=TOKEN)
    assert caught.value.session_id == f"b.{TOKEN}"
    assert [c[0] for c in calls] == ["b"], "not sent on to start a second session under the token"
    assert grid.get("b").healthy and grid.get("b").consecutive_failures == 0, "an answer, not a failure"


def test_a_token_this_balancer_placed_goes_back_to_its_substation():
    grid = make_grid({"a": 150, "b": 300})
    calls = []
    busy_b = UpstreamResponse(201, {"session": admitted("b").body["session"], "load": load("b", 300, 290, 5)}, None)
    balancer = assigner(grid, {"b": [busy_b, exists("b")], "a": admitted("a")}, calls)
    assert balancer.assign(REQUEST, token=TOKEN).session["substation"] == "b"
    assert next(grid.ranked()).name == "a", "a would be the choice now"
    with pytest.raises(SessionExists):
        balancer.assign(ChargeRequest("EV-2", 11, 11), token=TOKEN)
    assert [c[0] for c in calls] == ["b", "b"]
    assert calls[1][1]["session_id"] == calls[0][1]["session_id"]
    assert calls[1][3] is None, "no condition: load did not make this choice"


def test_a_token_whose_substation_no_longer_holds_it_is_placed_as_any_other():
    grid = make_grid({"a": 150, "b": 300})
    calls = []
    balancer = assigner(grid, {"b": [admitted("b"), refused("b")], "a": admitted("a")}, calls)
    balancer.assign(REQUEST, token=TOKEN)
    assert balancer.assign(REQUEST, token=TOKEN).session["substation"] == "a"
    assert [c[0] for c in calls] == ["b", "b", "a"]


def test_a_token_whose_substation_does_not_answer_is_placed_nowhere_else():
    grid = make_grid({"a": 150, "b": 300})
    calls = []
    lookups = {"b": UpstreamTimeout("slow")}
    balancer = assigner(
        grid, {"b": [admitted("b"), UpstreamTimeout("slow")], "a": admitted("a")}, calls, lookups=lookups
    )
    balancer.assign(REQUEST, token=TOKEN)
    with pytest.raises(AdmissionUnknown) as unknown:
        balancer.assign(REQUEST, token=TOKEN)
    assert unknown.value.substation == "b" and unknown.value.session_id == f"b.{TOKEN}"
    assert [c[0] for c in calls] == ["b", "b"], "b may hold the session: a second one elsewhere is not made"


def test_a_token_whose_substation_is_down_is_placed_nowhere_else():
    grid = make_grid({"a": 150, "b": 300})
    calls = []
    balancer = assigner(grid, {"b": [admitted("b"), UpstreamRefused("down")], "a": admitted("a")}, calls)
    balancer.assign(REQUEST, token=TOKEN)
    with pytest.raises(AdmissionUnknown):
        balancer.assign(REQUEST, token=TOKEN)
    assert [c[0] for c in calls] == ["b", "b"], "it holds the session, as far as this balancer knows"


def test_without_a_token_nothing_is_sent_back_anywhere():
    grid = make_grid({"a": 150, "b": 300})
    calls = []
    balancer = assigner(grid, {"b": [admitted("b"), refused("b")], "a": admitted("a")}, calls)
    balancer.assign(REQUEST)
    grid.apply_report("b", load("b", 300, 290, 50), now=0)
    assert balancer.assign(REQUEST).session["substation"] == "a"
    assert [c[0] for c in calls] == ["b", "a"]
