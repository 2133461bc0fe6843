"""API keys: stored as hashes, shown once, revocable."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from store.db import session_scope
from store.errors import Conflict, NotFound
from store.keys import (
    authenticate,
    create_api_key,
    create_team,
    get_or_create_team,
    hash_key,
    revoke_api_key,
)
from store.models import ApiKey


def test_key_is_stored_only_as_its_hash(sqlite_factory: sessionmaker[Session]) -> None:
    with session_scope(sqlite_factory) as session:
        team = create_team(session=session, name="lab")
        created = create_api_key(session=session, team_id=team.id)
        row = session.scalars(select(ApiKey)).one()
    assert row.key_hash == hash_key(created.key) and created.key not in (row.key_hash, row.prefix)
    assert created.key.startswith(row.prefix)


def test_authenticate_returns_team_and_read_only(sqlite_factory: sessionmaker[Session]) -> None:
    with session_scope(sqlite_factory) as session:
        team = create_team(session=session, name="lab")
        writer = create_api_key(session=session, team_id=team.id)
        reader = create_api_key(session=session, team_id=team.id, read_only=True)
        found_writer = authenticate(session=session, key=writer.key)
        found_reader = authenticate(session=session, key=reader.key)
        assert authenticate(session=session, key="fl_nope") is None
    assert found_writer is not None and found_writer[0].id == team.id
    assert found_writer[1] is False and found_reader is not None and found_reader[1] is True


def test_revoked_key_no_longer_authenticates(sqlite_factory: sessionmaker[Session]) -> None:
    with session_scope(sqlite_factory) as session:
        team = create_team(session=session, name="lab")
        created = create_api_key(session=session, team_id=team.id)
        revoke_api_key(session=session, key=created.key)
        assert authenticate(session=session, key=created.key) is None
        with pytest.raises(NotFound):
            revoke_api_key(session=session, key="fl_unknown")


def test_team_names_are_unique(sqlite_factory: sessionmaker[Session]) -> None:
    with session_scope(sqlite_factory) as session:
        team = create_team(session=session, name="lab")
        assert get_or_create_team(session=session, name="lab").id == team.id
        with pytest.raises(Conflict):
            create_team(session=session, name="lab")
