"""/v1/optimizers, /v1/models, /v1/datasets, /v1/measures: what a spec may name.

Built from `sam_core.spec`'s registries (torch-free), so the catalog lists
exactly what validation accepts, each entry with its parameters' JSON schema.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from api.deps import CallerDep
from api.routes.params import plain_text_params
from api.schemas import CatalogEntry, CatalogPublic, OptimizersPublic
from sam_core.spec import DATASETS, MEASURES, MODELS, RULES
from sam_core.spec.catalog import Info
from sam_core.spec.optimizers import BaseOptimizerParams, ScheduleParams

router = APIRouter(prefix="/v1", tags=["catalog"], dependencies=[Depends(plain_text_params)])


def _entries(table: dict[str, Info]) -> list[CatalogEntry]:
    return [
        CatalogEntry(
            name=i.name, title=i.title, task=i.task, parameters=i.params.model_json_schema()
        )
        for i in table.values()
    ]


@router.get("/optimizers", response_model=OptimizersPublic)
def read_optimizers(_: CallerDep) -> OptimizersPublic:
    """Every update rule, with its reference, passes per step and parameters."""
    items = [
        CatalogEntry(
            name=r.name,
            title=r.title,
            reference=r.reference,
            passes=r.passes,
            parameters=r.params.model_json_schema(),
        )
        for r in RULES.values()
    ]
    return OptimizersPublic(
        items=items,
        base=BaseOptimizerParams.model_json_schema(),
        schedule=ScheduleParams.model_json_schema(),
    )


@router.get("/models", response_model=CatalogPublic)
def read_models(_: CallerDep) -> CatalogPublic:
    """Every model architecture and its parameters."""
    return CatalogPublic(items=_entries(MODELS))


@router.get("/datasets", response_model=CatalogPublic)
def read_datasets(_: CallerDep) -> CatalogPublic:
    """Every data set (built-in and synthetic), its task and its parameters."""
    return CatalogPublic(items=_entries(DATASETS))


@router.get("/measures", response_model=CatalogPublic)
def read_measures(_: CallerDep) -> CatalogPublic:
    """Every sharpness measure a spec may request in `measure.sharpness`."""
    return CatalogPublic(items=_entries(MEASURES))
