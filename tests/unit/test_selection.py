"""Selection strategies and the balancer's view: pure domain, no Flask, no network."""

import random

import pytest

from grid_common.protocol import DEFAULT_MIN_POWER_KW, LoadReport, MalformedReport
from load_balancer.grid_view import GridView
from load_balancer.poller import due_for_poll
from load_balancer.strategies import LeastUtilization, MostPower, Random, RoundRobin
from tests.helpers import charge, load_report


def wants(max_power_kw: float):
    """A request for up to this power."""
    return charge(max_power_kw=max_power_kw)


def report(capacity=150.0, load=0.0, active=0, epoch="e1", sequence=1, charger=22, others=None, name="s1") -> dict:
    """A load report as it comes off the wire."""
    return load_report(
        name,
        capacity_kw=capacity, load_kw=load, active_sessions=active, charger_max_power_kw=charger, epoch=epoch,
        sequence=sequence, others_ev_power_kw=others,
    ).to_json()  # fmt: skip


def grid_of(*substations) -> GridView:
    """A view of (name, capacity, load) substations, all healthy."""
    grid = GridView([(name, f"http://{name}") for name, *_ in substations])
    for name, capacity, *rest in substations:
        grid.apply_report(name, report(capacity=capacity, load=rest[0] if rest else 0.0, name=name), now=0)
    return grid


def test_least_utilization_picks_the_lowest_utilization_with_ties_to_the_largest():
    assert LeastUtilization().choose(grid_of(("small", 150), ("big", 300)), wants(11)).name == "big"
    assert LeastUtilization().choose(grid_of(("small", 150), ("big", 300, 200)), wants(11)).name == "small"
    assert LeastUtilization().choose(grid_of(("small", 150, 30), ("big", 300, 75)), wants(11)).name == "small"


def test_least_utilization_skips_substations_without_room_and_excluded_ones():
    grid = grid_of(("nearly_full", 20, 5), ("roomy", 100, 47))  # 25 % but only 15 kW left, vs 47 %
    assert LeastUtilization().choose(grid, wants(11)).name == "nearly_full"
    assert LeastUtilization().choose(grid, wants(22)).name == "roomy"
    assert LeastUtilization().choose(grid, wants(11), {"nearly_full"}).name == "roomy"
    assert LeastUtilization().choose(grid, wants(22), {"roomy"}) is None


def test_ties_break_by_session_count_then_name():
    grid = GridView([("b", "u"), ("a", "u"), ("c", "u")])
    grid.apply_report("a", {**report(name="a"), "active_sessions": 2}, now=0)
    grid.apply_report("b", report(name="b"), now=0)
    grid.apply_report("c", report(name="c"), now=0)
    strategy = LeastUtilization()
    assert strategy.choose(grid, wants(11)).name == "b"
    assert strategy.choose(grid, wants(11), {"b"}).name == "c", "fewer sessions before the name"


def test_pending_sessions_spread_a_burst_evenly():
    """Decisions made before any answer returns must still spread: in-flight power counts."""
    grid = grid_of(("s1", 150), ("s2", 150), ("s3", 150))
    strategy = LeastUtilization()
    for _ in range(30):
        grid.reserve(strategy.choose(grid, wants(11)).name, 11)
    assert sorted(v.pending_sessions for v in grid.all()) == [10, 10, 10]


def test_burst_over_unequal_capacities_stays_within_one_session_share():
    grid = grid_of(("s1", 150), ("s2", 150), ("s3", 300))
    strategy = LeastUtilization()
    for _ in range(33):
        grid.reserve(strategy.choose(grid, wants(11)).name, 11)
    utilizations = [v.pending_kw / v.capacity_kw for v in grid.all()]
    assert max(utilizations) - min(utilizations) <= 11 / 150 + 1e-9
    assert grid.get("s3").pending_sessions in (16, 17), "the 300 kW substation takes about twice the sessions"


def test_down_substations_are_never_chosen():
    grid = grid_of(("a", 100), ("b", 300))
    grid.record_failure("b", certain=True)
    assert {LeastUtilization().choose(grid, wants(11)).name for _ in range(3)} == {"a"}
    assert {RoundRobin().choose(grid, wants(11)).name for _ in range(3)} == {"a"}
    assert {Random(random.Random(1)).choose(grid, wants(11)).name for _ in range(10)} == {"a"}


