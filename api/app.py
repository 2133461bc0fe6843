"""The FastAPI application: `create_app(settings)` for tests and tools, `app` for uvicorn.

The API process never imports torch: the spec and catalog come from the
torch-free `sam_core.spec`, and jobs go to workers by task name.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

import flatlab
from api.db_gate import Gate, GateSizes, gate
from api.errors import install_error_handlers
from api.input_guard import InputGuard, check_route_input
from api.observability import ApiMetrics, MetricsMiddleware
from api.openapi import install_openapi
from api.routes import (
    benchmarks,
    catalog,
    datasets,
    health,
    jobs,
    keys,
    plots,
    presets,
    results,
    studies,
)
from api.routes.ui import install_ui
from api.services.study_driver import StudyDriver
from flatlab.broker import make_celery
from flatlab.settings import Settings, get_settings
from store.db import make_engine, make_session_factory


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    if settings.embedded:  # the embedded SQLite file is ours to keep current
        import migrations

        migrations.upgrade(settings.db_url)
    gate(app).slots  # noqa: B018 — sizes this loop's thread pool before the first request
    driver = None
    if settings.study_poll_seconds > 0:
        driver = StudyDriver(settings, app.state.celery, app.state.session_factory)
        driver.start()
    app.state.study_driver = driver
    yield
    if driver is not None:
        driver.close()
        driver.join(timeout=10)
    app.state.engine.dispose()
    app.state.probe_engine.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="flatlab",
        version=flatlab.__version__,
        description="Training as a service for sharpness-aware optimization research.",
        lifespan=lifespan,
        docs_url=None,  # served offline by api.routes.ui
        redoc_url=None,
        dependencies=[Depends(check_route_input)],
    )
    app.state.settings = settings
    sizes = GateSizes.from_pool(settings.db_pool_size)
    app.state.gate = Gate(sizes)
    app.state.engine = make_engine(settings.db_url, **sizes.engine_kwargs())
    # The health probes' own connection: they never wait behind requests for one.
    app.state.probe_engine = make_engine(
        settings.db_url, pool_size=1, max_overflow=1, pool_timeout=5
    )
    app.state.probe_sessions = make_session_factory(app.state.probe_engine)
    app.state.session_factory = make_session_factory(app.state.engine)
    app.state.celery = make_celery(settings)
    app.state.metrics = ApiMetrics()
    app.state.sse_poll_seconds = 0.5
    # Added first, so it runs inside the metrics middleware: refusals are counted too.
    app.add_middleware(InputGuard, api=app, settings=settings)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    install_error_handlers(app)
    routers = (jobs, benchmarks, studies, plots, presets, results, datasets, catalog, keys, health)
    for module in routers:
        app.include_router(module.router)
    install_ui(app)
    install_openapi(app)
    return app


def __getattr__(name: str) -> FastAPI:
    # `uvicorn api.app:app` builds the app on first access, not at import
    if name == "app":
        globals()["app"] = application = create_app()
        return application
    raise AttributeError(name)
