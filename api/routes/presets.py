"""/v1/presets: the seed papers' benchmarks, to submit as `POST /v1/benchmarks {"preset": …}`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from api.deps import CallerDep
from api.routes.params import plain_text_params
from flatlab.presets import PRESETS
from sam_core.spec.benchmark import BenchmarkBody, count_points

router = APIRouter(
    prefix="/v1/presets", tags=["benchmarks"], dependencies=[Depends(plain_text_params)]
)


class PresetPublic(BaseModel):
    name: str
    title: str
    reference: str
    description: str = Field(
        description="the paper's setup this preset runs and how it is scaled down (epochs, "
        "width), as docs/reproductions.md quotes it"
    )
    jobs: int
    body: dict[str, Any]


class PresetsPublic(BaseModel):
    """Every preset flatlab ships (the list is complete: no pagination)."""

    items: list[PresetPublic]


@router.get("", response_model=PresetsPublic)
def read_presets(caller: CallerDep) -> PresetsPublic:
    """Every preset with its benchmark body and how many jobs it runs."""
    items = [
        PresetPublic(
            name=p.name,
            title=p.title,
            reference=p.reference,
            description=p.description,
            jobs=count_points(BenchmarkBody.model_validate(p.body)),
            body=p.body,
        )
        for p in PRESETS.values()
    ]
    return PresetsPublic(items=items)
