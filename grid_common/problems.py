"""RFC 9457 problem details: every error any service answers is one of these."""

from __future__ import annotations

import logging

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from grid_common import deadline
from grid_common.edge import PROBLEM_CONTENT_TYPE  # defined where no Flask is imported: gunicorn's config uses it
from grid_common.responses import json_response

log = logging.getLogger(__name__)


class Problem(Exception):
    """An error that becomes a problem+json response when raised inside a request."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
        **extensions: object,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.retry_after = retry_after
        self.headers = headers or {}
        self.extensions = extensions

    def to_dict(self) -> dict:
        body = {"type": "about:blank", "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        body.update(self.extensions)
        return body


def clock_skew(peer: str, what: str, here: str, ahead_s: float, outcome: str) -> Problem:
    """A peer refused `what` as late by its clock though `here` sent it in time (deadline.clock_ahead_s): a
    503 that says whose clock to fix, not a 408 that blames the network."""
    return Problem(
        503,
        "Clock skew",
        f"{peer} refused the {what} as arriving after its deadline, though this {here} sent it in time: its clock "
        f"is about {ahead_s:.1f} s ahead of this {here}'s. Deadlines between hosts need clocks within "
        f"{deadline.MARGIN_S:g} s of each other: synchronise them (NTP). {outcome}",
        retry_after=1,
    )


def problem_response(problem: Problem) -> Response:
    body = problem.to_dict()
    body.setdefault("instance", request.path)
    response = json_response(body, problem.status, headers=problem.headers, content_type=PROBLEM_CONTENT_TYPE)
    if problem.retry_after is not None:
        # Retry-After takes whole seconds; never advertise 0, which invites a hot loop.
        response.headers["Retry-After"] = str(max(1, round(problem.retry_after)))
    return response


def relay_problem(status: int, body: object, retry_after: str | None) -> Response:
    """Pass an upstream problem through unchanged, so the client sees the real cause."""
    if not isinstance(body, dict):
        body = {"type": "about:blank", "title": "Upstream error", "status": status}
    response = json_response(body, status, content_type=PROBLEM_CONTENT_TYPE)
    if retry_after:
        response.headers["Retry-After"] = retry_after
    return response


def install_problem_handlers(app: Flask) -> None:
    @app.errorhandler(Problem)
    def _problem(problem: Problem):
        return problem_response(problem)

    @app.errorhandler(HTTPException)
    def _http_exception(error: HTTPException):
        # Werkzeug's own errors (404, 405, 413...) would otherwise be HTML pages.
        problem = Problem(error.code or 500, error.name, error.description)
        response = problem_response(problem)
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            response.headers["Allow"] = ", ".join(sorted(error.valid_methods))
        return response

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem_response(Problem(500, "Internal Server Error", "An unexpected error occurred."))
