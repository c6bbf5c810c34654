"""The load report: what a substation tells a balancer of itself, polled (`/load`) and in every admission
answer. Each field is declared once, in `LoadReport`: msgspec encodes it, decodes and checks it (the balancer
reads one per admission answer: several times faster than checking a dict field by field), and writes its
JSON Schema."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import msgspec
from msgspec import Meta, Struct

from grid_common.protocol.charge_request import PRIORITIES
from grid_common.protocol.headers import BALANCER_ID
from grid_common.protocol.names import SubstationName

MAX_COUNT = 2**63 - 1  # what any JSON peer can hold as an integer
KW = Annotated[float, Meta(ge=0)]
Count = Annotated[int, Meta(ge=0, le=MAX_COUNT)]
Seconds = Annotated[float, Meta(ge=0)]


# One value per priority, 0 to 3.
PerPriorityCount = Annotated[tuple[Count, ...], Meta(min_length=len(PRIORITIES), max_length=len(PRIORITIES))]
PerPriorityKW = Annotated[tuple[KW, ...], Meta(min_length=len(PRIORITIES), max_length=len(PRIORITIES))]
EstimatedStarts = Annotated[
    tuple[Seconds | None, ...],
    Meta(
        min_length=len(PRIORITIES),
        max_length=len(PRIORITIES),
        description="Per priority: seconds until a newcomer queued now would start.",
    ),
]
HeadroomKW = Annotated[
    float, Meta(ge=0, description="Capacity less the background's peak over the next allocation step.")
]
AdmissionHeadroomKW = Annotated[float, Meta(ge=0, description="The same over the admission's look-ahead.")]
CommittedKW = Annotated[float, Meta(ge=0, description="Minimums (fair) or powers (fixed) of the sessions started.")]
DemandKW = Annotated[float, Meta(ge=0, description="What every car here could draw together.")]
OthersKW = Annotated[float, Meta(ge=0, description=f"With {BALANCER_ID}: what other balancers' sessions draw.")]
OthersSessions = Annotated[
    int,
    Meta(ge=0, le=MAX_COUNT, description=f"With {BALANCER_ID}: sessions other balancers placed (started or queued)."),
]
StartedForYou = Annotated[
    int,
    Meta(
        ge=0,
        le=MAX_COUNT,
        description=f"With {BALANCER_ID}: that balancer's sessions started here at admission in this epoch.",
    ),
]


class Allocation(StrEnum):
    """How a substation shares its headroom: `fair` admits a session on its minimum and shares the rest
    (smart charging); `fixed` gives each its maximum for its whole life, for comparison."""

    FAIR = "fair"
    FIXED = "fixed"
    PLANNED = "planned"  # fair, and cars with a departure get their energy by then first (planning.py)

    @property
    def shares(self) -> bool:
        """Whether sessions share the headroom above their minimums (fair, planned), not each its maximum."""
        return self != Allocation.FIXED


ALLOCATIONS = tuple(Allocation)


class MalformedReport(ValueError):
    """An answer that is not a load report."""


class LoadReport(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What a balancer needs to rank a substation; `epoch` and `sequence` order the reports of one process.
    Build one with `LoadReport.of`, which works out `load_kw`, `utilization` and `available_kw`, and rounds
    what goes on the wire."""

    name: SubstationName
    capacity_kw: Annotated[float, Meta(gt=0)]
    load_kw: KW  # EV power plus background
    ev_power_kw: KW
    background_kw: KW
    utilization: Annotated[float, Meta(ge=0)]  # load over capacity
    available_kw: KW  # capacity less load
    active_sessions: Count  # started: charging or paused
    charger_max_power_kw: KW
    # Seconds until the next session here ends, if one is charging: when to retry a refusal.
    next_session_end_s: Seconds | None
    epoch: Annotated[str, Meta(description="Changes when the substation's process restarts.")]
    sequence: Annotated[int, Meta(ge=0, le=MAX_COUNT, description="Orders the reports of one epoch.")]
    # How it shares (admits on minimums, or on maxima held for a session's life).
    allocation: Allocation
    headroom_kw: HeadroomKW
    # The same over the admission's look-ahead: what the minimums (fair) or powers (fixed) of sessions that
    # start now must fit under.
    admission_headroom_kw: AdmissionHeadroomKW
    committed_kw: CommittedKW
    paused_sessions: Count
    queued_sessions: Count
    queue_limit: Count
    # Queued sessions per priority: a newcomer of priority p waits behind those of priority >= p.
    queue_by_priority: PerPriorityCount
    # Per priority p: the power a newcomer of priority p could draw from (headroom no session takes, and what
    # sessions of priority <= p draw above their minimum), and how many sessions it would share it with.
    shareable_kw: PerPriorityKW
    sharing_sessions: PerPriorityCount
    demand_kw: DemandKW
    # Per priority: seconds until a newcomer of that priority would start here, if queued now (0: at once;
    # None: not foreseeable, e.g. nothing is charging to end).
    estimated_start_s: EstimatedStarts
    # Only for the balancer that asked (Balancer-Id): the EV power of sessions other balancers placed, how
    # many sessions (started or queued) they placed here, and how many of its own started here at admission
    # in this epoch (its sessions in flight that the report already counts are this less the admissions it
    # has heard back about, so it does not count them twice).
    others_ev_power_kw: OthersKW | None = None
    others_sessions: OthersSessions | None = None
    started_for_you: StartedForYou | None = None
    # The grid operator's limit in force now, when there is one (below capacity_kw: what the substation may draw,
    # EV power and background together); available_kw counts from it.
    grid_limit_kw: KW | None = None
    # Shutting down (SIGTERM, within SHUTDOWN_DRAIN_S): it serves what it is sent until it stops, but a balancer
    # sends it nothing new, so that nothing is on its way when its listener closes.
    draining: Annotated[bool, Meta(description="Shutting down: send it no new sessions.")] = False

    @classmethod
    def of(cls, **fields: object) -> LoadReport:
        """A report of these fields, with what follows from them (load, utilization, what is available),
        rounded as it goes on the wire: kW to the milliwatt, seconds to the millisecond."""
        fields = {**OF_DEFAULTS, **fields}
        fields["allocation"] = Allocation(str(fields["allocation"]))  # its name will do
        capacity, ev, background = fields["capacity_kw"], fields["ev_power_kw"], fields["background_kw"]
        load = ev + background  # type: ignore[operator]
        grid_limit = fields.get("grid_limit_kw")
        limit = capacity if grid_limit is None else min(capacity, grid_limit)  # type: ignore[call-overload]
        fields |= {"load_kw": load, "utilization": load / capacity, "available_kw": max(0.0, limit - load)}
        return cls(**{name: _rounded(name, value) for name, value in fields.items()})  # type: ignore[arg-type]

    def to_json(self) -> dict:
        """As decoded JSON (lists, not tuples); `encode` for the bytes."""
        return msgspec.json.decode(_ENCODER.encode(self))

    def encode(self) -> bytes:
        return _ENCODER.encode(self)

    @classmethod
    def from_json(cls, body: object) -> LoadReport:
        """A report as sent (decoded JSON), checked: anything else raises MalformedReport."""
        try:
            return _convert(body, cls)
        except msgspec.ValidationError as error:
            raise MalformedReport(f"not a load report: {error}") from None

    @classmethod
    def decode(cls, raw: bytes) -> LoadReport:
        """A report as sent (JSON bytes), checked: anything else raises MalformedReport."""
        try:
            return _DECODER.decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError) as error:
            raise MalformedReport(f"not a load report: {error}") from None


_DECODER = msgspec.json.Decoder(LoadReport)
_ENCODER = msgspec.json.Encoder()
# What `LoadReport.of` takes unless told: the state of a substation that gives each session its maximum and
# has nothing queued, paused or charging to end.
OF_DEFAULTS: dict[str, object] = {
    "next_session_end_s": None,
    "allocation": Allocation.FIXED,
    "headroom_kw": 0.0,
    "admission_headroom_kw": 0.0,
    "committed_kw": 0.0,
    "paused_sessions": 0,
    "queued_sessions": 0,
    "queue_limit": 0,
    "queue_by_priority": (0,) * len(PRIORITIES),
    "shareable_kw": (0.0,) * len(PRIORITIES),
    "sharing_sessions": (0,) * len(PRIORITIES),
    "demand_kw": 0.0,
    "estimated_start_s": (0.0,) * len(PRIORITIES),
}


def _rounded(name: str, value: object) -> object:
    digits = 3 if name.endswith("_s") else 6
    if type(value) is float:
        return round(value, digits)
    if type(value) is tuple:
        return tuple(round(v, digits) if type(v) is float else v for v in value)
    return value


def _convert(body: object, kind: type[LoadReport]) -> LoadReport:
    return msgspec.convert(body, kind)
