"""A removed substation's series: gone with it, and not brought back by a call that was under way."""

from __future__ import annotations

import threading

from prometheus_client import REGISTRY, generate_latest

from grid_common.upstream import UpstreamUnavailable
from load_balancer import metrics
from load_balancer.grid_view import GridView
from load_balancer.poller import Poller


class SlowToFail:
    """A substation's /load that answers only when told to, and then with a refused connection."""

    def __init__(self) -> None:
        self.called = threading.Event()
        self.answer = threading.Event()

    def load(self, url, *, timeout_s):
        self.called.set()
        assert self.answer.wait(5), "the test never let the call end"
        raise UpstreamUnavailable(f"{url}/load: refused")


def exposition() -> str:
    return generate_latest(REGISTRY).decode()


def test_a_poll_under_way_when_its_substation_is_removed_does_not_bring_its_series_back():
    name = "removed-while-polled"
    grid, substation = GridView([(name, "http://127.0.0.1:9")]), SlowToFail()
    metrics.initialize([name], "least_utilization")
    poller = Poller(grid, substation, interval_s=1, timeout_s=1)
    poll = threading.Thread(target=poller.refresh, args=(grid.get(name),))
    poll.start()
    assert substation.called.wait(5)
    grid.remove(name)  # what DELETE /substations/<name> does, while the poll waits for its answer
    metrics.forget(name)
    assert f'substation="{name}"' not in exposition()
    substation.answer.set()
    poll.join(5)
    assert not poll.is_alive()
    assert f'substation="{name}"' not in exposition(), "the failed poll counted for a removed substation"


def test_a_substation_registered_again_under_its_name_is_counted_again():
    name = "registered-again"
    metrics.initialize([name], "least_utilization")
    metrics.forget(name)
    metrics.of_substation(metrics.REFUSALS, name).inc()
    assert f'substation="{name}"' not in exposition()
    metrics.initialize([name], "least_utilization")
    metrics.of_substation(metrics.REFUSALS, name).inc()
    assert f'balancer_admission_refusals_total{{substation="{name}"}} 1.0' in exposition()
