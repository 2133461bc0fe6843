"""Uploaded data sets: one row per `.npz` a team uploaded, the file named by the row's id.

`path` is the file's name inside `settings.datasets_dir` (`<id>.npz`); it is
made here from the id, never from anything a user sent.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.errors import NotFound
from store.models import Dataset, new_id
from store.pages import newest_first


def create_dataset(
    *, session: Session, team_id: str, name: str, size_bytes: int, shapes: dict[str, Any]
) -> Dataset:
    """Record an uploaded data set; its file must be saved as `dataset.path`."""
    dataset_id = new_id()
    row = Dataset(
        id=dataset_id,
        team_id=team_id,
        name=name,
        path=f"{dataset_id}.npz",
        size_bytes=size_bytes,
        shapes=shapes,
    )
    session.add(row)
    session.flush()
    return row


def find_dataset(*, session: Session, dataset_id: str, team_id: str) -> Dataset | None:
    """The team's data set with this id; None for an unknown id or another team's."""
    row = session.get(Dataset, dataset_id)
    return row if row is not None and row.team_id == team_id else None


def get_dataset(*, session: Session, dataset_id: str, team_id: str) -> Dataset:
    row = find_dataset(session=session, dataset_id=dataset_id, team_id=team_id)
    if row is None:
        raise NotFound(f"no uploaded dataset {dataset_id}", resource="dataset", id=dataset_id)
    return row


def list_datasets(
    *, session: Session, team_id: str, limit: int = 100, cursor: str | None = None
) -> tuple[list[Dataset], str | None]:
    """One page of the team's uploads, newest first, and the cursor of the next (or None)."""
    stmt = select(Dataset).where(Dataset.team_id == team_id)
    return newest_first(session=session, stmt=stmt, model=Dataset, limit=limit, cursor=cursor)
