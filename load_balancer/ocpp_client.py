"""The balancer's calls to the OCPP service's API (API_BIND, port 9001): its chargers, for the live page
(`GET /grid/chargers`), and a remote start at a charger a client names."""

from __future__ import annotations

from grid_common import deadline
from grid_common.protocol import SESSION_TOKEN, ChargeRequest
from grid_common.upstream import JsonClient, Transport, UpstreamResponse

# The page asks once a second: an answer later than this is not worth waiting for.
CHARGERS_TIMEOUT_S = 2.0


class OcppClient:
    def __init__(self, base_url: str, *, connect_timeout_s: float, transport: Transport | None = None) -> None:
        self.base_url = base_url
        self.http = JsonClient(
            connect_timeout=connect_timeout_s, read_timeout=CHARGERS_TIMEOUT_S, pool_size=4, transport=transport
        )

    def chargers(self) -> UpstreamResponse:
        """`GET /chargers` on the OCPP service, within CHARGERS_TIMEOUT_S; UpstreamError when no answer came."""
        return self.http.call("GET", f"{self.base_url}/chargers", timeout=CHARGERS_TIMEOUT_S)

    def remote_start(self, charger_id: str, request: ChargeRequest, token: str, by: float) -> UpstreamResponse:
        """`POST /chargers/<id>/remote_start`: the session `<its substation>.<token>`, answered by `by` (wall
        time); UpstreamError when no answer came (the charger may still start)."""
        headers = {SESSION_TOKEN: token, **deadline.header(by)}
        url = f"{self.base_url}/chargers/{charger_id}/remote_start"
        wait_s = deadline.seconds_left(by, 60.0) + deadline.MARGIN_S  # its answer comes at `by` at the latest
        return self.http.call("POST", url, request.to_json(), timeout=wait_s, headers=headers)
