"""Fixtures every kind of test may use. Helpers live in tests/helpers.py and tests/fakes.py, not here.

Tests are grouped by what they start, and each folder's tests carry its marker (`pytest -m unit`):
- unit: the pure domain, no Flask and no sockets;
- app: each service's Flask app in this process, its outbound calls handed to fakes or to other apps;
- integration: real gunicorn processes on loopback, for what needs them (faults, shutdown, persistence,
  replicas, monitoring, the browser, the load tester);
- deployment: the compose file, the Kubernetes manifests, the monitoring configuration.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import close_connections
from tools.stack import Stack

KINDS = ("unit", "app", "integration", "deployment")
# Balancers in tests poll often, so a test waits for a fresh view in tenths of seconds.
TEST_DEFAULTS = {"balancer": {"POLL_INTERVAL_S": "0.2"}}


def pytest_collection_modifyitems(config, items):
    tests = Path(__file__).parent
    for item in items:
        kind = Path(item.fspath).relative_to(tests).parts[0]
        if kind in KINDS:
            item.add_marker(kind)
    # Long tests first: run in parallel, a long one started last would keep the run going after the rest.
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


# Modules whose tests share a module-scoped grid or set-up that must run once: each is sent to one worker, whole
# (pytest-xdist 3.8's own grouping, xdist_group, does nothing under pytest 9). The compose file's grid binds
# the suite's fixed ports; the hostile-input tests share one grid rather than start one per worker; the
# Grafana type check's `npm ci`, run by two workers at once in one folder, fails (ENOTEMPTY).
ONE_WORKER_MODULES = (
    "tests/deployment/test_compose_run.py",
    "tests/integration/test_hostile.py",
    "tests/deployment/test_grafana_types.py",
)


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class WholeModulesWhereShared(LoadScopeScheduling):
        """Each test is a unit of work of its own, but for the modules above, each a unit whole."""

        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if module in ONE_WORKER_MODULES else nodeid

    return WholeModulesWhereShared(config, log)


@pytest.fixture
def services(tmp_path):
    """Real processes of the suite; all stopped when the test ends."""
    stack = Stack(tmp_path, defaults=TEST_DEFAULTS)
    yield stack
    close_connections()
    stack.kill_all()  # nothing left to finish: the test has seen what it needed


@pytest.fixture(scope="module")
def module_services(tmp_path_factory):
    """Real processes shared by the tests of a module (for a grid that only answers what they send, whose
    state none of them relies on); all stopped when the module's tests end."""
    stack = Stack(tmp_path_factory.mktemp("module-services"), defaults=TEST_DEFAULTS)
    yield stack
    close_connections()
    stack.kill_all()  # nothing left to finish: the test has seen what it needed
