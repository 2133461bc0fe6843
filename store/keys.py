"""Teams and API keys.

A key is shown once, when created; the database keeps only its SHA-256 hash
and a short prefix that lets people tell their keys apart.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.errors import Conflict, NotFound
from store.models import ApiKey, Team, utcnow
from store.pages import newest_first

KEY_PREFIX = "fl_"
PREFIX_CHARS = 11  # "fl_" and 8 characters of the secret


@dataclass(frozen=True)
class CreatedKey:
    key: str  # the plaintext, never stored
    id: str
    prefix: str
    team_id: str
    read_only: bool


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_team(*, session: Session, name: str) -> Team:
    if get_team_by_name(session=session, name=name) is not None:
        raise Conflict(f"team {name!r} exists", name=name)
    team = Team(name=name)
    session.add(team)
    session.flush()
    return team


def get_team_by_name(*, session: Session, name: str) -> Team | None:
    return session.scalars(select(Team).where(Team.name == name)).one_or_none()


def get_or_create_team(*, session: Session, name: str) -> Team:
    """The team called `name`, created if missing; safe when two callers race."""
    team = get_team_by_name(session=session, name=name)
    if team is not None:
        return team
    try:
        with session.begin_nested():
            team = Team(name=name)
            session.add(team)
        return team
    except IntegrityError:  # another request created it first
        found = get_team_by_name(session=session, name=name)
        if found is None:
            raise Conflict(f"team {name!r} could not be created", name=name) from None
        return found


def create_api_key(*, session: Session, team_id: str, read_only: bool = False) -> CreatedKey:
    """A new key for the team; the returned `key` is the only copy of the plaintext."""
    if session.get(Team, team_id) is None:
        raise NotFound(f"no team {team_id!r}", resource="team", id=team_id)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        team_id=team_id, prefix=key[:PREFIX_CHARS], key_hash=hash_key(key), read_only=read_only
    )
    session.add(row)
    session.flush()
    return CreatedKey(key=key, id=row.id, prefix=row.prefix, team_id=team_id, read_only=read_only)


def revoke_api_key(*, session: Session, key: str) -> ApiKey:
    """Revoke a key given its plaintext or its id; revoking twice keeps the first time."""
    stmt = select(ApiKey).where((ApiKey.key_hash == hash_key(key)) | (ApiKey.id == key))
    row = session.scalars(stmt).one_or_none()
    if row is None:
        raise NotFound("no such API key", resource="api_key")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
    return row


def authenticate(*, session: Session, key: str) -> tuple[Team, bool] | None:
    """The key's team and whether the key is read-only, or None for an unknown or revoked key."""
    stmt = select(ApiKey, Team).join(Team, Team.id == ApiKey.team_id)
    row = session.execute(stmt.where(ApiKey.key_hash == hash_key(key))).one_or_none()
    if row is None or row.ApiKey.revoked_at is not None:
        return None
    return row.Team, row.ApiKey.read_only


def list_api_keys(
    *, session: Session, team_id: str, limit: int = 100, cursor: str | None = None
) -> tuple[list[ApiKey], str | None]:
    """One page of the team's keys (revoked ones too), newest first; hashes stay here."""
    stmt = select(ApiKey).where(ApiKey.team_id == team_id)
    return newest_first(session=session, stmt=stmt, model=ApiKey, limit=limit, cursor=cursor)
