"""/v1/results: the team's results database — filter, group, aggregate in SQL, export."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import JSONResponse

from api.deps import CallerDep, SessionDep
from api.routes.params import plain_text_params
from api.services.results import (
    CONTENT_TYPES,
    DEFAULT_METRICS,
    add_intervals,
    check_metric_names,
    group_table,
    parse_field,
    parse_filter,
    parse_list,
    parse_metrics,
    row_table,
    to_csv,
    to_parquet,
)
from store.results import ResultsQuery, query_groups, query_rows

router = APIRouter(
    prefix="/v1/results", tags=["results"], dependencies=[Depends(plain_text_params)]
)

FilterParam = Annotated[
    list[str],
    Query(
        alias="filter",
        description="FIELD:OP:VALUE, repeated to AND; `|` ORs clauses; OP in eq ne gt ge lt "
        "le in (e.g. optimizer.rho:gt:0.01, optimizer.name:in:sam,sgd)",
    ),
]


@router.get("", response_class=Response)
def read_results(
    session: SessionDep,
    caller: CallerDep,
    filters: FilterParam = [],  # noqa: B006 — FastAPI copies the default
    group_by: Annotated[str | None, Query(description="comma-separated fields")] = None,
    metrics: Annotated[str | None, Query(description="comma-separated summary keys")] = None,
    fields: Annotated[str | None, Query(description="spec fields to include in rows")] = None,
    format: Annotated[Literal["json", "csv", "parquet"], Query()] = "json",
    limit: Annotated[int, Query(ge=1, le=50_000)] = 100,
    cursor: str | None = None,
) -> Response:
    """Without `group_by`: matching jobs, newest first, paginated by `next_cursor`
    (the `X-Next-Cursor` header for csv and parquet). With `group_by`: per group,
    the job count and count, mean, std, min, max and 95% CI of each metric."""
    keys = parse_list(group_by, where="group_by")
    query = ResultsQuery(
        team_id=caller.team_id,
        filters=tuple(parse_filter(f) for f in filters),
        group_by=tuple(parse_field(k, where="group_by") for k in keys),
        metrics=parse_metrics(metrics, DEFAULT_METRICS if keys else ()),
        fields=tuple(parse_field(f, where="fields") for f in parse_list(fields, where="fields")),
        limit=limit,
        cursor=cursor,
    )
    check_metric_names(session=session, query=query)
    if keys:
        groups = add_intervals(query_groups(session=session, query=query))
        body: dict[str, Any] = {"group_by": keys, "metrics": list(query.metrics), "groups": groups}
        table, next_cursor = group_table(groups, keys, query.metrics), None
    else:
        items, next_cursor = query_rows(session=session, query=query)
        body = {"items": items, "next_cursor": next_cursor}
        table = row_table(items, [".".join(f.path) for f in query.fields])
    return _render(format, body, table, next_cursor)


def _render(format: str, body: dict[str, Any], table: Any, next_cursor: str | None) -> Response:
    if format == "json":
        return JSONResponse(_jsonable(body))
    data = to_csv(*table) if format == "csv" else to_parquet(*table)
    headers = {"Content-Disposition": f'attachment; filename="results.{format}"'}
    if next_cursor:
        headers["X-Next-Cursor"] = next_cursor
    return Response(data, media_type=CONTENT_TYPES[format], headers=headers)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
