"""Rendering Prometheus metrics correctly whether gunicorn runs one worker or several."""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess


def render_metrics(registry: CollectorRegistry | None = None) -> bytes:
    if registry is not None:
        return generate_latest(registry)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Several workers: each writes its samples to files; aggregate them all, not just this worker's.
        aggregate = CollectorRegistry()
        multiprocess.MultiProcessCollector(aggregate)
        return generate_latest(aggregate)
    return generate_latest(REGISTRY)


__all__ = ["CONTENT_TYPE_LATEST", "render_metrics"]
