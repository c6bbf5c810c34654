"""Starting a session through the balancer, once per Idempotency-Key: the gateway's one piece of logic."""

from __future__ import annotations

from dataclasses import dataclass

from charge_request_service.balancer_client import BalancerClient
from charge_request_service.idempotency import IdempotencyStore, Mismatch, Replay, StillPending, fingerprint
from grid_common.problems import Problem
from grid_common.protocol import ChargeRequest, is_idempotency_key, is_session_report
from grid_common.upstream import UpstreamResponse


@dataclass(frozen=True)
class Started:
    """A session started (201) or queued at its substation (202)."""

    session: dict
    status: int = 201
    replayed: bool = False


@dataclass(frozen=True)
class NotStarted:
    """The balancer's own answer (a refusal, a problem), passed on as it is."""

    response: UpstreamResponse


class SessionStarter:
    def __init__(self, balancer: BalancerClient, keys: IdempotencyStore, *, wait_s: float) -> None:
        self.balancer = balancer
        self.keys = keys
        # How long a duplicate waits for the request that holds its key to finish.
        self.wait_s = wait_s

    def start(self, charge: ChargeRequest) -> Started | NotStarted:
        response = self.balancer.assign(charge)
        if response.status not in (201, 202):
            return NotStarted(response)
        if not is_session_report(response.body):
            raise Problem(502, "Bad Gateway", "The load balancer gave no usable answer.")
        # "result": "Charging started" is what clients of the original API read; it stays.
        result = "Charging started" if response.status == 201 else "Queued"
        return Started({"result": result, **response.body}, response.status)

    def start_once(self, charge: ChargeRequest, key: str, raw_body: bytes) -> Started | NotStarted:
        """Start a session for `key` unless one was started for it: the same key and body, the same session."""
        if not is_idempotency_key(key):
            raise Problem(400, "Bad Request", "Idempotency-Key must be 1 to 255 printable ASCII characters.")
        claim = self.keys.claim(key, fingerprint(raw_body), wait_s=self.wait_s)
        if isinstance(claim, Mismatch):
            raise Problem(422, "Unprocessable Content", "This Idempotency-Key was used with a different request body.")
        if isinstance(claim, StillPending):
            raise Problem(409, "Conflict", "A request with this Idempotency-Key is still in progress.", retry_after=1)
        if isinstance(claim, Replay):
            return Started(claim.body, claim.status, replayed=True)
        try:
            outcome = self.start(charge)
        except BaseException:
            self.keys.release(key)
            raise
        if isinstance(outcome, NotStarted):
            self.keys.release(key)  # no session: a retry with this key should try again
        else:
            self.keys.finish(key, outcome.status, outcome.session)
        return outcome
