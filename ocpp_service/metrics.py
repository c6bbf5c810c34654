"""The OCPP service's metrics (its own registry; `GET /metrics` on its port)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)

CONNECTED = Gauge(
    "ocpp_chargers_connected", "Chargers connected now, by OCPP version.", ["protocol"], registry=REGISTRY
)
MESSAGES = Counter(
    "ocpp_messages_total",
    "OCPP messages from chargers, by action and result (accepted, error: answered with a CallError).",
    ["action", "result"],
    registry=REGISTRY,
)
PROFILES = Counter(
    "ocpp_profiles_total",
    "SetChargingProfile sent, by purpose and the charger's answer (accepted, rejected).",
    ["purpose", "result"],
    registry=REGISTRY,
)
DELIVERY = Histogram(
    "ocpp_profile_delivery_seconds",
    "From learning a session's new limit to its charger accepting the profile that carries it.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0),
    registry=REGISTRY,
)
REMOTE_STARTS = Counter(
    "ocpp_remote_starts_total",
    "Remote starts asked of chargers for clients, by the charger's answer (accepted, rejected, error, no_answer).",
    ["result"],
    registry=REGISTRY,
)

# Every series from the start, at 0: the first rejection is then an increase like any other.
for _purpose in ("TxDefaultProfile", "TxProfile"):
    for _result in ("accepted", "rejected"):
        PROFILES.labels(_purpose, _result)
for _result in ("accepted", "rejected", "error", "no_answer"):
    REMOTE_STARTS.labels(_result)
