"""Every error leaves the API as RFC 9457 problem JSON.

Domain errors carry a code; `STATUS_BY_CODE` is the one table that maps a code
to an HTTP status. Validation errors list the fields at fault, named as the user
wrote them (`optimizer.rho`, via `sam_core.spec.public_loc`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from sam_core.spec import public_loc
from store import errors

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

STATUS_BY_CODE: dict[str, int] = {
    errors.InvalidRequest.code: 400,
    errors.Unauthenticated.code: 401,
    errors.Forbidden.code: 403,
    errors.NotFound.code: 404,
    errors.Conflict.code: 409,
    errors.PayloadTooLarge.code: 413,
    errors.UnsupportedMediaType.code: 415,
    errors.IdempotencyKeyReused.code: 422,
    errors.Unprocessable.code: 422,
    errors.Unavailable.code: 503,
    errors.FlatlabError.code: 500,
}

TITLES: dict[int, str] = {
    400: "Bad request",
    401: "Unauthenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    500: "Internal server error",
    503: "Service unavailable",
}


def problem(
    request: Request,
    status: int,
    detail: str,
    code: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body = {
        **(extra or {}),  # extension members never replace the standard ones
        "type": f"urn:flatlab:problem:{code}" if code else "about:blank",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **({"code": code} if code else {}),
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def field_errors(raw: Sequence[Any]) -> list[dict[str, str]]:
    """pydantic errors as `{loc, msg, type}` with the path a user wrote."""
    out = []
    for err in raw:
        loc = list(err.get("loc", ()))
        if loc and loc[0] == "body":
            loc = public_loc(loc[1:]) or ["body"]
        elif loc and loc[0] in ("query", "path", "header"):
            loc = loc[1:]
        msg = err.get("msg", "invalid")
        out.append({"loc": ".".join(str(p) for p in loc), "msg": msg, "type": err.get("type", "")})
    return out


async def _domain_error(request: Request, exc: errors.FlatlabError) -> JSONResponse:
    status = STATUS_BY_CODE.get(exc.code, 500)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return problem(request, status, exc.message, exc.code, headers, exc.details)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errs = field_errors(exc.errors())
    detail = "; ".join(f"{e['loc']}: {e['msg']}" for e in errs[:5])
    return problem(request, 422, detail, "validation_error", extra={"errors": errs})


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "Error")
    headers = dict(exc.headers) if exc.headers else None
    return problem(request, exc.status_code, detail, headers=headers)


async def _database_down(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable: %s", exc)
    return problem(request, 503, "the database is unavailable", "database_unavailable")


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(request, 500, "an unexpected error occurred", errors.FlatlabError.code)


def install_error_handlers(app: FastAPI) -> None:
    # Starlette types handlers as taking any Exception; each of ours takes its own class.
    app.add_exception_handler(errors.FlatlabError, _domain_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(OperationalError, _database_down)
    app.add_exception_handler(InterfaceError, _database_down)
    # Every pooled connection busy (a frozen database holds them): unavailable, not a bug.
    app.add_exception_handler(PoolTimeout, _database_down)
    app.add_exception_handler(Exception, _unexpected)
