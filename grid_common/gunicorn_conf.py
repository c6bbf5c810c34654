"""The one gunicorn configuration every service runs with, in containers and under `make up` alike.

Settings come from the environment so compose, the local runner and the tests differ only in values.
"""

import os
import tempfile

bind = [os.environ.get("BIND", "0.0.0.0:8000")]
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
# gevent: one process serves many concurrent requests that mostly wait on the network.
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gevent")
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "1000"))
timeout = 30
graceful_timeout = int(os.environ.get("GRACEFUL_TIMEOUT_S", "10"))
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


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
