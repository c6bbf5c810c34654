"""The substation's app factory: builds the domain from its configuration and wires the routes to it."""

from __future__ import annotations

import time
from collections.abc import Callable

from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from grid_common.openapi import openapi_blueprint
from grid_common.web import new_app, probes_blueprint
from substation_service import routes
from substation_service.config import SubstationConfig
from substation_service.journal import open_journal
from substation_service.metrics import build_registry
from substation_service.openapi import SPEC
from substation_service.profile import BackgroundDemand, DailyProfile, SimulatedClock
from substation_service.substation import Journal, Substation


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
        history_limit=config.session_history_limit,
        journal=journal if journal is not None else open_journal(config.session_db),
        now=now,
    )


def create_app(
    config: SubstationConfig, *, clock: Callable[[], float] = time.time, journal: Journal | None = None
) -> Flask:
    """`journal`: where sessions outlive the process; by default the SQLite file of SESSION_DB, if any."""
    app = new_app(__name__)
    substation = build_substation(config, clock(), journal)
    app.extensions["substation"] = routes.Context(substation, clock)
    app.register_blueprint(routes.blueprint)
    app.register_blueprint(
        probes_blueprint(lambda: (True, {"substation": config.name}), build_registry(substation, clock))
    )
    app.register_blueprint(openapi_blueprint(SPEC))
    return app


def create_hosting_app(config: SubstationConfig, *, clock: Callable[[], float] = time.time):
    """One process simulating several substations, each a whole substation app under `/<name>`.

    Each keeps its own state, lock, admission and metrics, exactly as in a process of its own; only the
    process is shared. The root answers `/healthz` and `/readyz` for the process and lists what it hosts.
    """
    hosted = {sub.name: create_app(sub, clock=clock) for sub in config.hosted()}
    root = new_app(__name__)

    @root.get("/")
    def index():
        return {"service": "substation host", "substations": [f"/{name}" for name in hosted]}

    root.register_blueprint(probes_blueprint(lambda: (True, {"substations": len(hosted)})))
    return DispatcherMiddleware(root, {f"/{name}": app for name, app in hosted.items()})
