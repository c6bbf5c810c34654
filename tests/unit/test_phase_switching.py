"""Phase switching: a 3-phase car on a charger that can switch charges on one phase rather than pause, and goes back
to three once there is room with a margin, at most once every hold time. Domain only: no Flask."""

from __future__ import annotations

import pytest

from grid_common.protocol import ChargerLink, GridPhase, SessionState
from substation_service.phase_switching import PhaseSwitching
from tests.helpers import charge
from tests.substations import make_substation


def plug(substation, vehicle: str, *, switching: bool, now: float = 0.0, phase=GridPhase.L2):
    link = ChargerLink(f"cp-{vehicle}", vehicle, 0.0, phase, None, switching)
    request = charge(vehicle, 100, 22.08, min_power_kw=4.14, phases=3, wait=True)
    return substation.admit(request, now=now, charger=link).session


def fill_phase(substation, vehicle: str, phase: GridPhase, kw: float) -> str:
    """A 1-phase car wired to `phase` that takes `kw` and no less."""
    request = charge(vehicle, 100, kw, min_power_kw=kw, phases=1)
    link = ChargerLink(f"cp-{vehicle}", vehicle, 0.0, phase)
    return substation.admit(request, now=0.0, charger=link).session.session_id


def switching_substation(**settings):
    # 30 kW: 10 kW a phase. 1-phase cars fill L1 and L3 to 9 kW: 1 kW left there, 10 on L2.
    substation = make_substation(30.0, charger_kw=22.08, allocation="fair", now=0.0, **settings)
    fillers = [fill_phase(substation, "on-l1", GridPhase.L1, 9.0), fill_phase(substation, "on-l3", GridPhase.L3, 9.0)]
    return substation, fillers


def test_a_car_that_cannot_take_6_a_on_three_phases_charges_on_one_and_switches_back_with_hysteresis():
    substation, fillers = switching_substation(phase_switching=PhaseSwitching(hold_s=5.0))
    session = plug(substation, "b", switching=True)
    report = substation.session(session.session_id, 0.0)
    assert report.phases == 1 and report.grid_phase == GridPhase.L2, "on one phase, its charger's L1 (on L2)"
    assert report.state == SessionState.CHARGING
    assert report.allocated_kw == pytest.approx(22.08 / 3), "its 32 A on one phase: L2 has 10 kW of room"
    assert substation.counters.phase_switches == 1
    for key in fillers:
        substation.stop(key, 1.0)
    assert substation.session(session.session_id, 3.0).phases == 1, "not before its hold time: no flapping"
    back = substation.session(session.session_id, 5.5)
    assert back.phases == 3 and back.grid_phase is None
    assert back.allocated_kw == pytest.approx(22.08), "all three phases free again"
    assert substation.counters.phase_switches == 2
    assert substation.counters.overload_seconds == 0


def test_a_car_on_a_charger_that_cannot_switch_waits():
    substation, _ = switching_substation()
    session = plug(substation, "b", switching=False)
    assert substation.session(session.session_id, 0.0).state == SessionState.QUEUED, "no 6 A on L1 or L3"
    assert substation.counters.phase_switches == 0
