"""Every call the balancer makes to a substation, in one place: admissions, load reports and sessions."""

from __future__ import annotations

import os
import secrets

from grid_common import deadline as deadlines
from grid_common.protocol import (
    BALANCER_ID,
    OTHERS_EV_POWER_CONDITION,
    OTHERS_SESSIONS_CONDITION,
    LoadReport,
    MalformedReport,
)
from grid_common.upstream import AddressCheck, JsonClient, Transport, UpstreamResponse, Urllib3Transport
from load_balancer.strategies import Condition


def new_balancer_id() -> str:
    """Each balancer process names itself, so that substations tell its sessions from other balancers'."""
    return f"{secrets.token_hex(6)}-{os.getpid()}"


class SubstationClient:
    def __init__(
        self,
        *,
        connect_timeout_s: float,
        read_timeout_s: float,
        balancer_id: str | None = None,
        transport: Transport | None = None,
        registered_address_check: AddressCheck | None = None,
    ) -> None:
        """`registered_address_check`: where substations registered at run time may be, checked at every
        connection to them, so that a name which resolves elsewhere later is not followed there."""
        self.balancer_id = balancer_id or new_balancer_id()
        headers = {BALANCER_ID: self.balancer_id}
        self.http = JsonClient(
            connect_timeout=connect_timeout_s, read_timeout=read_timeout_s, headers=headers, transport=transport
        )
        self._checked = self.http
        if transport is None and registered_address_check is not None:
            self._checked = JsonClient(
                connect_timeout=connect_timeout_s,
                read_timeout=read_timeout_s,
                headers=headers,
                transport=Urllib3Transport(64, address_check=registered_address_check),
            )
        # Base URLs of substations registered at run time: their calls go through the checked client.
        self._registered: set[str] = set()

    def registered(self, url: str, registered: bool = True) -> None:
        """From now on, calls to `url` are checked (a substation registered at run time), or no longer."""
        if registered:
            self._registered.add(url)
        else:
            self._registered.discard(url)

    def _client(self, url: str) -> JsonClient:
        return self._checked if url in self._registered else self.http

    def begin_charging(
        self, url: str, admission: dict, *, timeout_s: float, deadline: float, condition: Condition | None = None
    ) -> UpstreamResponse:
        """Ask the substation at `url` to admit a session by `deadline` (wall time; the call waits `timeout_s`);
        with a condition on other balancers' sessions."""
        headers = deadlines.header(deadline)
        if condition is not None and condition.others_ev_power_at_most is not None:
            headers[OTHERS_EV_POWER_CONDITION] = f"{condition.others_ev_power_at_most:.6f}"
        if condition is not None and condition.others_sessions_at_most is not None:
            headers[OTHERS_SESSIONS_CONDITION] = str(condition.others_sessions_at_most)
        return self._client(url).call("POST", f"{url}/begin_charging", admission, timeout=timeout_s, headers=headers)

    def load(self, url: str, *, timeout_s: float) -> LoadReport:
        """The substation's load now; MalformedReport when it answers something else."""
        response = self._client(url).call("GET", f"{url}/load", timeout=timeout_s)
        if response.status != 200:
            raise MalformedReport(f"/load answered {response.status}")
        return LoadReport.from_json(response.body)

    def session(self, url: str, session_id: str, *, timeout_s: float) -> UpstreamResponse:
        return self._client(url).call("GET", f"{url}/sessions/{session_id}", timeout=timeout_s)

    def amend_session(
        self, url: str, session_id: str, change: dict, *, timeout_s: float, deadline: float | None = None
    ) -> UpstreamResponse:
        """Say a session's energy or departure anew (a merge patch) by `deadline`, as a stop is."""
        headers = deadlines.header(deadlines.deadline_in(timeout_s) if deadline is None else deadline)
        return self._client(url).call("PATCH", f"{url}/sessions/{session_id}", change, timeout=timeout_s,
                                      headers=headers)  # fmt: skip

    def stop_session(
        self, url: str, session_id: str, *, timeout_s: float, deadline: float | None = None
    ) -> UpstreamResponse:
        """Stop a session by `deadline` (wall time; by default a margin before `timeout_s` runs out)."""
        headers = deadlines.header(deadlines.deadline_in(timeout_s) if deadline is None else deadline)
        return self._client(url).call("POST", f"{url}/sessions/{session_id}/stop", timeout=timeout_s, headers=headers)
