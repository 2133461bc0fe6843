"""/v1/keys: the caller's team's API keys — ids, prefixes, dates, flags; never a secret.

Keys are made and revoked with `flatlab keys create` / `flatlab keys revoke`
on the server; this lists them so a team can see which exist and which are
revoked. Only the SHA-256 hash of a key is stored, and it is not shown either.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from api.deps import CallerDep, SessionDep
from api.routes.params import plain_text_params
from api.schemas import UtcDatetime
from store.keys import list_api_keys
from store.models import ApiKey

router = APIRouter(prefix="/v1/keys", tags=["keys"], dependencies=[Depends(plain_text_params)])


class KeyPublic(BaseModel):
    id: str = Field(description="what `flatlab keys revoke` also takes")
    prefix: str = Field(description="the key's first characters, to tell keys apart")
    read_only: bool
    created_at: UtcDatetime
    revoked: bool
    revoked_at: UtcDatetime | None

    @classmethod
    def from_key(cls, row: ApiKey) -> KeyPublic:
        return cls(
            id=row.id,
            prefix=row.prefix,
            read_only=row.read_only,
            created_at=row.created_at,
            revoked=row.revoked_at is not None,
            revoked_at=row.revoked_at,
        )


class KeysPublic(BaseModel):
    items: list[KeyPublic]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null at end")


@router.get("", response_model=KeysPublic)
def read_keys(
    session: SessionDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: str | None = None,
) -> KeysPublic:
    """The team's API keys, revoked ones too, newest first (none with auth off)."""
    rows, next_cursor = list_api_keys(
        session=session, team_id=caller.team_id, limit=limit, cursor=cursor
    )
    return KeysPublic(items=[KeyPublic.from_key(r) for r in rows], next_cursor=next_cursor)
