"""The `ocpp` library's work per message, on a shorter path, for both ends of a connection: the central system
(ocpp_service) and the simulated chargers (load_tester/fleet). Same messages, same checks, same errors as the
library's; a fraction of its CPU, which matters once thousands of chargers share a machine.

- schemas: the official JSON schemas compiled once into checks that may only say yes;
- calls: a ChargePoint mixin whose handling of calls (both ways) renames keys and builds dicts without the
  library's regular expressions, deep copies and per-message signature inspection.
"""
