from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from grid_common.protocol import ALLOCATIONS, NOMINAL_VOLTAGE_V, Allocation, is_substation_name
from grid_common.settings import MIN_TOKEN_LENGTH, EnvReader
from substation_service.circuits import CircuitError, CircuitTree, parse_circuits
from substation_service.phases import BALANCED, PhaseSupply

MAX_HOSTED = 1000


@dataclass(frozen=True)
class SubstationConfig:
    name: str
    capacity_kw: float = 150.0
    charger_max_power_kw: float = 22.0
    # 360: one simulated hour per 10 s, so the default 11 kWh at 11 kW session lasts 10 s.
    time_scale: float = 360.0
    background_peak_fraction: float = 0.3
    background_phase_hours: float = 0.0
    session_history_limit: int = 10_000
    # More than 1: this process simulates that many substations, `<name>1` to `<name>N`, each under its own
    # path (`/<name>7/begin_charging`), for simulations and benchmarks of large grids on one machine.
    count: int = 1
    # A SQLite file where sessions outlive the process; empty: in memory only.
    session_db: str = ""
    # "fair" shares the headroom among sessions (admitted on their minimum); "fixed" gives each its maximum.
    allocation: Allocation = Allocation.FAIR
    # Wall seconds between reallocations (every admission, stop and completion reallocates too).
    allocation_step_s: float = 1.0
    # Simulated minutes of background demand a session's minimum must fit under to be admitted: long enough
    # that a session just started is seldom paused by the next rise, short enough not to refuse a car for a
    # peak hours away (pausing handles what comes). A quarter hour: the settlement period of power markets.
    admission_lookahead_min: float = 15.0
    # Sessions that may wait in the queue (wait: true); beyond it, 503.
    queue_limit: int = 100
    # Chargers' meters (substation_service/meter.py), in wall seconds: a meter silent this long counts at the
    # session's limit (and its charger's default); a car has this long to follow a lower limit (IEC 61851);
    # a car drawing more than the margin below its limit this long gives the rest of its share to others.
    meter_stale_s: float = 10.0
    meter_follow_s: float = 5.0
    meter_underdraw_s: float = 10.0
    meter_margin_kw: float = 1.0
    # Currents are per phase at this voltage (phase to neutral); the background's share of each phase (L1, L2,
    # L3: its imbalance), each phase holding a third of the capacity.
    nominal_voltage_v: float = NOMINAL_VOLTAGE_V
    background_phase_shares: tuple[float, float, float] = BALANCED
    # Circuits inside the substation (feeders, circuits), each with a current limit a phase or a power limit: a
    # JSON list of {"name", "parent"?, "max_current_a" | "max_power_kw"}; empty: none (circuits.py).
    circuits: str = ""
    # No flapping (damping.py), in wall seconds: a limit rises by at most this share of a car's maximum a second
    # (0: at once; OpenEMS ramps about 0.03), and a paused car stays paused at least this long (0: it resumes as
    # soon as it fits). Off by default: at TIME_SCALE 360 a default session lasts 10 s.
    ramp_up_per_s: float = 0.0
    min_pause_s: float = 0.0
    # Chargers that can switch a car between three phases and one (phase_switching.py): wall seconds a car stays
    # on its phase count before it may switch again (hysteresis, with a 20 % margin to switch back up).
    phase_switch_hold_s: float = 10.0
    # Bearer token for PUT and DELETE /grid_limit (the grid operator's limits); empty: they are off.
    grid_limit_token: str = field(default="", repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SubstationConfig:
        env = EnvReader(environ)
        name = env.string("SUBSTATION_NAME", required=True)
        if name and not is_substation_name(name):
            env.errors.append(f"SUBSTATION_NAME must be 1-63 letters, digits, _ or -, got {name!r}")
        config = cls(
            name=name,
            capacity_kw=env.number("CAPACITY_KW", cls.capacity_kw, minimum=0, exclusive_minimum=True),
            charger_max_power_kw=env.number(
                "CHARGER_MAX_POWER_KW", cls.charger_max_power_kw, minimum=0, exclusive_minimum=True
            ),
            time_scale=env.number("TIME_SCALE", cls.time_scale, minimum=0, exclusive_minimum=True, maximum=1e7),
            background_peak_fraction=env.number(
                "BACKGROUND_PEAK_FRACTION", cls.background_peak_fraction, minimum=0, maximum=0.95
            ),
            background_phase_hours=env.number(
                "BACKGROUND_PHASE_HOURS", cls.background_phase_hours, minimum=0, maximum=24
            ),
            session_history_limit=env.integer("SESSION_HISTORY_LIMIT", cls.session_history_limit, minimum=0),
            count=env.integer("SUBSTATION_COUNT", cls.count, minimum=1, maximum=MAX_HOSTED),
            session_db=env.string("SESSION_DB", cls.session_db),
            allocation=Allocation(env.choice("ALLOCATION", cls.allocation, ALLOCATIONS)),
            allocation_step_s=env.number("ALLOCATION_STEP_S", cls.allocation_step_s, minimum=0.05, maximum=60),
            admission_lookahead_min=env.number(
                "ADMISSION_LOOKAHEAD_MIN", cls.admission_lookahead_min, minimum=0, maximum=24 * 60
            ),
            queue_limit=env.integer("QUEUE_LIMIT", cls.queue_limit, minimum=0, maximum=100_000),
            meter_stale_s=env.number("METER_STALE_S", cls.meter_stale_s, minimum=0, exclusive_minimum=True),
            meter_follow_s=env.number("METER_FOLLOW_S", cls.meter_follow_s, minimum=0),
            meter_underdraw_s=env.number("METER_UNDERDRAW_S", cls.meter_underdraw_s, minimum=0),
            meter_margin_kw=env.number("METER_MARGIN_KW", cls.meter_margin_kw, minimum=0),
            grid_limit_token=env.string("GRID_LIMIT_TOKEN", ""),
            nominal_voltage_v=env.voltage(),
            background_phase_shares=env.shares("BACKGROUND_PHASE_SHARES", BALANCED),  # type: ignore[arg-type]
            circuits=env.string("CIRCUITS", ""),
            ramp_up_per_s=env.number("RAMP_UP_PER_S", cls.ramp_up_per_s, minimum=0, maximum=10),
            min_pause_s=env.number("MIN_PAUSE_S", cls.min_pause_s, minimum=0, maximum=3600),
            phase_switch_hold_s=env.number("PHASE_SWITCH_HOLD_S", cls.phase_switch_hold_s, minimum=0, maximum=3600),
        )
        if config.circuits:
            try:
                parse_circuits(config.circuits, config.nominal_voltage_v)
            except CircuitError as error:
                env.errors.append(f"CIRCUITS: {error}")
        if config.grid_limit_token and len(config.grid_limit_token) < MIN_TOKEN_LENGTH:
            env.errors.append(f"GRID_LIMIT_TOKEN must be at least {MIN_TOKEN_LENGTH} characters")
        if config.session_db and not Path(config.session_db).parent.is_dir():
            env.errors.append(f"SESSION_DB {config.session_db!r}: its folder does not exist")
        if config.count > 1 and len(f"{name}{config.count}") > 63:
            env.errors.append(f"SUBSTATION_NAME {name!r} is too long to number {config.count} substations")
        workers = env.integer("WEB_CONCURRENCY", 1)
        if workers != 1:
            env.errors.append(
                f"WEB_CONCURRENCY must be 1 for a substation: its sessions live in one process, got {workers}"
            )
        env.check("substation_service")
        return config

    @property
    def circuit_tree(self) -> CircuitTree:
        return parse_circuits(self.circuits, self.nominal_voltage_v) if self.circuits else CircuitTree()

    @property
    def supply(self) -> PhaseSupply:
        return PhaseSupply(self.nominal_voltage_v, self.background_phase_shares)

    @property
    def admission_lookahead_s(self) -> float:
        """The look-ahead in wall seconds."""
        return self.admission_lookahead_min * 60.0 / self.time_scale

    def hosted(self) -> list[SubstationConfig]:
        """The substations this process simulates: itself, or `count` numbered copies of itself."""
        if self.count == 1:
            return [self]
        return [
            replace(self, name=name, count=1, session_db=self._session_db_of(name))
            for name in (f"{self.name}{number}" for number in range(1, self.count + 1))
        ]

    def _session_db_of(self, name: str) -> str:
        """Each hosted substation keeps its own file beside the configured one: `sessions-s7.sqlite3`."""
        if not self.session_db:
            return ""
        path = Path(self.session_db)
        return str(path.with_name(f"{path.stem}-{name}{path.suffix}"))
