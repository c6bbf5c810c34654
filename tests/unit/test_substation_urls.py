"""What a substation URL may be: a place on the grid's networks, nothing more."""

from __future__ import annotations

import ipaddress

import pytest

from load_balancer.substation_urls import SubstationUrls, networks_around, url_shape_problem

ADDRESSES = {
    "substation4": ["10.0.3.12"],
    "elsewhere": ["192.168.1.5"],
    "metadata": ["169.254.169.254"],
    "local": ["127.0.0.1"],
    "split": ["10.0.3.13", "8.8.8.8"],
}


def urls(networks=("10.0.3.0/24",)) -> SubstationUrls:
    return SubstationUrls([ipaddress.ip_network(n) for n in networks], resolve=lambda host: ADDRESSES.get(host, []))


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://substation4:5000", None),
        ("https://substation4", None),
        ("http://admin:pw@substation4:5000", "credentials"),
        ("http://substation4:5000/admin", "no path"),
        ("http://substation4:5000?x=1", "no path"),
        ("http://substation4:5000#x", "no path"),
        ("file:///etc/passwd", "http(s) URL"),
        ("http://substation4:99999", "a URL such as"),
        ("http://elsewhere:5000", "outside the networks"),
        ("http://metadata", "link-local"),
        ("http://169.254.169.254/latest/meta-data", "no path"),
        ("http://split:5000", "outside the networks"),
        ("http://nowhere:5000", "does not resolve"),
    ],
)
def test_only_a_place_on_the_grids_networks_is_a_substation_url(url, problem):
    found = urls().problem(url)
    assert (found is None) if problem is None else (problem in found), found


def test_link_local_is_refused_even_if_allowed():
    assert "link-local" in urls(["0.0.0.0/0"]).problem("http://metadata")


def test_the_default_networks_are_those_of_the_configured_topology():
    assert networks_around(["10.0.3.7", "10.0.3.200", "127.0.0.1"]) == [
        ipaddress.ip_network("10.0.3.0/24"),
        ipaddress.ip_network("127.0.0.0/8"),
    ]
    topology = SubstationUrls.of_topology(["substation4", "local"], resolve=lambda host: ADDRESSES[host])
    assert topology.problem("http://local:5009") is None and topology.problem("http://elsewhere") is not None


def test_the_shape_alone():
    assert url_shape_problem("http://h:1/") is None
    assert url_shape_problem("http://h:0") is not None
