"""Typed errors of the flatlab client, each carrying the API's RFC 9457 problem JSON.

Every non-2xx answer becomes one `ApiError` subclass chosen by its HTTP status;
`problem` is the body as the server sent it, `errors` the fields at fault as
`FieldError(loc, msg, type)` with `loc` the dotted path a user wrote
(`optimizer.rho`). A request that never got an answer raises `ConnectionFailed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class FieldError:
    """One field the server refused: its dotted path, the reason, pydantic's error type."""

    loc: str
    msg: str
    type: str = ""


class FlatlabError(Exception):
    """Base of every error the client raises."""


class ConnectionFailed(FlatlabError):
    """The API could not be reached, or did not answer in time (after the retries)."""


class ApiError(FlatlabError):
    """The API answered with an error status; `problem` is its problem JSON."""

    status: int
    problem: dict[str, Any]

    def __init__(self, status: int, problem: dict[str, Any], method: str = "", url: str = ""):
        self.status, self.problem, self.method, self.url = status, problem, method, url
        detail = problem.get("detail") or problem.get("title") or f"HTTP {status}"
        super().__init__(f"{status} {detail}")

    @property
    def detail(self) -> str:
        return str(self.problem.get("detail") or self.problem.get("title") or "")

    @property
    def code(self) -> str | None:
        code = self.problem.get("code")
        return str(code) if code is not None else None

    @property
    def errors(self) -> list[FieldError]:
        """The fields at fault (empty when the problem names none)."""
        raw = self.problem.get("errors") or []
        return [
            FieldError(str(e.get("loc", "")), str(e.get("msg", "")), str(e.get("type") or ""))
            for e in raw
            if isinstance(e, dict)
        ]

    @property
    def fields(self) -> list[str]:
        """The dotted paths of the fields at fault, in the server's order."""
        return [e.loc for e in self.errors]


class BadRequest(ApiError):
    """400, 405, 413, 415: the request itself is malformed, too large or of the wrong type."""


class Unauthenticated(ApiError):
    """401: no API key, or an unknown or revoked one."""


class Forbidden(ApiError):
    """403: the key may not do this (a read-only key submitting)."""


class NotFound(ApiError):
    """404: no such job, benchmark, artifact or data set for this team."""


class Conflict(ApiError):
    """409: the resource is in a state that forbids this (e.g. deleting a running job)."""


class ValidationError(ApiError):
    """422: the body or a query parameter was refused; `errors` names each field."""


class ServerError(ApiError):
    """5xx: the server failed, or a dependency of it (database, broker) is unavailable."""


class JobFailed(FlatlabError):
    """A waited-for job or benchmark ended other than succeeded (raised only on request)."""

    def __init__(self, message: str, result: Any) -> None:
        super().__init__(message)
        self.result = result


BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    405: BadRequest,
    409: Conflict,
    413: BadRequest,
    415: BadRequest,
    422: ValidationError,
}


def error_for(response: httpx.Response) -> ApiError:
    """The typed error of a non-2xx response (its body read as problem JSON when it is one)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        text = response.text.strip()[:500]
        body = {"status": response.status_code, "detail": text or response.reason_phrase}
    status = response.status_code
    cls = BY_STATUS.get(status) or (ServerError if status >= 500 else ApiError)
    request = response.request
    return cls(status, body, request.method, str(request.url))
