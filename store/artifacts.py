"""Artifacts: files a job leaves behind (checkpoints, final weights, plots).

`path` is relative to `settings.artifacts_dir` (an absolute path inside it is
accepted too); the API refuses to serve a file outside that folder.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.errors import NotFound
from store.models import Artifact


def add_artifact(
    *,
    session: Session,
    job_id: str,
    team_id: str,
    name: str,
    kind: str,
    path: str,
    size_bytes: int = 0,
    step: int | None = None,
    extra: dict[str, Any] | None = None,
) -> Artifact:
    """Record an artifact; a second call with the same job and name updates it (`last.pt`)."""
    row = session.scalars(
        select(Artifact).where(Artifact.job_id == job_id, Artifact.name == name)
    ).one_or_none()
    if row is None:
        row = Artifact(job_id=job_id, team_id=team_id, name=name)
        session.add(row)
    row.kind, row.path, row.size_bytes, row.step, row.extra = kind, path, size_bytes, step, extra
    session.flush()
    return row


def list_artifacts(*, session: Session, job_id: str) -> list[Artifact]:
    stmt = select(Artifact).where(Artifact.job_id == job_id).order_by(Artifact.created_at)
    return list(session.scalars(stmt))


def get_artifact(*, session: Session, job_id: str, name: str) -> Artifact:
    row = session.scalars(
        select(Artifact).where(Artifact.job_id == job_id, Artifact.name == name)
    ).one_or_none()
    if row is None:
        raise NotFound(f"job {job_id} has no artifact {name!r}", resource="artifact", name=name)
    return row
