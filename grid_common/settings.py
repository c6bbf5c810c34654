"""Reading configuration from the environment, with every mistake reported at once at start-up."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from grid_common.protocol.charge_request import NOMINAL_VOLTAGE_V

# A bearer token (TOPOLOGY_TOKEN, GRID_LIMIT_TOKEN) shorter than this is refused at start-up.
MIN_TOKEN_LENGTH = 16


class ConfigError(ValueError):
    """Raised at start-up with every invalid setting listed, so one restart fixes them all."""

    def __init__(self, service: str, errors: list[str]) -> None:
        self.errors = errors
        lines = "\n".join(f"  - {error}" for error in errors)
        super().__init__(f"invalid configuration for {service}:\n{lines}")


class EnvReader:
    """Typed access to environment variables that collects errors instead of failing on the first."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ
        self.errors: list[str] = []

    def _raw(self, name: str, default: str | None) -> str | None:
        value = self.environ.get(name)
        if value is None or value.strip() == "":
            return default
        return value.strip()

    def string(self, name: str, default: str | None = None, *, required: bool = False) -> str:
        value = self._raw(name, default)
        if value is None:
            if required:
                self.errors.append(f"{name} is required but not set")
            return ""
        return value

    def number(
        self,
        name: str,
        default: float,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
        exclusive_minimum: bool = False,
    ) -> float:
        return self._parse(name, default, float, minimum, maximum, exclusive_minimum)

    def integer(self, name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
        return self._parse(name, default, int, minimum, maximum, False)

    def voltage(self) -> float:
        """NOMINAL_VOLTAGE_V, the voltage between a phase and neutral that currents become powers at: every
        service that reads a request in amperes, or says one, reads the same setting."""
        return self.number("NOMINAL_VOLTAGE_V", NOMINAL_VOLTAGE_V, minimum=100, maximum=400)

    def shares(self, name: str, default: tuple[float, ...]) -> tuple[float, ...]:
        """Comma-separated fractions of a whole, as many as `default` has, none negative, summing to 1."""
        raw = self._raw(name, None)
        if raw is None:
            return default
        try:
            values = tuple(float(part) for part in raw.split(","))
        except ValueError:
            values = ()
        if len(values) != len(default) or any(not math.isfinite(v) or v < 0 for v in values):
            self.errors.append(f"{name} must be {len(default)} fractions separated by commas, got {raw!r}")
            return default
        if abs(sum(values) - 1.0) > 1e-6:
            self.errors.append(f"{name} must sum to 1, got {raw!r} (sum {sum(values):g})")
            return default
        return tuple(v / sum(values) for v in values)

    def flag(self, name: str, default: bool) -> bool:
        value = self._raw(name, None)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        self.errors.append(f"{name} must be true or false, got {value!r}")
        return default

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self._raw(name, default) or default
        if value not in choices:
            self.errors.append(f"{name} must be one of {', '.join(choices)}, got {value!r}")
            return default
        return value

    def _parse(self, name, default, kind: Callable, minimum, maximum, exclusive_minimum):
        raw = self._raw(name, None)
        if raw is None:
            return default
        try:
            value = kind(raw)
        except ValueError:
            self.errors.append(f"{name} must be a {'whole ' if kind is int else ''}number, got {raw!r}")
            return default
        if isinstance(value, float) and not math.isfinite(value):
            self.errors.append(f"{name} must be finite, got {raw!r}")
            return default
        if minimum is not None and (value <= minimum if exclusive_minimum else value < minimum):
            relation = "greater than" if exclusive_minimum else "at least"
            self.errors.append(f"{name} must be {relation} {minimum}, got {raw!r}")
            return default
        if maximum is not None and value > maximum:
            self.errors.append(f"{name} must be at most {maximum}, got {raw!r}")
            return default
        return value

    def check(self, service: str) -> None:
        if self.errors:
            raise ConfigError(service, self.errors)


def is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in {"http", "https"} and bool(parts.hostname)