def test_a_substation_that_says_it_is_draining_gets_nothing_new_until_a_report_says_otherwise():
    grid = grid_of(("a", 100), ("b", 300))
    grid.apply_report("b", {**report(name="b", capacity=300, sequence=2), "draining": True}, now=1)
    assert {LeastUtilization().choose(grid, wants(11)).name for _ in range(3)} == {"a"}, "b is shutting down"
    assert {MostPower().choose(grid, wants(11)).name for _ in range(3)} == {"a"}
    assert grid.healthy_count() == 1
    grid.apply_report("b", report(name="b", capacity=300, epoch="restarted"), now=2)
    assert LeastUtilization().choose(grid, wants(11)).name == "b", "back, as a new process"


def test_round_robin_cycles_and_skips_full_ones():
    grid = grid_of(("a", 100), ("b", 100, 95), ("c", 100))
    strategy = RoundRobin()
    assert [strategy.choose(grid, wants(11)).name for _ in range(4)] == ["a", "c", "a", "c"]


def test_random_only_picks_substations_with_room_and_is_roughly_uniform():
    grid = grid_of(("a", 100), ("b", 100, 95), ("c", 100))
    strategy = Random(random.Random(7))
    picks = [strategy.choose(grid, wants(11)).name for _ in range(600)]
    assert set(picks) == {"a", "c"}
    assert 240 <= picks.count("a") <= 360


def test_power_is_capped_by_each_substations_charger():
    grid = GridView([("slow", "u")])
    grid.apply_report("slow", report(name="slow", capacity=100, charger=7), now=0)
    assert grid.get("slow").power_for(11) == 7


def test_the_ranking_stays_sorted_through_every_kind_of_change():
    grid = grid_of(*[(f"s{i}", 100 + 10 * (i % 3), i) for i in range(30)])
    rng = random.Random(3)
    for step in range(500):
        name = f"s{rng.randrange(30)}"
        action = rng.randrange(4)
        if action == 0:
            grid.reserve(name, 11)
        elif action == 1 and grid.get(name).pending_sessions:
            grid.release(name, 11)
        elif action == 2:
            grid.apply_report(
                name, report(capacity=120, load=rng.uniform(0, 100), sequence=step + 2, name=name), now=step
            )
        else:
            grid.record_failure(name, certain=True)
    ranked = list(grid.ranked())
    assert [v.rank_key() for v in ranked] == sorted(v.rank_key() for v in ranked)
    assert {v.name for v in ranked} == {v.name for v in grid.all() if v.healthy and v.could_start_any()}
    assert grid.healthy_count() == sum(v.healthy for v in grid.all())
    assert any(v.healthy and not v.could_start_any() for v in grid.all()), "full ones were there, unranked"


def test_full_substations_wait_outside_the_rankings_so_a_decision_does_not_walk_past_them():
    grid = grid_of(*[(f"full{i}", 100, 100) for i in range(1000)], ("roomy", 100, 50))
    assert [s.name for s in grid.ranked()] == ["roomy"]
    assert grid.healthy_count() == 1001
    assert MostPower().choose(grid, wants(11)).name == "roomy"
    grid.apply_report("full7", report(name="full7", capacity=100, load=10, sequence=2), now=1)
    assert [s.name for s in grid.ranked()] == ["full7", "roomy"], "room again: ranked again"


def test_view_ignores_reports_older_than_the_last_applied():
    grid = GridView([("s1", "u1")])
    assert grid.apply_report("s1", report(name="s1", load=11, sequence=5), now=1)
    assert not grid.apply_report("s1", report(name="s1", load=0, sequence=4), now=2), (
        "a stale poll must not undo an admission"
    )
    assert grid.get("s1").load_kw == 11
    assert grid.apply_report("s1", report(name="s1", load=0, epoch="restarted", sequence=1), now=3), (
        "a restarted process"
    )
    assert grid.get("s1").load_kw == 0


def test_view_marks_unhealthy_after_failures_and_heals_on_report():
    grid = GridView([("s1", "u1")], unhealthy_after_failures=2)
    grid.apply_report("s1", report(name="s1"), now=0)
    grid.record_failure("s1")
    assert grid.get("s1").healthy, "one timeout may be a blip"
    grid.record_failure("s1")
    assert not grid.get("s1").healthy
    assert list(grid.ranked()) == [] and grid.healthy_count() == 0
    grid.apply_report("s1", report(name="s1", sequence=2), now=1)
    assert grid.get("s1").healthy
    grid.record_failure("s1", certain=True)
    assert not grid.get("s1").healthy, "connection refused is certain"


