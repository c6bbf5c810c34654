"""Starting a session through the balancer, once per Idempotency-Key: the gateway's one piece of logic.

Without a key, a session is asked for once; an answer that never came (504) leaves the client not knowing.
With a key, the gateway knows for it (idempotency.py): the same key and body give the same session, never
a second one, whatever failed in between.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from charge_request_service.balancer_client import BalancerClient
from charge_request_service.idempotency import (
    Claimed,
    KeyStore,
    Mismatch,
    Replay,
    StillPending,
    StoreFull,
    StoreUnavailable,
    Unknown,
    fingerprint,
)
from grid_common import deadline
from grid_common.problems import Problem, clock_skew
from grid_common.protocol import ChargeRequest, is_idempotency_key, is_session_report
from grid_common.upstream import UpstreamError, UpstreamRefused, UpstreamResponse

log = logging.getLogger(__name__)

# Beyond an attempt's deadline, room for clocks that differ between the gateway's and substations' hosts.
CLOCK_SKEW_S = 1.0
# How often a duplicate looks again whether the request that holds its key has finished.
POLL_S = 0.02


def _sleep(seconds: float) -> None:
    time.sleep(seconds)  # looked up at call time: gevent patches it after this module may be imported


@dataclass(frozen=True)
class Started:
    """A session started (201) or queued at its substation (202)."""

    session: dict
    status: int = 201
    replayed: bool = False

    @classmethod
    def from_session(cls, session: dict, status: int, replayed: bool = False) -> Started:
        # "result": "Charging started" is what clients of the original API read; it stays.
        result = "Charging started" if status == 201 else "Queued"
        return cls({"result": result, **session}, status, replayed)


@dataclass(frozen=True)
class NotStarted:
    """The balancer's own answer (a refusal, a problem), passed on as it is."""

    response: UpstreamResponse


class OutcomeUnknown(Exception):
    """The attempt ended without an answer: a session may or may not have been made."""

    def __init__(self, cause: UpstreamError | None, response: UpstreamResponse | None = None) -> None:
        super().__init__(str(cause) if cause else f"the balancer answered {response.status if response else '?'}")
        self.cause = cause
        self.response = response


