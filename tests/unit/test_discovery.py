"""Substations found by DNS: each address is asked its name; those that leave the name are taken out."""

from __future__ import annotations

from grid_common.upstream import UpstreamUnavailable
from load_balancer.discovery import Discovery
from load_balancer.grid_view import GridView
from tests.helpers import load_report


class FakeSubstations:
    """Answers GET <url>/load for the substations "running" at each URL."""

    def __init__(self) -> None:
        self.at: dict[str, str] = {}  # url -> name
        self.sequence = 0

    def load(self, url, *, timeout_s):
        if url not in self.at:
            raise UpstreamUnavailable(f"{url}/load: refused")
        self.sequence += 1
        return load_report(self.at[url], epoch=url, sequence=self.sequence)


def discovery_over(addresses: set[str], substations: FakeSubstations, grid: GridView) -> Discovery:
    return Discovery(
        grid, substations, "substation.grid.svc", 5000, timeout_s=0.5, strategy="least_utilization",
        resolve=lambda host, port: set(addresses), clock=lambda: 100.0,
    )  # fmt: skip


def names(grid: GridView) -> dict[str, str]:
    return {known.name: known.url for known in grid.all()}


def test_scaling_the_service_up_and_down_is_all_it_takes():
    grid, substations, addresses = GridView([]), FakeSubstations(), {"10.0.0.1", "10.0.0.2"}
    substations.at = {"http://10.0.0.1:5000": "substation-0", "http://10.0.0.2:5000": "substation-1"}
    discovery = discovery_over(addresses, substations, grid)
    discovery.run_once()
    assert names(grid) == {"substation-0": "http://10.0.0.1:5000", "substation-1": "http://10.0.0.2:5000"}
    assert all(view.healthy for view in grid.all()), "taken with its first report"

    addresses.add("10.0.0.3")
    substations.at["http://10.0.0.3:5000"] = "substation-2"
    discovery.run_once()
    assert set(names(grid)) == {"substation-0", "substation-1", "substation-2"}

    addresses.discard("10.0.0.3")
    discovery.run_once()
    assert set(names(grid)) == {"substation-0", "substation-1"}


def test_a_rescheduled_substation_keeps_its_name_at_its_new_address():
    grid, substations, addresses = GridView([]), FakeSubstations(), {"10.0.0.1"}
    substations.at = {"http://10.0.0.1:5000": "substation-0"}
    discovery = discovery_over(addresses, substations, grid)
    discovery.run_once()
    addresses.clear()
    addresses.add("10.0.0.9")
    substations.at = {"http://10.0.0.9:5000": "substation-0"}
    discovery.run_once()
    assert names(grid) == {"substation-0": "http://10.0.0.9:5000"}


def test_an_address_that_does_not_answer_yet_is_tried_again_later():
    grid, substations, addresses = GridView([]), FakeSubstations(), {"10.0.0.1"}
    discovery = discovery_over(addresses, substations, grid)
    discovery.run_once()
    assert names(grid) == {}
    substations.at = {"http://10.0.0.1:5000": "substation-0"}
    discovery.run_once()
    assert names(grid) == {"substation-0": "http://10.0.0.1:5000"}


def test_substations_listed_by_hand_stay_whatever_dns_says():
    grid, substations = GridView([("fixed", "http://fixed:5000")]), FakeSubstations()
    discovery_over(set(), substations, grid).run_once()
    assert names(grid) == {"fixed": "http://fixed:5000"}
