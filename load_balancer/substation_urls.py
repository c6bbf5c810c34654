"""Where a balancer may be told a substation is: a URL that is only a place, on a network the grid uses.

A registration (POST /substations) names a URL the balancer will call every second: it must not be a way
to aim the balancer anywhere. A substation URL is `http(s)://host[:port]`, nothing more: no credentials
(they would show in GET /substations), no path, query or fragment, and a host that is a name or an address
in its usual form (`2130706433`, `0x7f000001` or `127.1` are loopback to a resolver, and slip past a
reader). Its host must resolve only to addresses in the allowed networks (SUBSTATION_NETWORKS), which by
default are the networks the configured topology uses: a /24 (IPv4) or /64 (IPv6) around each address of
SUBSTATIONS and SUBSTATIONS_DNS. Link-local addresses (cloud metadata services live there), multicast and
unspecified addresses are never allowed. A name can resolve elsewhere later (DNS rebinding): the address
of every connection to a registered substation is checked again as it is made (`address_problem`), and
what answers there must be that substation (load_balancer/routes/topology.py).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from typing import cast
from urllib.parse import urlsplit

from grid_common.substation_urls import host_form_problem, url_shape_problem  # noqa: F401 - re-exported

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# A last label a resolver reads as a number (WHATWG's "ends in a number"): decimal, or hexadecimal with 0x.
Resolve = Callable[[str], list[str]]
NEVER = [ipaddress.ip_network(n) for n in ("169.254.0.0/16", "fe80::/10", "224.0.0.0/4", "ff00::/8", "0.0.0.0/32")]


def resolve_all(host: str) -> list[str]:
    """Every address `host` resolves to; none when it does not."""
    try:
        # An IPv4 or IPv6 socket address starts with the address as text (typeshed also allows the
        # (int, bytes) of a Python built without IPv6, which hands out no such address).
        return sorted({cast(str, info[4][0]) for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)})
    except (socket.gaierror, UnicodeError):
        return []


def networks_around(addresses: Iterable[str]) -> list[Network]:
    """The network each address is on, as far as the balancer guesses: /24 for IPv4, /64 for IPv6, and
    the whole loopback network for a loopback address."""
    networks: list[Network] = []
    for text in addresses:
        address = ipaddress.ip_address(text)
        if address.is_loopback:
            network = ipaddress.ip_network("127.0.0.0/8" if address.version == 4 else "::1/128")
        else:
            network = ipaddress.ip_network(f"{address}/{24 if address.version == 4 else 64}", strict=False)
        if network not in networks:
            networks.append(network)
    return networks


class SubstationUrls:
    """Checks a substation URL against the allowed networks."""

    def __init__(self, allowed: list[Network], resolve: Resolve = resolve_all) -> None:
        self.allowed = allowed
        self.resolve = resolve

    @classmethod
    def of_topology(cls, hosts: Iterable[str], resolve: Resolve = resolve_all) -> SubstationUrls:
        """The networks the configured topology's hosts are on."""
        return cls(networks_around(a for host in hosts for a in resolve(host)), resolve)

    def problem(self, url: str) -> str | None:
        """Why the balancer must not call `url`, or None."""
        shape = url_shape_problem(url)
        if shape is not None:
            return shape
        host = urlsplit(url).hostname
        assert host is not None  # url_shape_problem saw to it
        addresses = self.resolve(host)
        if not addresses:
            return f"{host} does not resolve"
        for text in addresses:
            problem = self.address_problem(text)
            if problem is not None:
                return f"{host} is at {problem}"
        return None

    def address_problem(self, text: str) -> str | None:
        """Why no substation may be at this address (`<address>, where ...`), or None."""
        address = ipaddress.ip_address(text)
        if any(address in network for network in NEVER) or address.is_unspecified:
            return f"{address}, where no substation may be (link-local, multicast or unspecified)"
        if not any(address in network for network in self.allowed):
            allowed = ", ".join(map(str, self.allowed)) or "none"
            return f"{address}, outside the networks substations are on ({allowed})"
        return None
