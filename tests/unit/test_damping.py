"""No flapping: limits rise by a ramp and fall at once, and a paused car stays paused a least time. The pure rule,
then a substation that follows it. Domain only: no Flask."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grid_common.protocol import SessionState
from substation_service.damping import Damping
from tests.helpers import charge
from tests.substations import make_substation

RAMP = Damping(ramp_per_s=0.03)


def test_a_limit_falls_at_once_and_rises_by_the_ramp():
    assert RAMP.next_kw(20.0, 5.0, 4.14, 22.0, 1.0) == 5.0, "down: at once"
    assert RAMP.next_kw(5.0, 20.0, 4.14, 22.0, 1.0) == pytest.approx(5.0 + 0.03 * 22.0), "up: 3 % of 22 kW a second"
    assert RAMP.next_kw(0.0, 20.0, 4.14, 22.0, 0.0) == 4.14, "a car that starts starts at its minimum"
    assert RAMP.next_kw(5.0, 5.3, 4.14, 22.0, 10.0) == 5.3, "never beyond its share"
    assert Damping().next_kw(5.0, 20.0, 4.14, 22.0, 0.0) == 20.0, "no ramp: at once"


@given(
    current=st.floats(0.0, 50.0),
    target=st.floats(0.0, 50.0),
    elapsed=st.floats(0.0, 100.0),
    ramp=st.floats(0.0, 1.0),
)
def test_a_ramped_limit_is_never_above_the_share_nor_rises_faster_than_the_ramp(current, target, elapsed, ramp):
    minimum, maximum = 1.38, 50.0
    got = Damping(ramp_per_s=ramp).next_kw(current, target, minimum, maximum, elapsed)
    assert got <= target + 1e-12
    if ramp and target > current:
        assert got <= max(minimum, current + ramp * maximum * elapsed) + 1e-9


def test_a_paused_car_stays_paused_its_least_time():
    pause = Damping(min_pause_s=30.0)
    assert pause.still_paused(100.0, 110.0) and not pause.still_paused(100.0, 130.0)
    assert not pause.still_paused(None, 110.0) and not Damping().still_paused(100.0, 100.0)


def test_a_substation_ramps_its_cars_up_and_brings_them_down_at_once():
    substation = make_substation(44.0, allocation="fair", damping=Damping(ramp_per_s=0.1), now=0.0)
    first = substation.admit(charge("a", 100, 22.0, min_power_kw=4.14), now=0.0).session.session_id
    assert substation.session(first, 0.0).allocated_kw == pytest.approx(4.14), "starts at its minimum"
    powers = [substation.session(first, t).allocated_kw for t in (1.0, 2.0, 3.0)]
    assert powers == pytest.approx([4.14 + 2.2, 4.14 + 4.4, 4.14 + 6.6]), "2.2 kW (10 % of 22) a second"
    assert substation.session(first, 20.0).allocated_kw == pytest.approx(22.0)
    for n in range(3):  # three more cars: its share falls to 11 kW at once
        substation.admit(charge(f"b{n}", 100, 22.0, min_power_kw=4.14), now=20.0)
    assert substation.session(first, 20.0).allocated_kw == pytest.approx(11.0), "its fair share of four, at once"
    assert substation.report(20.0).ev_power_kw == pytest.approx(11.0 + 3 * 4.14), "the others start at their minimum"
    assert substation.counters.overload_seconds == 0


def test_a_paused_car_waits_its_least_time_before_it_resumes():
    substation = make_substation(10.0, allocation="fair", damping=Damping(min_pause_s=5.0), now=0.0)
    first = substation.admit(charge("a", 100, 22.0, min_power_kw=4.0), now=0.0).session.session_id
    second = substation.admit(charge("b", 100, 22.0, min_power_kw=4.0), now=0.0).session.session_id
    third = substation.admit(charge("c", 100, 22.0, min_power_kw=4.0, wait=True), now=0.0).session
    assert third.state == SessionState.QUEUED
    substation.capacity_kw = 6.0
    substation.advance(1.0)
    assert substation.session(second, 1.0).state == SessionState.PAUSED, "6 kW holds one minimum of 4"
    substation.capacity_kw = 10.0
    assert substation.session(second, 3.0).state == SessionState.PAUSED, "room again, but it paused 2 s ago"
    assert substation.session(second, 6.5).state == SessionState.CHARGING, "resumed once its 5 s had passed"
    assert substation.session(first, 6.5).state == SessionState.CHARGING