def test_view_rejects_malformed_reports():
    grid = GridView([("s1", "u1")])
    for bad in [None, [], {"capacity_kw": 1}, {**report(), "capacity_kw": 0}, {**report(), "capacity_kw": "x"},
                {**report(), "sequence": 10**400}, {**report(), "name": "not a name"},
                report(name="another-substation")]:  # fmt: skip
        with pytest.raises(MalformedReport):
            grid.apply_report("s1", bad, now=0)


def test_reserve_and_release_balance():
    grid = GridView([("s1", "u1")])
    grid.reserve("s1", 11)
    grid.reserve("s1", 22)
    grid.release("s1", 11)
    assert grid.get("s1").pending_kw == pytest.approx(22)
    grid.release("s1", 22)
    assert grid.get("s1").pending_kw == 0 and grid.get("s1").pending_sessions == 0


def test_sessions_in_flight_that_a_report_already_counts_are_not_counted_twice():
    grid = GridView([("s1", "u1")])
    grid.apply_report("s1", load_report("s1", sequence=1, started_for_you=5), now=0)
    grid.reserve("s1", 11)
    grid.reserve("s1", 11)
    assert grid.get("s1").committed_kw == 22, "neither admitted yet, as far as the view knows"
    # The first answer's report counts both: the second was admitted before the first's answer was written.
    grid.apply_report("s1", load_report("s1", load_kw=22, sequence=3, started_for_you=7), now=1)
    assert grid.get("s1").committed_kw == 22 and grid.get("s1").uncounted_sessions == 0
    grid.release("s1", 11, started=True)
    assert grid.get("s1").committed_kw == 22
    # The second's answer is older than the report applied: ignored, and its session stays counted once.
    assert not grid.apply_report("s1", load_report("s1", load_kw=11, sequence=2, started_for_you=6), now=2)
    grid.release("s1", 11, started=True)
    assert grid.get("s1").committed_kw == 22 and grid.get("s1").started_heard == 7


def test_a_restarted_substation_counts_sessions_in_flight_until_none_is_left():
    grid = GridView([("s1", "u1")])
    grid.apply_report("s1", load_report("s1", started_for_you=5), now=0)
    grid.reserve("s1", 11)
    grid.apply_report("s1", load_report("s1", epoch="e2", load_kw=11, started_for_you=1), now=1)
    assert grid.get("s1").committed_kw == 22, "a new epoch's count says nothing of what was sent before it"
    grid.release("s1", 11, started=True)
    assert (grid.get("s1").tally_epoch, grid.get("s1").started_heard) == ("e2", 1)
    grid.reserve("s1", 11)
    grid.apply_report("s1", load_report("s1", epoch="e2", load_kw=22, sequence=2, started_for_you=2), now=2)
    assert grid.get("s1").committed_kw == 22, "counted exactly again"


@pytest.mark.parametrize("seed", range(20))
def test_in_flight_accounting_counts_every_session_exactly_once_in_any_order_of_answers(seed):
    """A balancer's requests to one substation, admitted and answered in any order, with polls that arrive
    late: what the view counts is what its last report counted plus what it sent that the report did not."""
    rng = random.Random(seed)
    grid = GridView([("s1", "u1")])
    admitted, sequence = 0, 1
    grid.apply_report("s1", load_report("s1", capacity_kw=10_000, sequence=sequence, started_for_you=0), now=0)
    unadmitted: list[int] = []
    answers: list[tuple[int, dict]] = []  # (request, the report its answer carries)
    polls: list[dict] = []
    applied = {"sequence": sequence, "admitted": 0}
    admitted_at: dict[int, int] = {}  # request -> the count of admissions when it was admitted
    for step in range(400):
        event = rng.randrange(5)
        if event == 0:
            request = step
            unadmitted.append(request)
            grid.reserve("s1", 11)
        elif event == 1 and unadmitted:
            request = unadmitted.pop(rng.randrange(len(unadmitted)))
            admitted, sequence = admitted + 1, sequence + 1
            admitted_at[request] = admitted
            answers.append((request, {"sequence": sequence, "admitted": admitted}))
        elif event == 2 and answers:
            request, body = answers.pop(rng.randrange(len(answers)))
            if grid.apply_report("s1", snapshot(body), now=step):
                applied = body
            grid.release("s1", 11, started=True)
            del admitted_at[request]
        elif event == 3:
            sequence += 1
            polls.append({"sequence": sequence, "admitted": admitted})
        elif event == 4 and polls:
            body = polls.pop(rng.randrange(len(polls)))
            if grid.apply_report("s1", snapshot(body), now=step):
                applied = body
        in_flight_not_in_report = len(unadmitted) + sum(at > applied["admitted"] for at in admitted_at.values())
        assert grid.get("s1").committed_kw == pytest.approx(11 * (applied["admitted"] + in_flight_not_in_report))


