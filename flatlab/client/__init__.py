"""flatlab's Python client: httpx + pydantic + pandas, no torch and nothing of the server.

    from flatlab.client import Client
    fl = Client()                      # FLATLAB_URL, FLATLAB_API_KEY
    job = fl.wait(fl.submit_job("spec.yaml").id)
    fl.metrics(job.id, wide=True)      # a DataFrame, one column per metric

See docs/client.md.
"""

from flatlab.client._http import Event
from flatlab.client.client import BENCHMARK_PLOTS, DEFAULT_URL, JOB_PLOTS, Client
from flatlab.client.errors import (
    ApiError,
    BadRequest,
    Conflict,
    ConnectionFailed,
    FieldError,
    FlatlabError,
    Forbidden,
    JobFailed,
    NotFound,
    ServerError,
    Unauthenticated,
    ValidationError,
)
from flatlab.client.models import (
    ApiKey,
    Artifact,
    Benchmark,
    BenchmarkJob,
    BenchmarkReport,
    Dataset,
    Job,
    Study,
    StudyReport,
)
from flatlab.client.specs import SpecError, load_spec

__all__ = [
    "BENCHMARK_PLOTS",
    "DEFAULT_URL",
    "JOB_PLOTS",
    "ApiError",
    "ApiKey",
    "Artifact",
    "BadRequest",
    "Benchmark",
    "BenchmarkJob",
    "BenchmarkReport",
    "Client",
    "Conflict",
    "ConnectionFailed",
    "Dataset",
    "Event",
    "FieldError",
    "FlatlabError",
    "Forbidden",
    "Job",
    "JobFailed",
    "NotFound",
    "ServerError",
    "SpecError",
    "Study",
    "StudyReport",
    "Unauthenticated",
    "ValidationError",
    "load_spec",
]
