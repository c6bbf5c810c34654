"""Where a balancer may be told a substation is: a URL that is only a place, on a network the grid uses.

A registration (POST /substations) names a URL the balancer will call every second: it must not be a way
to aim the balancer anywhere. A substation URL is `http(s)://host[:port]`, nothing more: no credentials
(they would show in GET /substations), no path, query or fragment. Its host must resolve only to
addresses in the allowed networks (SUBSTATION_NETWORKS), which by default are the networks the configured
topology uses: a /24 (IPv4) or /64 (IPv6) around each address of SUBSTATIONS and SUBSTATIONS_DNS. Link-local
addresses (cloud metadata services live there), multicast and unspecified addresses are never allowed.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolve = Callable[[str], list[str]]
NEVER = [ipaddress.ip_network(n) for n in ("169.254.0.0/16", "fe80::/10", "224.0.0.0/4", "ff00::/8", "0.0.0.0/32")]


def resolve_all(host: str) -> list[str]:
    """Every address `host` resolves to; none when it does not."""
    try:
        return sorted({info[4][0] for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)})
    except (socket.gaierror, UnicodeError):
        return []


def url_shape_problem(url: str, *, path_allowed: bool = False) -> str | None:
    """What is wrong with the URL's shape, or None: http(s)://host[:port] and nothing more (a path too, for
    the URLs an operator configures: one process may host several substations, each under its path)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "a URL such as http://substation4:5000"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "an http(s) URL such as http://substation4:5000"
    if parts.username is not None or parts.password is not None:
        return "no credentials in it: they would be shown to anyone who lists the substations"
    if (parts.path not in ("", "/") and not path_allowed) or parts.query or parts.fragment:
        return "no path, query or fragment: the substation's own address only"
    if port == 0:
        return "a port from 1 to 65535"
    return None


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
        addresses = self.resolve(host)
        if not addresses:
            return f"{host} does not resolve"
        for text in addresses:
            address = ipaddress.ip_address(text)
            if any(address in network for network in NEVER) or address.is_unspecified:
                return f"{host} is at {address}, where no substation may be (link-local, multicast or unspecified)"
            if not any(address in network for network in self.allowed):
                allowed = ", ".join(map(str, self.allowed)) or "none"
                return f"{host} is at {address}, outside the networks substations are on ({allowed})"
        return None
