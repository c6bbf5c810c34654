"""The substation's app factory: builds the domain from its configuration and wires the routes to it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from grid_common.clock import steady_time
from grid_common.lifecycle import draining
from grid_common.openapi import openapi_blueprint
from grid_common.simulated_time import DailyProfile, SimulatedClock
from grid_common.web import new_app, probes_blueprint
from substation_service import grid_limit_routes, routes
from substation_service.background import BackgroundDemand
from substation_service.config import SubstationConfig
from substation_service.damping import Damping
from substation_service.journal import Journal, open_journal
from substation_service.meter import MeterSettings
from substation_service.metrics import build_registry
from substation_service.openapi import SPEC
from substation_service.phase_switching import PhaseSwitching
from substation_service.substation import Substation

log = logging.getLogger(__name__)


def build_substation(config: SubstationConfig, now: float, journal: Journal | None = None) -> Substation:
    background = BackgroundDemand(
        peak_kw=config.capacity_kw * config.background_peak_fraction,
        profile=DailyProfile(),
        clock=SimulatedClock(config.time_scale, config.background_phase_hours),
    )
    return Substation(
        config.name,
        config.capacity_kw,
        config.charger_max_power_kw,
        config.time_scale,
        background,
        allocation=config.allocation,
        step_s=config.allocation_step_s,
        lookahead_s=config.admission_lookahead_s,
        queue_limit=config.queue_limit,
        history_limit=config.session_history_limit,
        journal=journal if journal is not None else open_journal(config.session_db),
        meters=MeterSettings(
            config.meter_stale_s, config.meter_follow_s, config.meter_underdraw_s, config.meter_margin_kw
        ),
        supply=config.supply,
        circuits=config.circuit_tree,
        damping=Damping(config.ramp_up_per_s, config.min_pause_s),
        phase_switching=PhaseSwitching(hold_s=config.phase_switch_hold_s),
        draining=draining,
        now=now,
    )


class Ticker:
    """Brings substations up to the clock every allocation step, so that queued sessions start, paused ones
    resume and metrics move even when nobody asks. One thread for every substation of the process."""

    def __init__(self, substations: list[Substation], clock: Callable[[], float], interval_s: float) -> None:
        self.substations = substations
        self.clock = clock
        self.interval_s = interval_s
        self._stop = threading.Event()

    def start(self) -> Ticker:
        threading.Thread(target=self._run, name="allocation-ticker", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            for substation in self.substations:
                try:
                    substation.advance(self.clock())
                except Exception:
                    log.exception("substation %s could not advance", substation.name)


def create_app(
    config: SubstationConfig,
    *,
    clock: Callable[[], float] = steady_time,
    journal: Journal | None = None,
    tick: bool = True,
) -> Flask:
    """`journal`: where sessions outlive the process (by default the SQLite file of SESSION_DB, if any);
    `tick`: advance every allocation step on a thread of its own (a test that moves a fake clock does not)."""
    app = new_app(__name__)
    substation = build_substation(config, clock(), journal)
    if tick:
        Ticker([substation], clock, config.allocation_step_s).start()
    app.extensions["substation"] = routes.Context(substation, clock, config.grid_limit_token)
    app.register_blueprint(routes.blueprint)
    app.register_blueprint(grid_limit_routes.blueprint)

    def readiness() -> tuple[bool, dict]:
        # A substation whose journal cannot write takes no new session: its sessions would not survive it.
        # Asked again now, so that readiness comes back with the journal, not with the next write.
        error = substation.check_journal(clock())
        return error is None, {"substation": config.name} | ({} if error is None else {"journal": error})

    app.register_blueprint(probes_blueprint(readiness, build_registry(substation, clock)))
    app.register_blueprint(openapi_blueprint(SPEC))
    return app


def create_hosting_app(config: SubstationConfig, *, clock: Callable[[], float] = steady_time):
    """One process simulating several substations, each a whole substation app under `/<name>`.

    Each keeps its own state, lock, admission and metrics, exactly as in a process of its own; only the
    process is shared. The root answers `/healthz` and `/readyz` for the process and lists what it hosts.
    """
    hosted = {sub.name: create_app(sub, clock=clock, tick=False) for sub in config.hosted()}
    Ticker(
        [app.extensions["substation"].substation for app in hosted.values()], clock, config.allocation_step_s
    ).start()
    root = new_app(__name__)

    @root.get("/")
    def index():
        return {"service": "substation host", "substations": [f"/{name}" for name in hosted]}

    root.register_blueprint(probes_blueprint(lambda: (True, {"substations": len(hosted)})))
    return DispatcherMiddleware(root, {f"/{name}": app for name, app in hosted.items()})
