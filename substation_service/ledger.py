"""Which balancer placed each session at a substation: what lets one balancer's report say what *other*
balancers' sessions draw there, and its conditional admission (412) hold where the sessions are."""

from __future__ import annotations

from collections import OrderedDict

from substation_service.sessions import Session

# Balancers whose started sessions a substation keeps counting (started_for_you): each gunicorn worker of
# each balancer replica is one, and one forgotten only makes that balancer count in flight more cautiously.
REMEMBERED_BALANCERS = 1024
TOLERANCE_KW = 1e-6


class BalancerLedger:
    def __init__(self) -> None:
        self._placed: dict[str, list[float]] = {}  # balancer -> [kW allocated, sessions]
        self._started_for: OrderedDict[str, int] = OrderedDict()  # balancer -> sessions started at admission

    def add(self, session: Session, sign: int = +1) -> None:
        """A session counted in (+1), or out (-1), for the balancer that placed it, if any."""
        if session.placed_by is None:
            return
        placed = self._placed.setdefault(session.placed_by, [0.0, 0])
        placed[0] += sign * (session.allocated_kw if session.started else 0.0)
        placed[1] += sign
        if placed[1] == 0:
            del self._placed[session.placed_by]

    def change_power(self, session: Session, delta_kw: float) -> None:
        if session.placed_by is not None:
            self._placed[session.placed_by][0] += delta_kw

    def count_started(self, balancer: str | None) -> None:
        """One more session of `balancer` started at admission."""
        if balancer is None:
            return
        self._started_for[balancer] = self._started_for.get(balancer, 0) + 1
        self._started_for.move_to_end(balancer)
        if len(self._started_for) > REMEMBERED_BALANCERS:
            self._started_for.popitem(last=False)

    def started_for(self, balancer: str) -> int:
        return self._started_for.get(balancer, 0)

    def others_ev_power_kw(self, balancer: str | None, ev_power_kw: float) -> float:
        """Of `ev_power_kw`, what sessions balancers other than `balancer` placed draw."""
        own = self._placed.get(balancer, (0.0, 0))[0] if balancer is not None else 0.0
        return max(0.0, ev_power_kw - own)

    def others_sessions(self, balancer: str | None, sessions: int) -> int:
        own = self._placed.get(balancer, (0.0, 0))[1] if balancer is not None else 0
        return sessions - int(own)

    def outdated(
        self,
        balancer: str | None,
        ev_power_at_most: float | None,
        sessions_at_most: int | None,
        ev_power_kw: float,
        sessions: int,
    ) -> str:
        """Which condition other balancers' sessions break, or "" when none is."""
        if (
            ev_power_at_most is not None
            and self.others_ev_power_kw(balancer, ev_power_kw) > ev_power_at_most + TOLERANCE_KW
        ):
            return "others_ev_power"
        if sessions_at_most is not None and self.others_sessions(balancer, sessions) > sessions_at_most:
            return "others_sessions"
        return ""