class SessionStarter:
    def __init__(
        self,
        balancer: BalancerClient,
        keys: KeyStore,
        *,
        wait_s: float,
        attempt_s: float,
        lease_s: float | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = _sleep,
    ) -> None:
        self.balancer = balancer
        self.keys = keys
        # How long a duplicate waits for the request that holds its key to finish.
        self.wait_s = wait_s
        # How long one attempt may take: its deadline, after which no substation admits it.
        self.attempt_s = attempt_s
        # How long a claim holds a key (the store's lease), for what a client is told.
        self.lease_s = attempt_s * 2 + 1 if lease_s is None else lease_s
        # Wall time: keys and deadlines are shared with other processes (grid_common/deadline.py).
        self.clock = clock
        self.sleep = sleep

    def start(self, charge: ChargeRequest, token: str | None = None) -> Started | NotStarted:
        """One attempt: a session, a refusal (NotStarted), or OutcomeUnknown when no answer came."""
        place_by = deadline.deadline_in(self.attempt_s, self.clock())
        try:
            response = self.balancer.assign(charge, token=token, within_s=self.attempt_s, deadline=place_by)
        except UpstreamRefused:
            raise  # never sent: nothing was made
        except UpstreamError as error:
            raise OutcomeUnknown(error) from error
        if response.status == 408 and (ahead := deadline.clock_ahead_s(response.body, place_by, self.clock())):
            raise clock_skew("The load balancer", "request", "gateway", ahead, "Nothing was started.")
        if response.status in (201, 202):
            if not is_session_report(response.body):
                raise OutcomeUnknown(None, response)
            return Started.from_session(response.body, response.status)
        if response.status < 500 or response.status == 503:
            return NotStarted(response)  # a refusal: the balancer placed nothing
        raise OutcomeUnknown(None, response)  # 502, 504, 500: it may have placed it

    def start_once(
        self, charge: ChargeRequest, key: str, raw_body: bytes, client: str | None = None
    ) -> Started | NotStarted:
        """Start a session for `key` unless one was started for it: the same key and body, the same session.
        `client`: whose key it is (keys are each client's own); None when the gateway has no clients."""
        if not is_idempotency_key(key):
            raise Problem(400, "Bad Request", "Idempotency-Key must be 1 to 255 printable ASCII characters.")
        scoped = key if client is None else f"{client}:{key}"
        claim = self._claim(scoped, fingerprint(raw_body))
        if isinstance(claim, Mismatch):
            raise Problem(422, "Unprocessable Content", "This Idempotency-Key was used with a different request body.")
        if isinstance(claim, StillPending):
            raise Problem(
                409,
                "Conflict",
                "A request with this Idempotency-Key is in progress, or finding out what an earlier one did: ask "
                "again after Retry-After.",
                retry_after=max(1, math.ceil(claim.lease_until - self.clock())),
            )
        if isinstance(claim, Replay):
            return Started(claim.body, claim.status, replayed=True)
        if isinstance(claim, Unknown):
            return self._recover(scoped, charge, claim)
        return self._attempt(charge, scoped, claim)

    def _claim(self, key: str, body_fingerprint: str):
        waited_until = time.monotonic() + self.wait_s
        while True:
            left = max(0.0, waited_until - time.monotonic())
            try:
                claim = self.keys.claim(key, body_fingerprint, self.clock(), within_s=left)
            except StoreUnavailable as error:
                log.warning("the Idempotency-Key store did not take a claim: %s", error)
                if error.maybe_changed:
                    raise Problem(
                        503,
                        "Idempotency store unavailable",
                        "The gateway's Idempotency-Key store did not answer in time: no session was started, but "
                        "the store may have taken this request's claim on the key when it resumed, in which "
                        "case a retry is asked to wait until that claim's lease ends "
                        f"(at most {math.ceil(self.lease_s)} s).",
                        retry_after=1,
                    ) from None
                raise Problem(
                    503,
                    "Idempotency store unavailable",
                    "The gateway cannot reach its Idempotency-Key store now: nothing was started, and the key "
                    "was not claimed.",
                    retry_after=1,
                ) from None
            except StoreFull:
                raise Problem(
                    503, "Too many requests in progress", "Every Idempotency-Key the gateway may hold is in use.",
                    retry_after=1,
                ) from None  # fmt: skip
            if not isinstance(claim, StillPending) or time.monotonic() >= waited_until:
                return claim
            self.sleep(POLL_S)

    def _recover(self, key: str, charge: ChargeRequest, claim: Unknown) -> Started | NotStarted:
        """An earlier attempt may have made a session: once it is too late for it to, look for it. Found, it is
        the answer; proven absent, this request places it; nobody can tell, the key stays unknown."""
        if claim.owner is None:
            raise Problem(
                409,
                "Conflict",
                "An earlier request with this Idempotency-Key may still start a session: ask again after Retry-After.",
                retry_after=max(1, math.ceil(claim.settle_after - self.clock())),
            )
        try:
            response = self.balancer.find_session(claim.token)
        except UpstreamError:
            response = None
        if (
            response is None
            or response.status not in (200, 404)
            or (response.status == 200 and not is_session_report(response.body))
        ):
            self._keep(self.keys.mark_unknown, key, claim.owner, claim.settle_after, self.clock())
            raise Problem(
                503,
                "Outcome unknown",
                "Whether an earlier request with this Idempotency-Key started a session cannot be told now: a "
                "substation that may hold it does not answer. Nothing new was started; ask again after Retry-After.",
                retry_after=1,
            )
        if response.status == 404:
            # No substation has it, nor will: this request places it, under the same token.
            return self._attempt(charge, key, Claimed(claim.owner, claim.token))
        assert isinstance(response.body, dict)
        status = 202 if response.body.get("state") == "queued" else 201
        started = Started.from_session(response.body, status, replayed=True)
        self._keep(self.keys.finish, key, claim.owner, status, started.session, self.clock())
        return started

    @staticmethod
    def _keep(change, *args) -> None:
        """Record what became of a key. If the store cannot, the answer stands all the same: the key stays
        pending, its lease runs out, and a retry then finds the session by its token (or places it)."""
        try:
            change(*args)
        except StoreUnavailable as error:
            log.warning("the Idempotency-Key store did not take a change (%s): a retry will find out", error)

    def _attempt(self, charge: ChargeRequest, key: str, claim: Claimed) -> Started | NotStarted:
        owner = claim.owner
        # No substation admits this attempt after its deadline: then its outcome is settled.
        settle_after = self.clock() + self.attempt_s + CLOCK_SKEW_S
        try:
            outcome = self.start(charge, claim.token)
        except (UpstreamRefused, Problem):
            self._keep(self.keys.release, key, owner)  # never sent, or refused (clock skew): a retry tries again
            raise
        except BaseException:  # no answer, or this process interrupted: a session may have been made
            self._keep(self.keys.mark_unknown, key, owner, settle_after, self.clock())
            raise
        if isinstance(outcome, NotStarted):
            self._keep(self.keys.release, key, owner)  # refused: a retry with this key should try again
        else:
            self._keep(self.keys.finish, key, owner, outcome.status, outcome.session, self.clock())
        return outcome
