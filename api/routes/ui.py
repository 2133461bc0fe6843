"""The dashboard at /ui and the offline API docs at /docs.

Pages are Jinja2 templates (`api/ui/templates`) whose script (`api/ui/static/ui.js`)
reads the same /v1 API with the API key the login page keeps in the browser's
localStorage, sent as `Authorization: Bearer`. Nothing is built: the static files,
Swagger UI included (vendored from the npm package swagger-ui-dist), are served as
they are, so the dashboard and /docs work without internet access.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

import flatlab

UI_DIR = Path(__file__).resolve().parent.parent / "ui"
STATIC = "/ui/static"
templates = Jinja2Templates(directory=UI_DIR / "templates")
router = APIRouter(include_in_schema=False)

PAGES = {
    "jobs": "Jobs",
    "benchmarks": "Benchmarks",
    "studies": "Studies",
    "results": "Results",
    "submit": "Submit",
}


def _page(request: Request, template: str, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        template,
        {"pages": PAGES, "static": STATIC, "version": flatlab.__version__, **context},
    )


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/ui", status_code=307)


@router.get("/ui")
def jobs_page(request: Request) -> HTMLResponse:
    return _page(request, "jobs.html", active="jobs")


@router.get("/ui/jobs/{job_id}")
def job_page(request: Request, job_id: str) -> HTMLResponse:
    return _page(request, "job.html", active="jobs", job_id=job_id)


@router.get("/ui/benchmarks")
def benchmarks_page(request: Request) -> HTMLResponse:
    return _page(request, "benchmarks.html", active="benchmarks")


@router.get("/ui/benchmarks/{benchmark_id}")
def benchmark_page(request: Request, benchmark_id: str) -> HTMLResponse:
    return _page(request, "benchmark.html", active="benchmarks", benchmark_id=benchmark_id)


@router.get("/ui/studies")
def studies_page(request: Request) -> HTMLResponse:
    return _page(request, "studies.html", active="studies")


@router.get("/ui/studies/{study_id}")
def study_page(request: Request, study_id: str) -> HTMLResponse:
    return _page(request, "study.html", active="studies", study_id=study_id)


@router.get("/ui/results")
def results_page(request: Request) -> HTMLResponse:
    return _page(request, "results.html", active="results")


@router.get("/ui/submit")
def submit_page(request: Request) -> HTMLResponse:
    return _page(request, "submit.html", active="submit")


@router.get("/ui/login")
def login_page(request: Request) -> HTMLResponse:
    return _page(request, "login.html", active="login")


@router.get("/docs")
def swagger_ui() -> HTMLResponse:
    """Swagger UI from the vendored swagger-ui-dist files, not a CDN."""
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="flatlab API",
        swagger_js_url=f"{STATIC}/swagger-ui/swagger-ui-bundle.js",
        swagger_css_url=f"{STATIC}/swagger-ui/swagger-ui.css",
        swagger_favicon_url=f"{STATIC}/swagger-ui/favicon-32x32.png",
    )


def install_ui(app: FastAPI) -> None:
    """Mount the static files and the pages; the app must be made with docs_url=None."""
    app.mount(STATIC, StaticFiles(directory=UI_DIR / "static"), name="ui-static")
    app.include_router(router)
