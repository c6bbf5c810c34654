"""The one gunicorn configuration every service runs with, in containers and under `make up` alike.

Settings come from the environment so compose, the local runner and the tests differ only in values.
"""

import os
import resource
import signal
import tempfile
import threading

bind = [os.environ.get("BIND", "0.0.0.0:8000")]
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
# gevent: one process serves many concurrent requests that mostly wait on the network.
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gevent")
# Room for many idle or slow clients at once: each costs a greenlet, and none holds one longer than the
# body timeout (grid_common/edge.py), so health checks and normal requests still find a place.
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "4000"))
timeout = 30
# Each worker builds its own app after the fork: its own connection pools, and for a balancer its own view
# and Balancer-Id (substations tell balancers apart by it, so forked copies must not share one).
preload_app = False
graceful_timeout = int(os.environ.get("GRACEFUL_TIMEOUT_S", "10"))
shutdown_drain_s = float(os.environ.get("SHUTDOWN_DRAIN_S", "0"))
if not 0 <= shutdown_drain_s < graceful_timeout:
    raise SystemExit(
        f"SHUTDOWN_DRAIN_S must be at least 0 and less than GRACEFUL_TIMEOUT_S ({graceful_timeout}), "
        f"got {shutdown_drain_s:g}: the master stops waiting for its workers after GRACEFUL_TIMEOUT_S"
    )
keepalive = 5
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
accesslog = "-" if os.environ.get("ACCESS_LOG", "true").lower() in {"1", "true", "yes", "on"} else None
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
proc_name = os.environ.get("SERVICE_NAME")
# gunicorn 24+ opens a control socket at one fixed path per user: several services on one host would
# fight over it, and containers run with a read-only root. Nothing here uses it.
control_socket_disable = True

if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # Several workers each count their own requests; prometheus_client sums them through this directory.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="prometheus-")


def on_starting(server):
    """As many open files as the system lets us: every connection is one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def post_worker_init(worker):
    """Errors gunicorn answers itself are problem+json; SIGTERM turns readiness off for SHUTDOWN_DRAIN_S
    while serving on, then starts gunicorn's graceful exit."""
    from gunicorn import util

    from grid_common.edge import write_problem

    util.write_error = write_problem  # gunicorn looks it up at each error: HTML pages no more
    if shutdown_drain_s <= 0:
        return
    from grid_common.lifecycle import start_draining

    def drain_then_exit(signum, frame):
        start_draining()
        worker.log.info("draining for %.1f s before shutting down", shutdown_drain_s)
        if "gevent" in worker_class:
            import gevent  # a gevent signal handler runs in the event loop: it must not block, so no thread

            gevent.spawn_later(shutdown_drain_s, worker.handle_exit, signum, frame)
        else:
            threading.Timer(shutdown_drain_s, worker.handle_exit, (signum, frame)).start()

    signal.signal(signal.SIGTERM, drain_then_exit)


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
