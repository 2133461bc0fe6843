"""One attempt at one job, as its own process: `python -m tests.faults.attempt <job id>`.

What a worker's pool child does for a job, without Celery, so a test can
freeze (SIGSTOP) and thaw exactly the process that holds the job and see
how it ends. The settings come from the FLATLAB_* environment.
"""

from __future__ import annotations

import logging
import sys

from flatlab.settings import get_settings
from worker.runner import run_job

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    status = run_job(sys.argv[1], get_settings())
    print(f"attempt ended: {status}", flush=True)
