"""`flatlab keys create|revoke` (on the database, for operators) and `keys ls` (on the API)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from flatlab.cli.common import (
    JsonOpt,
    KeyOpt,
    UrlOpt,
    client,
    console,
    fail,
    print_json,
    reports_errors,
)
from flatlab.settings import get_settings

app = typer.Typer(no_args_is_help=True, help="Teams' API keys.")


@app.command("create")
def keys_create(
    team: Annotated[str, typer.Option(help="team name (created if new)")],
    read_only: Annotated[bool, typer.Option(help="may read, may not submit")] = False,
) -> None:
    """Create an API key; the key is printed once, on the last line."""
    from store.keys import create_api_key, get_or_create_team

    with _session() as session:
        team_row = get_or_create_team(session=session, name=team)
        created = create_api_key(session=session, team_id=team_row.id, read_only=read_only)
    kind = "read-only key" if read_only else "key"
    console.print(
        f"{kind} {created.prefix}… for team {team!r}; store it now, it is not shown again:"
    )
    print(created.key)


@app.command("revoke")
def keys_revoke(key: Annotated[str, typer.Argument(help="the key, or its id")]) -> None:
    """Revoke an API key."""
    from store.errors import NotFound
    from store.keys import revoke_api_key

    try:
        with _session() as session:
            row = revoke_api_key(session=session, key=key)
    except NotFound as exc:
        fail(exc.message)
    console.print(f"revoked key {row.prefix}…")


@app.command("ls")
@reports_errors
def keys_ls(url: UrlOpt = None, key: KeyOpt = None, json: JsonOpt = False) -> None:
    """The API keys of your team (ids, prefixes, dates; never a secret)."""
    with client(url, key) as fl:
        keys = fl.keys()
    if json:
        print_json([k.raw for k in keys])
        return
    table = Table("id", "prefix", "read-only", "revoked", "created")
    for k in keys:
        read_only, revoked = _yes(k.read_only), _yes(k.revoked)
        prefix = f"{k.prefix}…" if k.prefix else ""
        table.add_row(k.id, prefix, read_only, revoked, str(k.created_at or ""))
    console.print(table)


def _yes(flag: bool | None) -> str:
    return "" if flag is None else ("yes" if flag else "no")


def _session() -> Any:
    from store.db import make_engine, make_session_factory, session_scope

    return session_scope(make_session_factory(make_engine(get_settings().db_url)))
