"""The OCPP service: a central system (CSMS) for chargers speaking OCPP 1.6J or 2.0.1 over WebSocket, whose
limits come from the substations' sharing and whose meters go back to them (docs/ocpp.md)."""