def snapshot(body: dict) -> LoadReport:
    return load_report(
        "s1", capacity_kw=10_000, load_kw=11 * body["admitted"], sequence=body["sequence"],
        started_for_you=body["admitted"],
    )  # fmt: skip


def test_only_substations_not_refreshed_within_the_interval_are_polled():
    grid = grid_of(("fresh", 100), ("stale", 100), ("down", 100))
    grid.get("fresh").updated_at, grid.get("stale").updated_at = 10.5, 9.0
    grid.record_failure("down", certain=True)
    grid.get("down").updated_at = 10.9
    due = [v.name for v in grid.all() if due_for_poll(v, now=11.0, interval_s=1.0)]
    assert due == ["stale", "down"], "an admission answer 0.5 s ago is as good as a poll; a down one is always polled"
    assert due_for_poll(GridView([("new", "u")]).get("new"), now=0, interval_s=1), "never heard from"


def test_substations_can_join_and_leave_at_run_time():
    grid = grid_of(("a", 100))
    added = grid.add("b", "http://b:5000")
    assert not added.healthy and [v.name for v in grid.all()] == ["a", "b"], "unhealthy until its first report"
    grid.apply_report("b", report(name="b", capacity=300), now=1)
    assert LeastUtilization().choose(grid, wants(11)).name == "b"
    with pytest.raises(KeyError):
        grid.add("b", "http://elsewhere")
    grid.reserve("b", 11)
    grid.remove("b")
    assert [v.name for v in grid.all()] == ["a"] and LeastUtilization().choose(grid, wants(11)).name == "a"
    # Calls to it that were under way end quietly.
    grid.release("b", 11)
    grid.record_failure("b")
    assert not grid.apply_report("b", report(name="b", sequence=9), now=2)
    with pytest.raises(KeyError):
        grid.remove("b")


def test_a_least_utilization_choice_stands_until_others_push_it_a_session_past_the_runner_up():
    grid = GridView([("a", "http://a"), ("b", "http://b"), ("c", "http://c")])
    grid.apply_report("a", {**report(name="a", capacity=300, load=30), "others_ev_power_kw": 20}, now=0)  # 10 %
    grid.apply_report("b", {**report(name="b", capacity=100, load=25), "others_ev_power_kw": 0}, now=0)  # 25 %
    grid.apply_report(
        "c", {**report(name="c", capacity=100, load=90), "others_ev_power_kw": 0}, now=0
    )  # 90 %, 10 kW left
    strategy = LeastUtilization()
    chosen = strategy.choose(grid, wants(11))
    assert chosen.name == "a"
    # a ranks first until it draws b's 25 % of 300 kW = 75 kW: others may add 45 kW to their 20, and one
    # session (11 kW) more of tolerance.
    assert strategy.admission_condition(grid, chosen, wants(11)).others_ev_power_at_most == pytest.approx(
        20 + 75 - 30 + 11
    )
    # c has no room for 11 kW and b is excluded: a is the only place, whatever others put there.
    assert strategy.admission_condition(grid, chosen, wants(11), exclude={"b"}) is None
    grid.apply_report("b", report(name="b", capacity=100, load=5, sequence=2), now=0)  # 5 %: b is chosen now
    condition = strategy.admission_condition(grid, grid.get("a"), wants(11))
    assert condition.others_ev_power_at_most == 20 + 11, "a past the runner-up already"


def test_load_blind_strategies_need_no_condition_and_neither_does_a_silent_substation():
    grid = grid_of(("a", 150), ("b", 150))
    for strategy in (RoundRobin(), Random(random.Random(1))):
        assert strategy.admission_condition(grid, grid.get("a"), wants(11)) is None
    assert LeastUtilization().admission_condition(grid, grid.get("a"), wants(11)) is None, "no others_ev_power_kw"


def sharing(name, capacity, charging, *, queued=0, paused=0, priority_queue=None, charger=22.0, others=None):
    """A fair-sharing substation's report: `charging` sessions of 11 kW maximum and the default minimum sharing
    `capacity`."""
    ev_kw = min(capacity, charging * 11.0)
    spare = capacity - ev_kw
    excess = ev_kw - charging * DEFAULT_MIN_POWER_KW
    return load_report(
        name, capacity_kw=capacity, load_kw=ev_kw, active_sessions=charging + paused, charger_max_power_kw=charger,
        allocation="fair", committed_kw=(charging + paused) * DEFAULT_MIN_POWER_KW, paused_sessions=paused,
        queued_sessions=queued,
        queue_by_priority=priority_queue or (queued, 0, 0, 0), shareable_kw=(spare + excess,) * 4,
        sharing_sessions=(charging,) * 4, others_sessions=others, others_ev_power_kw=None if others is None else 0.0,
    )  # fmt: skip


