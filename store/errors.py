"""Domain errors: each carries a machine-readable code; the API maps codes to HTTP status.

Repositories and services raise these, never HTTP exceptions. The message may be
shown to clients, so it names the bad value and nothing secret.
"""

from __future__ import annotations

from typing import Any


class FlatlabError(Exception):
    """Base of every domain error: a code, a message for the user, optional details."""

    code = "internal_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(FlatlabError):
    code = "not_found"


class Conflict(FlatlabError):
    """The resource is in a state that forbids the request (a terminal job cancelled)."""

    code = "conflict"


class InvalidRequest(FlatlabError):
    """A request that is well-formed but wrong; `details["errors"]` may name fields."""

    code = "invalid_request"


class Unprocessable(FlatlabError):
    """Well-formed content that cannot run (a benchmark grid, a results filter); 422.

    `details["errors"]` lists each problem as `{loc, msg}` with the path the user wrote.
    """

    code = "validation_error"


class IdempotencyKeyReused(FlatlabError):
    """The same Idempotency-Key arrived with a different body."""

    code = "idempotency_key_reused"


class Unauthenticated(FlatlabError):
    code = "unauthenticated"


class Forbidden(FlatlabError):
    code = "forbidden"


class Unavailable(FlatlabError):
    """A dependency (database, broker) cannot be reached."""

    code = "unavailable"


class PayloadTooLarge(FlatlabError):
    """A request body (an upload) larger than the configured limit; 413."""

    code = "payload_too_large"


class UnsupportedMediaType(FlatlabError):
    """A body in a content type the endpoint does not read; 415."""

    code = "unsupported_media_type"
