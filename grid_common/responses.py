"""The services' JSON answers, built the cheap way: each charging request is answered three times on its way
(substation, balancer, gateway), so what an answer costs counts three times.

- Bodies are encoded with orjson: a substation's admission answer (a session and a load report, mostly
  floats) takes the standard library several times as long.
- A Location the service built itself (`/sessions/<id>`: ASCII letters, digits, dots, dashes) is added as
  the answer is sent, not kept in `headers` for werkzeug to parse, quote and reassemble as an IRI, which costs
  about as much as sending all the other headers.
"""

from __future__ import annotations

import re

import orjson
from flask import Response

JSON_CONTENT_TYPE = "application/json"
# What werkzeug's iri_to_uri leaves exactly as it is, written as a path.
_PLAIN_PATH = re.compile(r"/[A-Za-z0-9._~/-]*")


class JsonResponse(Response):
    """A Response whose plain-path Location is appended as its headers are sent."""

    plain_location: str | None = None

    def get_wsgi_headers(self, environ):
        headers = super().get_wsgi_headers(environ)
        if self.plain_location is not None:
            headers["Location"] = self.plain_location
        return headers


def json_response(
    body: object,
    status: int = 200,
    *,
    location: str | None = None,
    headers: dict[str, str] | None = None,
    content_type: str = JSON_CONTENT_TYPE,
) -> Response:
    # Bytes are a body already encoded (msgspec, for the protocol's messages): sent as they are.
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    response = JsonResponse(data, status=status, content_type=content_type, headers=headers)
    if location is not None:
        if _PLAIN_PATH.fullmatch(location):
            response.plain_location = location
        else:  # anything else werkzeug makes a valid URI reference, as it would have
            response.headers["Location"] = location
    return response
