"""Keyset pagination on `(created_at, id)`, newest first, for any table that has both.

The cursor is the one `store.jobs` makes for jobs: a page costs the same at
any depth, and a row created while a client pages is never seen twice.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, tuple_
from sqlalchemy.orm import Session

from store.jobs import decode_cursor, encode_cursor

T = TypeVar("T")


def newest_first(
    *, session: Session, stmt: Select[T], model: Any, limit: int, cursor: str | None
) -> tuple[list[T], str | None]:
    """One page of `stmt`'s rows (of `model`), and the cursor of the next page (None at the end)."""
    if cursor is not None:
        created_at, row_id = decode_cursor(cursor)
        stmt = stmt.where(tuple_(model.created_at, model.id) < tuple_(created_at, row_id))
    stmt = stmt.order_by(model.created_at.desc(), model.id.desc()).limit(limit + 1)
    rows = list(session.scalars(stmt))
    if len(rows) <= limit:
        return rows, None
    last: Any = rows[limit - 1]
    return rows[:limit], encode_cursor(last.created_at, last.id)
