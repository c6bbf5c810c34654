"""Shutting down without cutting anyone off: readiness turns off first, then the process stops.

On SIGTERM a worker first answers /readyz with 503 for SHUTDOWN_DRAIN_S while it goes on serving, so a
load balancer that probes readiness (Kubernetes, a proxy) stops sending new requests; only then does
gunicorn's graceful shutdown begin: stop accepting, finish every request in flight, exit.
"""

from __future__ import annotations

import threading

_draining = threading.Event()


def start_draining() -> None:
    _draining.set()


def draining() -> bool:
    return _draining.is_set()
