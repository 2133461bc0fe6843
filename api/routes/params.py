"""A check every route of `/v1` runs on its query string and path: text the database can hold.

PostgreSQL refuses a NUL character in any text, so `?optimizer=%00` or a job
id with `%00` would reach the driver and come back as a 500. Such a value is
a 422 naming the parameter before any handler runs.
"""

from __future__ import annotations

from fastapi import Request

from store.errors import Unprocessable


async def plain_text_params(request: Request) -> None:
    """Refuse a query or path parameter holding a NUL character (422 naming it)."""
    items = [*request.query_params.multi_items(), *request.path_params.items()]
    for name, value in items:
        if "\x00" in name or "\x00" in str(value):
            where = name.replace("\x00", "\\x00")
            msg = "contains a NUL character (%00), which no name or id holds"
            raise Unprocessable(f"{where}: {msg}", errors=[{"loc": where, "msg": msg}])
