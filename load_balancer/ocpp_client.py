"""The balancer's one call to the OCPP service: its chargers, for the live page (`GET /grid/chargers`)."""

from __future__ import annotations

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
