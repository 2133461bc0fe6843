"""`flatlab results`: the team's results database — filter, group, aggregate, export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from flatlab.cli.common import (
    Exit,
    JsonOpt,
    KeyOpt,
    UrlOpt,
    client,
    console,
    err_console,
    fail,
    print_json,
    reports_errors,
)

ListOpt = Annotated[list[str] | None, typer.Option("--filter", "-f", help="FIELD:OP:VALUE")]


def _split(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


@reports_errors
def results(
    filters: ListOpt = None,
    group_by: Annotated[str | None, typer.Option(help="comma-separated fields")] = None,
    metrics: Annotated[str | None, typer.Option(help="comma-separated summary keys")] = None,
    fields: Annotated[str | None, typer.Option(help="spec fields to add to rows")] = None,
    limit: Annotated[int, typer.Option(help="at most this many rows")] = 1000,
    csv: Annotated[Path | None, typer.Option(help="write the table as CSV here")] = None,
    parquet: Annotated[Path | None, typer.Option(help="write the table as Parquet here")] = None,
    url: UrlOpt = None,
    key: KeyOpt = None,
    json: JsonOpt = False,
) -> None:
    """Jobs matching every --filter (e.g. optimizer.name:eq:sam, optimizer.rho:gt:0.01),
    as rows, or per --group-by group with n, mean, std, min, max and 95% CI."""
    if csv and parquet:
        fail("give --csv or --parquet, not both", code=Exit.USAGE)
    with client(url, key) as fl:
        frame = fl.results(
            filters=filters,
            group_by=_split(group_by),
            metrics=_split(metrics),
            fields=_split(fields),
            limit=limit,
        )
    if csv:
        frame.to_csv(csv, index=False)
    if parquet:
        frame.to_parquet(parquet, index=False)
    if csv or parquet:
        err_console.print(f"{len(frame)} rows written to {csv or parquet}")
    if json:
        text = frame.to_json(orient="records", date_format="iso")
        import json as _json

        print_json(_json.loads(text))
        return
    if csv or parquet:
        return
    table = Table(*[str(c) for c in frame.columns])
    for row in frame.itertuples(index=False):
        table.add_row(*[_cell(v) for v in row])
    console.print(table)
    err_console.print(f"{len(frame)} rows")


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "–" if value != value else f"{value:.4g}"
    return "" if value is None else str(value)
