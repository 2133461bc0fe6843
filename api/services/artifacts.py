"""Artifact files: the media type each is served with, and removing a deleted job's files.

The media type comes from this table, never from the host's `mimetypes`
database: that one differs between machines and calls a PyTorch `.pt` file
`application/vnd.snesdev-page-table` on some of them.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

log = logging.getLogger(__name__)

BINARY = "application/octet-stream"
MEDIA_TYPES = {
    ".pt": BINARY,  # torch.save: checkpoints and weights
    ".pth": BINARY,
    ".ckpt": BINARY,
    ".bin": BINARY,
    ".safetensors": BINARY,
    ".npz": BINARY,
    ".npy": BINARY,
    ".json": "application/json",  # measure extras (densities, landscapes)
    ".csv": "text/csv; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".log": "text/plain; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".pdf": "application/pdf",
    ".html": "text/html; charset=utf-8",
}


def media_type(name: str) -> str:
    """The `Content-Type` of an artifact file by its extension; unknown ones are binary."""
    return MEDIA_TYPES.get(PurePosixPath(name).suffix.lower(), BINARY)


def remove_files(root: Path, job_id: str, paths: Iterable[str]) -> None:
    """Remove a deleted job's artifact files and its folder, only ever inside `root`.

    Runs after the deletion is committed; a file that cannot be removed is
    logged and left (the rows are gone, so nothing serves it any more).
    """
    root = root.resolve()
    for relative in paths:
        path = (root / relative).resolve()
        if path.is_relative_to(root) and path != root and path.is_file():
            try:
                path.unlink()
            except OSError:
                log.warning("could not remove artifact file %s", path, exc_info=True)
    folder = (root / job_id).resolve()
    if folder.is_relative_to(root) and folder != root and folder.is_dir():
        shutil.rmtree(folder, ignore_errors=True)
