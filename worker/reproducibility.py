"""The reproducibility block of every job: what ran, with which code, where, with which seed."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

import flatlab
from sam_core.spec import JobSpec
from store.models import Job


def reproducibility_block(spec: JobSpec, job: Job, worker_id: str) -> dict[str, Any]:
    """Spec hash, flatlab version and commit, torch and CUDA versions, seed, host, attempt.

    `pid` is the process that ran the attempt (a fresh one per job). The
    device is added when training starts (`Started.device`).
    """
    return {
        "spec_hash": spec.hash(),
        "flatlab_version": flatlab.__version__,
        "git_commit": git_commit(),
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda,
        "python_version": platform.python_version(),
        "seed": spec.training.seed,
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "worker_id": worker_id,
        "attempt": job.attempts,
    }


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit flatlab runs from: `FLATLAB_GIT_COMMIT` (set in images), else the source tree's.

    A tree with uncommitted changes to tracked files gets a `-dirty` suffix.
    """
    if os.environ.get("FLATLAB_GIT_COMMIT"):
        return os.environ["FLATLAB_GIT_COMMIT"]
    root = Path(flatlab.__file__).resolve().parent.parent
    try:
        sha = _git(root, "rev-parse", "HEAD")
        dirty = _git(root, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}-dirty" if dirty else sha


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=5, check=True
    )
    return done.stdout.strip()
