"""Request dependencies: settings, the per-request session (one commit), the caller's team,
and who may scrape `/metrics`."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker

from api.db_gate import gate, outside_request
from flatlab.settings import Settings
from store.db import session_scope
from store.errors import Forbidden, Unauthenticated
from store.keys import authenticate, get_or_create_team

DEFAULT_TEAM = "default"
T = TypeVar("T")


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One transaction per request: commit after the handler, before the response is sent.

    The request first takes a slot of `api.db_gate`, waiting (if it must) in the
    event loop while holding nothing: there are as many slots as pooled
    connections, so its session's checkout never waits in a thread. Commit and
    close run in one thread, and not at all when the handler already gave its
    connection back (`run_in_session`).
    """
    factory: sessionmaker[Session] = request.app.state.session_factory
    async with gate(request.app).slots:
        session = factory()
        try:
            yield session
            if session.in_transaction():
                await anyio.to_thread.run_sync(_commit_and_close, session)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_rollback_and_close, session)
            raise


def _commit_and_close(session: Session) -> None:
    try:
        session.commit()
    finally:
        session.close()


def _rollback_and_close(session: Session) -> None:
    try:
        session.rollback()
    finally:
        session.close()


def json_response(model: BaseModel) -> Response:
    """A model as a JSON response, serialised where it is built (in the request's thread)."""
    return Response(model.model_dump_json().encode(), media_type="application/json")


async def run_in_session(session: Session, work: Callable[[], T]) -> T:
    """`work()` and the commit in one thread: the connection is back in the pool on return.

    What `async` routes call: the request holds its slot, so the thread never waits on
    the pool, and the request holds no connection while it waits for anything else.
    """

    def unit() -> T:
        try:
            result = work()
            session.commit()
            return result
        except BaseException:
            _rollback_and_close(session)
            raise

    return await anyio.to_thread.run_sync(unit)


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


@dataclass(frozen=True)
class Caller:
    team_id: str
    read_only: bool


bearer = HTTPBearer(auto_error=False, description="an API key from `flatlab keys create`")


async def get_caller(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    """The team a request acts for: from its API key, or the default team with auth off."""
    if not settings.auth_on:
        return Caller(team_id=await _default_team_id(request), read_only=False)
    if credentials is None:
        raise Unauthenticated("missing API key: send 'Authorization: Bearer <key>'")
    found = await anyio.to_thread.run_sync(
        lambda: authenticate(session=session, key=credentials.credentials)
    )
    if found is None:
        raise Unauthenticated("unknown or revoked API key")
    team, read_only = found
    return Caller(team_id=team.id, read_only=read_only)


async def _default_team_id(request: Request) -> str:
    """The default team's id, created on first use in a transaction of its own."""
    team_id: str | None = getattr(request.app.state, "default_team_id", None)
    if team_id is None:
        team_id = await outside_request(request, _find_default_team, request.app.state)
        request.app.state.default_team_id = team_id
    return team_id


def _find_default_team(state: Any) -> str:
    with session_scope(state.session_factory) as session:
        return get_or_create_team(session=session, name=DEFAULT_TEAM).id


async def get_writer(caller: Annotated[Caller, Depends(get_caller)]) -> Caller:
    if caller.read_only:
        raise Forbidden("this API key is read-only")
    return caller


CallerDep = Annotated[Caller, Depends(get_caller)]
WriterDep = Annotated[Caller, Depends(get_writer)]


async def check_metrics_access(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """`/metrics` shows every team's job counts: with auth on, only the scraper may read it.

    The scraper sends `Authorization: Bearer <FLATLAB_METRICS_TOKEN>`; a team's API key
    is not enough (401), and with no token set nobody may (403). Auth off: open.
    """
    if not settings.auth_on:
        return
    if settings.metrics_token is None:
        raise Forbidden("/metrics is closed: set FLATLAB_METRICS_TOKEN and scrape with it")
    expected = settings.metrics_token.get_secret_value().encode()
    if credentials is None or not hmac.compare_digest(credentials.credentials.encode(), expected):
        raise Unauthenticated("send 'Authorization: Bearer <FLATLAB_METRICS_TOKEN>' to scrape")


MetricsAccessDep = Annotated[None, Depends(check_metrics_access)]
