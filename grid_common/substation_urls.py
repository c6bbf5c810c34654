"""Where a service is told a substation is: `SUBSTATIONS` (name=url,...), read alike by the balancer and the
OCPP service, and the shape every substation URL must have (load_balancer/substation_urls.py says why)."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from grid_common.protocol import is_substation_name

NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*", re.IGNORECASE)


def parse_substations(value: str, errors: list[str]) -> list[tuple[str, str]]:
    """`name=url,name=url` -> [(name, url)], with every malformed entry reported."""
    substations: list[tuple[str, str]] = []
    for entry in filter(None, (part.strip() for part in value.split(","))):
        name, sep, url = entry.partition("=")
        name, url = name.strip(), url.strip().rstrip("/")
        if not sep or not is_substation_name(name) or url_shape_problem(url, path_allowed=True):
            # The entry itself is not repeated: it may hold credentials.
            errors.append(
                f"SUBSTATIONS entry {len(substations) + 1} must be name=http://host:port (name: letters, digits, "
                "_ or -; the URL with no credentials or query)"
            )
        elif any(name == existing for existing, _ in substations):
            errors.append(f"SUBSTATIONS names {name!r} twice")
        else:
            substations.append((name, url))
    return substations


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
    return host_form_problem(parts.hostname)


def host_form_problem(host: str) -> str | None:
    """A host is a name, or an IP address as it is usually written; never a number a resolver would read as
    an address (2130706433, 0x7f000001, 127.1, 0177.0.0.1)."""
    try:
        ipaddress.ip_address(host)  # only the usual forms parse
        return None
    except ValueError:
        pass
    if NUMERIC_LABEL.fullmatch(host.rstrip(".").rsplit(".", 1)[-1]):
        return "a host name, or an IP address written as usual (a.b.c.d), not a number"
    return None
