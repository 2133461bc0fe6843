"""Uploading a data set: stream it to disk under a size limit, check its arrays, keep it.

The body is read chunk by chunk and refused with 413 as soon as it passes
`settings.max_upload_bytes` (plus a little room for the form's framing), so no
upload is ever held whole in memory. The archive is then checked with the
torch-free `sam_core.data.arrays`: array headers first (no object dtype, no
array that would decompress past `max_upload_array_bytes`), then the arrays
themselves (`allow_pickle=False`). A good file is saved as `<dataset id>.npz`
in `settings.datasets_dir`; the name a user sent is kept only as a label.

A job names an upload by its id (`data: {name: npz, path: <id>}`); a path that
looks like an upload id must be one of the submitting team's uploads.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
import zipfile
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from pathlib import Path, PurePosixPath
from typing import IO, Any

import numpy as np
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from api.input_guard import text_problem
from flatlab.settings import Settings
from sam_core.data.arrays import checked_arrays, npz_headers
from sam_core.data.errors import DataError
from sam_core.spec import JobSpec
from store.datasets import create_dataset, find_dataset
from store.errors import InvalidRequest, PayloadTooLarge, Unprocessable, UnsupportedMediaType
from store.models import Dataset

FORM_FRAMING_BYTES = 64 * 1024  # boundaries, part headers and the `name` field
UPLOAD_ID = re.compile(r"[0-9a-f]{32}", re.IGNORECASE)


async def receive_upload(request: Request, settings: Settings) -> tuple[UploadFile, str | None]:
    """The form's `file` part (spooled by Starlette) and its optional `name` field."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "multipart/form-data":
        raise UnsupportedMediaType(
            "send the .npz as multipart/form-data with a part named 'file' (curl -F file=@data.npz)"
        )
    limit = settings.max_upload_bytes + FORM_FRAMING_BYTES
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(settings, int(declared))
    parser = MultiPartParser(request.headers, _bounded(request.stream(), limit, settings))
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise InvalidRequest(f"malformed multipart body: {exc.message}") from None
    file, name = form.get("file"), form.get("name")
    if not isinstance(file, UploadFile):
        raise Unprocessable(
            "the form needs a file part named 'file'", errors=[{"loc": "file", "msg": "required"}]
        )
    if file.size is not None and file.size > settings.max_upload_bytes:
        raise _too_large(settings, file.size)
    for loc, text in (("name", name), ("file", file.filename)):
        why = text_problem(text) if isinstance(text, str) else None
        if why:
            await file.close()
            msg = f"the file name {why}" if loc == "file" else why
            raise Unprocessable(f"{loc}: {msg}", errors=[{"loc": loc, "msg": msg}])
    label = name if isinstance(name, str) and name else file.filename
    return file, label


async def _bounded(
    chunks: AsyncIterator[bytes], limit: int, settings: Settings
) -> AsyncGenerator[bytes, None]:
    seen = 0
    async for chunk in chunks:
        seen += len(chunk)
        if seen > limit:
            raise _too_large(settings, seen)
        yield chunk


def _too_large(settings: Settings, size: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"upload of at least {size} bytes is larger than the limit of "
        f"{settings.max_upload_bytes} bytes (FLATLAB_MAX_UPLOAD_BYTES)",
        limit_bytes=settings.max_upload_bytes,
    )


def save_dataset(
    *, session: Session, settings: Settings, team_id: str, upload: IO[bytes], name: str | None
) -> Dataset:
    """Check the uploaded archive and keep it as `<id>.npz` with a row describing it."""
    folder = settings.datasets_dir
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".upload-{uuid.uuid4().hex}.part"
    try:
        with partial.open("wb") as out:
            shutil.copyfileobj(upload, out, 1024 * 1024)
        shapes = describe_upload(partial, settings)
        dataset = create_dataset(
            session=session,
            team_id=team_id,
            name=_label(name),
            size_bytes=partial.stat().st_size,
            shapes=shapes,
        )
        os.replace(partial, folder / dataset.path)
    finally:
        partial.unlink(missing_ok=True)
    return dataset


def describe_upload(path: Path, settings: Settings) -> dict[str, Any]:
    """Arrays' shapes and dtypes and what they make (task, classes, sizes); 422 if unfit."""
    try:
        headers = npz_headers(path, max_array_bytes=settings.max_upload_array_bytes)
        _check_total(headers, settings)
        with np.load(path, allow_pickle=False) as archive:
            _, summary = checked_arrays(archive)
    except DataError as exc:
        raise _unfit(str(exc)) from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise _unfit(f"not a readable .npz archive: {exc}") from None
    return {
        "arrays": {k: headers[k] for k in ("x_train", "y_train", "x_test", "y_test")},
        "task": summary["task"],
        "num_outputs": summary["num_outputs"],
        "input_shape": list(summary["input_shape"]),
        "n_train": summary["n_train"],
        "n_test": summary["n_test"],
    }


def _check_total(headers: dict[str, dict[str, Any]], settings: Settings) -> None:
    """413 when the archive's arrays together would decompress past the total limit."""
    total = sum(
        int(np.prod(h["shape"], dtype=np.int64)) * np.dtype(h["dtype"]).itemsize
        for h in headers.values()
    )
    limit = settings.max_upload_total_bytes
    if total > limit:
        raise PayloadTooLarge(
            f"the upload's arrays would take {total} bytes once decompressed, more than the "
            f"limit of {limit} bytes for all arrays together (FLATLAB_MAX_UPLOAD_TOTAL_BYTES)",
            limit_bytes=limit,
        )


def _unfit(message: str) -> Unprocessable:
    return Unprocessable(message, errors=[{"loc": "file", "msg": message}])


def _label(name: str | None) -> str:
    # A label only: the file on disk is named by the id.
    return (PurePosixPath(name.replace("\\", "/")).name if name else "")[:200] or "upload.npz"


def check_dataset_access(*, session: Session, team_id: str, specs: Iterable[JobSpec]) -> None:
    """Refuse (422) an `npz` path that names an upload the team does not own.

    Files an operator put in the data folder under other names stay usable by
    every team; a name shaped like an upload id must be the team's own upload,
    written as the bare id (or `<id>.npz`), so no other spelling reaches it.
    """
    for path in sorted({s.data.path for s in specs if s.data.name == "npz"}):
        stem = PurePosixPath(path.replace("\\", "/")).name.removesuffix(".npz")
        if not UPLOAD_ID.fullmatch(stem):
            continue
        if path not in (stem, f"{stem}.npz") or stem != stem.lower():
            _refuse(path, "name an uploaded dataset by its id alone")
        if find_dataset(session=session, dataset_id=stem, team_id=team_id) is None:
            _refuse(path, f"no uploaded dataset {stem} in your team (POST /v1/datasets)")


def _refuse(path: str, why: str) -> None:
    message = f"data.path {path!r}: {why}"
    raise Unprocessable(message, errors=[{"loc": "data.path", "msg": why}])
