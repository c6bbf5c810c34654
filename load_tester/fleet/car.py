"""A simulated electric car on a charger: how much it draws under a limit, and the energy it takes.

Pure (no I/O; every question takes `now`, wall seconds). The car follows IEC 61851 as a charger sees it:
it never draws less than 6 A per phase (offered less, it pauses at 0), it follows a higher offer at once and a
lower one after `follow_delay_s` (IEC allows up to 5 s), and it stops drawing when its energy need is met. A
`misbehaving` car ignores every limit and draws its maximum, for fault tests.

Energy runs on the grid's simulated clock: `advance(now, time_scale)` adds draw x wall seconds x time_scale.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from load_tester.fleet.profiles import DEFAULT_VOLTAGE

IEC_MIN_CURRENT_A = 6.0
DEFAULT_FOLLOW_DELAY_S = 1.0


@dataclass
class Car:
    phases: int = 3  # 1 or 3
    max_current_a: float = 16.0  # per phase
    energy_need_wh: float = 20_000.0
    voltage: float = DEFAULT_VOLTAGE
    min_current_a: float = IEC_MIN_CURRENT_A
    follow_delay_s: float = DEFAULT_FOLLOW_DELAY_S
    misbehaving: bool = False
    name: str = ""
    # When its driver leaves (wall seconds): an ISO 15118 car tells a 2.0.1 charger, which tells the CSMS.
    departure_at: float | None = None
    delivered_wh: float = 0.0
    _draw_w: float = field(default=0.0, repr=False)
    _lower_offer_since: float | None = field(default=None, repr=False)  # when a lower offer came, not yet followed
    _advanced_to: float | None = field(default=None, repr=False)
    # The phases it draws on now: its own, or fewer where its charger allows fewer (a profile's numberPhases, a
    # 1-phase charger), as it was last offered (draw_w).
    phases_in_use: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        if self.phases not in (1, 2, 3):
            raise ValueError(f"a car has 1 to 3 phases, not {self.phases}")
        if self.max_current_a < self.min_current_a:
            raise ValueError(f"max current {self.max_current_a} A is below the minimum {self.min_current_a} A")
        self.phases_in_use = self.phases

    @property
    def max_power_w(self) -> float:
        return self.phases * self.max_current_a * self.voltage

    @property
    def need_met(self) -> bool:
        return self.delivered_wh >= self.energy_need_wh

    @property
    def remaining_wh(self) -> float:
        return max(0.0, self.energy_need_wh - self.delivered_wh)

    @property
    def power_w(self) -> float:
        """What the car draws now (as of the last `draw_w`)."""
        return self._draw_w

    @property
    def current_per_phase_a(self) -> float:
        return self._draw_w / (self.phases_in_use * self.voltage)

    def min_power_on(self, phases: int | None = None) -> float:
        """Its least power on `phases` of its own (None: all of them): 6 A on each."""
        return (self.phases if phases is None else min(self.phases, phases)) * self.min_current_a * self.voltage

    def wanted_w(self, limit_w: float, phases: int | None = None) -> float:
        """What the car would draw under `limit_w`, on at most `phases` phases (None: all of its own), once it
        has followed it."""
        on = self.phases if phases is None else min(self.phases, phases)
        if self.need_met:
            return 0.0
        if self.misbehaving:
            return self.max_power_w
        if limit_w < self.min_power_on(on):
            return 0.0  # IEC 61851: below 6 A per phase the car pauses rather than draw less
        return min(limit_w, on * self.max_current_a * self.voltage)

    def draw_w(self, limit_w: float, now: float, phases: int | None = None) -> float:
        """Offer `limit_w` at `now`, on at most `phases` phases (None: all of its own), and return what the car
        draws: a rise at once, a fall `follow_delay_s` after the first lower offer (a car told twice to go lower
        follows the latest when the first delay ends). The phases it draws on change when its draw does.

        Call `advance(now, ...)` first, so that the energy until now is counted at the old draw."""
        on = self.phases if phases is None or self.misbehaving else min(self.phases, phases)
        wanted = self.wanted_w(limit_w, phases)
        if wanted >= self._draw_w:
            self._draw_w, self.phases_in_use = wanted, on
            self._lower_offer_since = None
        elif self.need_met:
            self._draw_w = 0.0  # full: the car stops at once, whatever it was offered
            self._lower_offer_since = None
        else:
            if self._lower_offer_since is None:
                self._lower_offer_since = now
            if now - self._lower_offer_since >= self.follow_delay_s:
                self._draw_w, self.phases_in_use = wanted, on
                self._lower_offer_since = None
        return self._draw_w

    def follow_deadline(self) -> float | None:
        """When a pending lower offer will be followed (None if there is none): a time worth waking at."""
        return None if self._lower_offer_since is None else self._lower_offer_since + self.follow_delay_s

    def advance(self, now: float, time_scale: float = 1.0) -> float:
        """Count the energy drawn since the last call (at the draw in force then); returns the Wh added.
        The need is never overshot: the last slice is cut where it is met."""
        if self._advanced_to is None or now <= self._advanced_to:
            self._advanced_to = now if self._advanced_to is None else max(self._advanced_to, now)
            return 0.0
        added = self._draw_w * (now - self._advanced_to) * time_scale / 3600.0
        self._advanced_to = now
        if not self.misbehaving:
            added = min(added, self.remaining_wh)
        self.delivered_wh += added
        if self.need_met:
            self._draw_w = 0.0
        return added

    def plugged_in(self, now: float) -> None:
        """Plugged in at `now`: energy counts from here."""
        self._advanced_to = now
        self._draw_w = 0.0
        self._lower_offer_since = None


@dataclass(frozen=True)
class CarModel:
    """A kind of car in the fleet's mix."""

    name: str
    phases: int
    max_current_a: float

    @property
    def max_power_kw(self) -> float:
        return self.phases * self.max_current_a * DEFAULT_VOLTAGE / 1000


# 1 x 32 A = 7.4 kW, 3 x 16 A = 11 kW, 3 x 32 A = 22 kW at 230 V.
CAR_MIX: tuple[CarModel, ...] = (
    CarModel("1-phase 7.4 kW", 1, 32.0),
    CarModel("3-phase 11 kW", 3, 16.0),
    CarModel("3-phase 22 kW", 3, 32.0),
)
ENERGY_NEED_RANGE_WH = (5_000.0, 40_000.0)


def random_car(
    rng: random.Random,
    *,
    mix: tuple[CarModel, ...] = CAR_MIX,
    energy_range_wh: tuple[float, float] = ENERGY_NEED_RANGE_WH,
    follow_delay_s: float = DEFAULT_FOLLOW_DELAY_S,
) -> Car:
    """A car drawn from the mix, its need uniform in the range (rounded to 100 Wh)."""
    model = rng.choice(mix)
    need = round(rng.uniform(*energy_range_wh), -2)
    return Car(
        phases=model.phases,
        max_current_a=model.max_current_a,
        energy_need_wh=need,
        follow_delay_s=follow_delay_s,
        name=model.name,
    )
