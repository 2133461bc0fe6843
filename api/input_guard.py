"""Every request's input checked once, before any route: sizes, text, JSON nesting.

`InputGuard`, an ASGI middleware, refuses with RFC 9457 problem JSON:

- a body past `FLATLAB_MAX_JSON_BYTES` (`413`, `limit_bytes` in the answer), read
  chunk by chunk so an oversized body is never held whole; the operations that
  take `multipart/form-data` (the data set upload) stream and bound their own
  body under `FLATLAB_MAX_UPLOAD_BYTES` and are let through;
- malformed JSON (`422` at `body`, with the line, column and the decoder's reason);
- JSON nested deeper than `FLATLAB_MAX_JSON_DEPTH` (`422` at the path where it
  passes the limit, found by a scan of the raw bytes before anything is parsed,
  so a body nested thousands deep never reaches a recursive parser);
- text no database or file system stores (`text_problem`: a NUL character, a
  lone UTF-16 surrogate) in a query parameter's name or value, a header, or any
  key or string of a JSON body (`422` naming where).

`check_route_input`, a dependency of every route, adds what needs the matched
route: the same text check on path parameters (`422` naming the parameter), and
`415` naming `Content-Type` for a body that is not JSON sent to a route that
takes JSON (curl's `-d` alone sends `application/x-www-form-urlencoded`).

Checking here covers every route and every field at once; the routes and
pydantic models then see only text that can be stored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import numpy as np
from fastapi import FastAPI
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import STATUS_BY_CODE, problem
from flatlab.settings import Settings
from store.errors import FlatlabError, PayloadTooLarge, Unprocessable, UnsupportedMediaType

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# A JSON token that matters to nesting: a string (a key when a colon follows), a
# bracket, a comma. Strings are matched whole so brackets inside them are skipped;
# an unterminated one runs to the end (the closing quote is optional), so no quote
# makes the scan start over and the scan stays linear in the body's length.
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*+"?(\s*:)?|[\[\]{},]', re.DOTALL)
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*+"?', re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored (PostgreSQL text and file names refuse both), or None."""
    found = _UNSTORABLE.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return f"contains a NUL character (\\u0000) at position {found.start()}"
    code = f"\\u{ord(found.group()):04x}"
    return f"contains a lone UTF-16 surrogate ({code}) at position {found.start()}"


def is_json(content_type: str) -> bool:
    """Whether a Content-Type names JSON (`application/json`, `application/*+json`)."""
    media = content_type.split(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def nesting_error(body: bytes, limit: int) -> tuple[str, int] | None:
    """Where `body` first nests deeper than `limit` arrays/objects: (JSON path, depth).

    A scan of the raw bytes, no parse: each open container keeps its current key
    or index, so the path names the value that opens level `limit + 1` as written
    (`base.a.a`, `axes.optimizer.0`); "" is the top level. None when within the limit.
    """
    if _max_depth(body) <= limit:  # the common case, at C speed
        return None
    stack: list[list[Any]] = []  # [kind, current key or index]
    for token in _TOKEN.finditer(body):
        text = token.group()
        first = text[:1]
        if first in (b"{", b"["):
            if len(stack) >= limit:
                return ".".join(str(entry[1]) for entry in stack if entry[1] is not None), limit + 1
            stack.append([first, None if first == b"{" else 0])
        elif first in (b"}", b"]"):
            if stack:
                stack.pop()
        elif first == b",":
            if stack and stack[-1][0] == b"[":
                stack[-1][1] += 1
        elif token.group(1) and stack and stack[-1][0] == b"{":
            stack[-1][1] = _key(text[: token.start(1) - token.start()])
    return None


def _max_depth(body: bytes) -> int:
    """How deep arrays and objects nest in `body` (strings removed, brackets summed)."""
    brackets = np.frombuffer(_STRING.sub(b"", body).translate(None, _NOT_BRACKET), np.uint8)
    if brackets.size == 0:
        return 0
    opens = (brackets == ord("[")) | (brackets == ord("{"))
    return int(np.cumsum(np.where(opens, 1, -1)).max())


def _key(raw: bytes) -> str:
    try:
        return str(json.loads(raw))
    except ValueError:
        return raw.decode("utf-8", "replace").strip('"')


def text_errors(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, str]]:
    """(path, reason) for each key or string of parsed JSON that cannot be stored."""
    if isinstance(value, str):
        why = text_problem(value)
        if why:
            yield ".".join(path) or "body", why
    elif isinstance(value, dict):
        for key, item in value.items():
            here = (*path, key)
            why = text_problem(key)
            if why:
                yield ".".join(here), f"the key {why}"
            yield from text_errors(item, here)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from text_errors(item, (*path, str(index)))


