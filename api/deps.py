"""Request dependencies: settings, the per-request session (one commit), the caller's team,
and who may scrape `/metrics`."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

import anyio
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from flatlab.settings import Settings
from store.db import session_scope
from store.errors import Forbidden, Unauthenticated
from store.keys import authenticate, get_or_create_team

DEFAULT_TEAM = "default"


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One transaction per request: commit after the handler, before the response is sent.

    Commit, rollback and close run in threads of their own limiter: were they to
    wait for the handlers' thread pool, 40 requests blocked on a row the committing
    request holds (concurrent retries of one Idempotency-Key) would never be freed.
    """
    factory: sessionmaker[Session] = request.app.state.session_factory
    limiter = _commit_limiter(request)
    session = factory()
    try:
        yield session
        await anyio.to_thread.run_sync(session.commit, limiter=limiter)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(session.rollback, limiter=limiter)
        raise
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(session.close, limiter=limiter)


def _commit_limiter(request: Request) -> anyio.CapacityLimiter:
    limiter: anyio.CapacityLimiter | None = getattr(request.app.state, "commit_limiter", None)
    if limiter is None:  # made on first use: a limiter belongs to the running event loop
        limiter = request.app.state.commit_limiter = anyio.CapacityLimiter(32)
    return limiter


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


@dataclass(frozen=True)
class Caller:
    team_id: str
    read_only: bool


bearer = HTTPBearer(auto_error=False, description="an API key from `flatlab keys create`")


def get_caller(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    """The team a request acts for: from its API key, or the default team with auth off."""
    if not settings.auth_on:
        return Caller(team_id=_default_team_id(request), read_only=False)
    if credentials is None:
        raise Unauthenticated("missing API key: send 'Authorization: Bearer <key>'")
    found = authenticate(session=session, key=credentials.credentials)
    if found is None:
        raise Unauthenticated("unknown or revoked API key")
    team, read_only = found
    return Caller(team_id=team.id, read_only=read_only)


def _default_team_id(request: Request) -> str:
    """The default team's id, created on first use in a transaction of its own."""
    team_id: str | None = getattr(request.app.state, "default_team_id", None)
    if team_id is None:
        with session_scope(request.app.state.session_factory) as session:
            team_id = get_or_create_team(session=session, name=DEFAULT_TEAM).id
        request.app.state.default_team_id = team_id
    return team_id


def get_writer(caller: Annotated[Caller, Depends(get_caller)]) -> Caller:
    if caller.read_only:
        raise Forbidden("this API key is read-only")
    return caller


CallerDep = Annotated[Caller, Depends(get_caller)]
WriterDep = Annotated[Caller, Depends(get_writer)]


def check_metrics_access(
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