def fair_grid(*reports) -> GridView:
    grid = GridView([(r.name, f"http://{r.name}") for r in reports])
    for report_ in reports:
        grid.apply_report(report_.name, report_, now=0)
    return grid


def test_most_power_sends_a_session_where_a_newcomer_would_get_the_most():
    grid = fair_grid(sharing("crowded", 44, 8), sharing("quiet", 44, 6), sharing("big", 88, 20))
    assert grid.get("crowded").offered_kw(0) == pytest.approx(44 / 9)
    assert MostPower().choose(grid, wants(11)).name == "quiet", "44/7 beats 44/9 and 88/21"
    assert MostPower().choose(grid, wants(11), {"quiet"}).name == "crowded"


def test_most_power_counts_sessions_in_flight_so_a_burst_spreads():
    grid = fair_grid(sharing("a", 44, 6), sharing("b", 44, 6))
    strategy = MostPower()
    for _ in range(10):
        chosen = strategy.choose(grid, wants(11))
        grid.reserve(chosen.name, 11, 1.4)
    assert [grid.get(n).pending_sessions for n in "ab"] == [5, 5]


def test_with_full_power_everywhere_most_power_goes_by_utilization():
    grid = fair_grid(sharing("small", 150, 2), sharing("large", 300, 2))
    assert grid.get("small").offered_kw(0) == 22 and grid.get("large").offered_kw(0) == 22
    assert MostPower().choose(grid, wants(11)).name == "large", "the least utilized, as least_utilization"


def test_most_power_waits_behind_paused_and_queued_sessions_of_its_priority_or_higher():
    grid = fair_grid(sharing("paused", 44, 2, paused=1), sharing("queued", 44, 2, queued=1), sharing("ok", 22, 4))
    assert MostPower().choose(grid, wants(11)).name == "ok"
    grid = fair_grid(sharing("low-queue", 44, 2, queued=1), sharing("ok", 22, 4))
    assert MostPower().choose(grid, charge(priority=1)).name == "low-queue", "a higher priority goes first"
    assert MostPower().choose(grid, charge(min_power_kw=30, max_power_kw=30)) is None, "no charger gives 30 kW"


def test_a_most_power_choice_stands_until_others_place_as_many_sessions_as_keep_it_ahead_plus_one():
    grid = fair_grid(sharing("a", 44, 3, others=2), sharing("b", 44, 10, others=0))
    strategy = MostPower()
    chosen = strategy.choose(grid, wants(11))
    assert chosen.name == "a" and chosen.offered_kw(0) == 11
    # b offers 44/11 = 4 kW; a stays ahead while 44/(4 + j) >= 4, j <= 7: seven more, and one of tolerance.
    condition = strategy.admission_condition(grid, chosen, wants(11))
    assert condition.others_sessions_at_most == 2 + 7 + 1 and condition.others_ev_power_at_most is None
    assert strategy.admission_condition(grid, chosen, wants(11), exclude={"b"}) is None, "no runner-up"


@pytest.mark.parametrize("strategy", [MostPower(), LeastUtilization()], ids=lambda s: s.name)
def test_a_pick_in_one_pass_is_the_choice_and_the_condition_asked_apart(strategy):
    """The assigner's pick walks the ranking once for the choice and its runner-up; it must give what
    choose and admission_condition give, on grids of every kind, sessions in flight and exclusions included."""
    rng = random.Random(7)
    for _ in range(300):
        reports = [
            sharing(f"s{i}", rng.choice((22, 44, 88, 150)), rng.randrange(0, 12), others=rng.choice((None, 0, 2)))
            for i in range(rng.randrange(1, 6))
        ]
        grid = fair_grid(*reports)
        for _ in range(rng.randrange(0, 4)):
            grid.reserve(rng.choice(reports).name, 11, 1.4)
        exclude = {r.name for r in reports if rng.random() < 0.2}
        request = charge(max_power_kw=11, priority=rng.randrange(0, 2))
        chosen = strategy.choose(grid, request, exclude)
        expected = None if chosen is None else (chosen, strategy.admission_condition(grid, chosen, request, exclude))
        assert strategy.pick(grid, request, exclude, conditional=True) == expected
        unconditional = strategy.pick(grid, request, exclude, conditional=False)
        assert unconditional == (None if chosen is None else (chosen, None))