class InputGuard:
    """ASGI middleware: the body, query and header checks of this module's docstring."""

    def __init__(self, app: ASGIApp, api: FastAPI, settings: Settings) -> None:
        self.app = app
        self.api = api
        self.settings = settings
        self._streaming: list[tuple[str, re.Pattern[str]]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        errors = list(_request_text_errors(scope))
        if errors:
            await self._refuse(scope, receive, send, _invalid(errors))
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if not _has_body(headers) or self._streams_itself(scope):
            await self.app(scope, receive, send)
            return
        declared = headers.get("content-length", "")
        limit = self.settings.max_json_bytes
        if declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, self._too_large(int(declared)))
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client left
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > limit:
                await self._refuse(scope, receive, send, self._too_large(size))
                return
        body = b"".join(chunks)
        # FastAPI reads a body without a Content-Type as JSON, so it is checked as JSON.
        if body and is_json(headers.get("content-type", "application/json")):
            errors = self._json_errors(body)
            if errors:
                await self._refuse(scope, receive, send, _invalid(errors))
                return
        await self.app(scope, _replay(body, receive), send)

    def _streams_itself(self, scope: Scope) -> bool:
        """Whether the request is for an operation that reads and bounds its multipart body."""
        if self._streaming is None:
            self._streaming = [
                (method.upper(), re.compile(re.sub(r"\\{\w+\\}", "[^/]+", re.escape(path)) + "$"))
                for path, operations in self.api.openapi()["paths"].items()
                for method, operation in operations.items()
                if "multipart/form-data" in operation.get("requestBody", {}).get("content", {})
            ]
        method, path = scope["method"], scope["path"]
        return any(m == method and pattern.match(path) for m, pattern in self._streaming)

    def _json_errors(self, body: bytes) -> list[tuple[str, str]]:
        limit = self.settings.max_json_depth
        deep = nesting_error(body, limit)
        if deep is not None:
            where, depth = deep
            why = f"nested {depth} levels deep; at most {limit} (FLATLAB_MAX_JSON_DEPTH)"
            return [(where or "body", why)]
        try:
            parsed = json.loads(body)
        except json.JSONDecodeError as exc:
            return [("body", f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}")]
        except UnicodeDecodeError as exc:
            return [("body", f"not UTF-8 text: byte {exc.start} cannot be decoded")]
        return list(text_errors(parsed))

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, error: FlatlabError
    ) -> None:
        status = STATUS_BY_CODE[error.code]
        response = problem(Request(scope), status, error.message, error.code, extra=error.details)
        await response(scope, receive, send)

    def _too_large(self, size: int) -> PayloadTooLarge:
        limit = self.settings.max_json_bytes
        return PayloadTooLarge(
            f"a request body of at least {size} bytes is larger than the limit of "
            f"{limit} bytes (FLATLAB_MAX_JSON_BYTES)",
            limit_bytes=limit,
        )


def _invalid(errors: list[tuple[str, str]]) -> Unprocessable:
    # A loc may hold the very key at fault: a lone surrogate is shown as its escape,
    # since the answer itself must be UTF-8.
    errors = [(loc.encode("utf-8", "backslashreplace").decode(), msg) for loc, msg in errors]
    items = [{"loc": loc, "msg": msg, "type": "value_error"} for loc, msg in errors]
    return Unprocessable("; ".join(f"{loc}: {msg}" for loc, msg in errors[:5]), errors=items)


def _request_text_errors(scope: Scope) -> Iterator[tuple[str, str]]:
    """Unstorable text in the query string and the headers."""
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True):
        why = text_problem(name)
        if why:
            yield name, f"the parameter name {why}"
        why = text_problem(value)
        if why:
            yield name, why
    for name, value in scope.get("headers", []):
        if b"\x00" in value:
            yield name.decode("latin-1"), "contains a NUL character (\\u0000)"


def _has_body(headers: dict[str, str]) -> bool:
    return headers.get("content-length", "0") != "0" or "transfer-encoding" in headers


def _not_json(content_type: str) -> UnsupportedMediaType:
    return UnsupportedMediaType(
        f"Content-Type {content_type!r} is not accepted here: send the body as JSON with "
        "'Content-Type: application/json' (curl: -H 'Content-Type: application/json')",
        errors=[{"loc": "Content-Type", "msg": f"must be application/json, got {content_type!r}"}],
    )


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the route the body already read, then the client's messages."""
    pending = True

    async def replayed() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def check_route_input(request: Request) -> None:
    """A dependency of every route: storable path parameters; JSON to a route that takes it."""
    errors = [
        (name, why)
        for name, value in request.path_params.items()
        if (why := text_problem(str(value)))
    ]
    if errors:
        raise _invalid(errors)
    route = request.scope.get("route")
    content_type = request.headers.get("content-type")
    if (
        getattr(route, "body_field", None) is not None
        and content_type is not None
        and not is_json(content_type)
        and _has_body({k.lower(): v for k, v in request.headers.items()})
    ):
        raise _not_json(content_type)
