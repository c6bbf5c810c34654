"""The balancer's HTTP routes, one blueprint per concern; `Context` is what they work with."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from grid_common.problems import Problem
from grid_common.protocol import is_session_id, substation_of
from load_balancer.assignment import Assigner
from load_balancer.config import BalancerConfig
from load_balancer.grid_view import GridView, KnownSubstation
from load_balancer.ocpp_client import OcppClient
from load_balancer.poller import Poller
from load_balancer.strategies import Strategy
from load_balancer.substation_client import SubstationClient
from load_balancer.substation_urls import SubstationUrls


@dataclass(frozen=True)
class Context:
    config: BalancerConfig
    grid_view: GridView
    strategy: Strategy
    substations: SubstationClient
    assigner: Assigner
    poller: Poller
    substation_urls: SubstationUrls
    ocpp: OcppClient | None = None  # with OCPP_URL: the OCPP service, whose chargers the live page shows


def context() -> Context:
    return current_app.extensions["balancer"]


def owner_of(session_id: str) -> KnownSubstation:
    """The substation a session id names, as this balancer knows it."""
    if not is_session_id(session_id):
        raise Problem(400, "Bad Request", "Malformed session id: expected <substation>.<token>.")
    substation = context().grid_view.get(substation_of(session_id))
    if substation is None:
        raise Problem(404, "Not Found", f"No session {session_id}: its substation is not known here.")
    return substation
