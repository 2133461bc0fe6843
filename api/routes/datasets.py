"""/v1/datasets (POST) and /v1/datasets/uploads: a team's own data sets, uploaded as `.npz`.

`GET /v1/datasets` is the catalog (`api.routes.catalog`); uploads are listed
apart so the catalog stays what every spec may name.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import CallerDep, SessionDep, SettingsDep, WriterDep
from api.routes.params import plain_text_params
from api.schemas import UtcDatetime
from api.services.datasets import receive_upload, save_dataset
from store.datasets import get_dataset, list_datasets
from store.models import Dataset

router = APIRouter(
    prefix="/v1/datasets", tags=["datasets"], dependencies=[Depends(plain_text_params)]
)


class ArrayInfo(BaseModel):
    shape: list[int]
    dtype: str


class DatasetPublic(BaseModel):
    id: str
    name: str
    size_bytes: int
    task: str = Field(description="classification (integer labels) or regression (float)")
    num_outputs: int
    input_shape: list[int]
    n_train: int
    n_test: int
    arrays: dict[str, ArrayInfo]
    created_at: UtcDatetime
    data: dict[str, str] = Field(description="the `data` block of a job spec that trains on it")

    @classmethod
    def from_dataset(cls, row: Dataset) -> DatasetPublic:
        shapes: dict[str, Any] = row.shapes
        return cls(
            id=row.id,
            name=row.name,
            size_bytes=row.size_bytes,
            created_at=row.created_at,
            data={"name": "npz", "path": row.id},
            **shapes,
        )


class DatasetsPublic(BaseModel):
    items: list[DatasetPublic]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null at end")


UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "an .npz with x_train, y_train, x_test, y_test",
                        },
                        "name": {"type": "string", "maxLength": 200},
                    },
                }
            }
        },
    }
}


@router.post(
    "",
    status_code=201,
    response_model=DatasetPublic,
    openapi_extra=UPLOAD_BODY,
    responses={
        400: {"description": "malformed multipart body"},
        413: {"description": "larger than FLATLAB_MAX_UPLOAD_BYTES"},
        415: {"description": "not multipart/form-data"},
        422: {"description": "no `file` part, or arrays unfit (the message names the array)"},
    },
)
async def upload_dataset(
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    caller: WriterDep,
) -> DatasetPublic:
    """Upload an `.npz` (multipart field `file`); it is checked, then kept for the team."""
    upload, name = await receive_upload(request, settings)
    try:
        row = await run_in_threadpool(
            save_dataset,
            session=session,
            settings=settings,
            team_id=caller.team_id,
            upload=upload.file,
            name=name,
        )
    finally:
        await upload.close()
    response.headers["Location"] = f"/v1/datasets/uploads/{row.id}"
    return DatasetPublic.from_dataset(row)


@router.get("/uploads", response_model=DatasetsPublic)
def read_uploads(
    session: SessionDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: str | None = None,
) -> DatasetsPublic:
    """The team's uploaded data sets, newest first; follow `next_cursor` for the next page."""
    rows, next_cursor = list_datasets(
        session=session, team_id=caller.team_id, limit=limit, cursor=cursor
    )
    return DatasetsPublic(
        items=[DatasetPublic.from_dataset(r) for r in rows], next_cursor=next_cursor
    )


@router.get(
    "/uploads/{dataset_id}",
    response_model=DatasetPublic,
    responses={404: {"description": "not an upload of your team"}},
)
def read_upload(dataset_id: str, session: SessionDep, caller: CallerDep) -> DatasetPublic:
    """One uploaded data set: its arrays' shapes and dtypes, and what they make."""
    row = get_dataset(session=session, dataset_id=dataset_id, team_id=caller.team_id)
    return DatasetPublic.from_dataset(row)
