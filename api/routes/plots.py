"""Plots as PNG or SVG: a job's curves, measures, landscapes and density; a benchmark's
comparison and sharpness-vs-generalization-gap scatter. Rendered by `flatlab.plots`.

An unknown kind or metric is a 422 naming it with the known ones; a job or
benchmark that lacks what a plot needs (no evaluation yet, a measure never
asked for) is a 409 saying what is missing.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from matplotlib.figure import Figure

from api.deps import CallerDep, SessionDep, SettingsDep
from api.services.benchmarks import benchmark_report
from api.services.comparison import GAPS, Run, sharpness_names
from api.services.names import SUMMARY_METRICS, designed_metric
from api.services.studies import study_state
from api.services.tuned import tuning_report
from flatlab import plots
from flatlab.plots.jobs import CURVE_PANELS, LAMBDA_MAX, NOT_OVER_STEPS
from sam_core.spec.catalog import MEASURES
from store.artifacts import list_artifacts
from store.benchmarks import get_benchmark
from store.errors import Conflict, Unprocessable
from store.jobs import get_job
from store.metrics import read_metric_points
from store.studies import get_study

router = APIRouter(tags=["plots"])

Format = Annotated[Literal["png", "svg"], Query(description="image format")]
IMAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {}, "image/svg+xml": {}}, "description": "the plot"}
}
ARTIFACT_KINDS = {
    "landscape_1d": "loss_landscape_1d",
    "landscape_2d": "loss_landscape_2d",
    "density": "hessian_density",
}
REPEATS = 4  # a measure asked for up to this many times is plotted (`name`, `name_2`, …)


def _image(fig: Figure, fmt: str) -> Response:
    content = plots.to_bytes(fig, fmt)
    return Response(content, media_type=plots.FORMATS[fmt], headers={"Cache-Control": "no-store"})


def _unknown(what: str, value: str, known: Sequence[str]) -> Unprocessable:
    close = difflib.get_close_matches(value, known, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    msg = f"unknown {what} {value!r}: one of {', '.join(known) or '(none yet)'}{hint}"
    return Unprocessable(msg, errors=[{"loc": what, "msg": msg}])


def _render(draw: Callable[[], Figure], fmt: str) -> Response:
    try:
        return _image(draw(), fmt)
    except plots.MissingData as exc:
        raise Conflict(str(exc), missing=str(exc)) from None


@router.get("/v1/jobs/{job_id}/plots/{kind}", response_class=Response, responses=IMAGE_RESPONSES)
def job_plot(
    job_id: str,
    kind: str,
    session: SessionDep,
    settings: SettingsDep,
    caller: CallerDep,
    format: Format = "png",
    step: Annotated[int | None, Query(ge=0, le=2**62, description="landscape/density step")] = None,
    max_points: Annotated[int, Query(ge=4, le=100_000, description="points per curve")] = 2000,
) -> Response:
    """A job's plot: `curves` (train/test loss and accuracy), `measures` (sharpness over
    steps, λ_max with 2/η), `landscape_1d`, `landscape_2d`, `density` (the latest
    evaluation's, or the one at `step`). Long curves are downsampled to `max_points`
    per series, keeping each bucket's minimum and maximum."""
    if kind not in plots.JOB_KINDS:
        raise _unknown("kind", kind, plots.JOB_KINDS)
    job = get_job(session=session, job_id=job_id, team_id=caller.team_id)
    title = f"{job.label or job.spec.get('optimizer', {}).get('name', '')} · job {job.id[:8]}"
    if kind in ARTIFACT_KINDS:
        measure = ARTIFACT_KINDS[kind]
        at, result = _measure_result(session, settings.artifacts_dir, job_id, measure, step)
        draw = getattr(plots, kind)
        return _render(lambda: draw(result, step=at), format)
    if kind == "curves":
        names: list[str] = [n for _, _, evals, per_step in CURVE_PANELS for n in (*evals, per_step)]
    else:
        over_steps = [m for m in MEASURES if m not in NOT_OVER_STEPS]
        names = [*over_steps, *(f"{m}_{i}" for m in over_steps for i in range(2, REPEATS + 1))]
        names.append("lr")
    series = _series(session, job_id, names)
    draw_job = plots.curves if kind == "curves" else plots.measures
    return _render(lambda: draw_job(series, title=title, max_points=max_points), format)


def _series(session: Any, job_id: str, names: list[str]) -> dict[str, list[tuple[int, Any]]]:
    out: dict[str, list[tuple[int, Any]]] = {}
    for point in read_metric_points(session=session, job_id=job_id, names=names, limit=10**7):
        out.setdefault(point.name, []).append((point.step, point.value))
    return out


def _measure_result(
    session: Any, root: Any, job_id: str, measure: str, step: int | None
) -> tuple[int, dict[str, Any]]:
    """(step, result) of the job's `measure` at `step` or its latest; Conflict if none."""
    pattern = re.compile(rf"{measure}_step(\d+)\.json")
    found = {
        int(m.group(1)): a
        for a in list_artifacts(session=session, job_id=job_id)
        if (m := pattern.fullmatch(a.name))
    }
    if not found:
        raise Conflict(
            f"job {job_id} has no {measure} result: add {measure!r} to the spec's "
            "measure.sharpness, and wait for an evaluation",
            missing=measure,
        )
    if step is not None and step not in found:
        steps = ", ".join(str(s) for s in sorted(found))
        raise Conflict(f"job {job_id} has no {measure} result at step {step}; it has: {steps}")
    at = step if step is not None else max(found)
    path = (root / found[at].path).resolve()
    if not path.is_relative_to(root.resolve()) or not path.is_file():
        raise Conflict(f"the file of {found[at].name!r} is missing", missing=found[at].name)
    value = json.loads(path.read_text()).get("value")
    if not isinstance(value, dict):
        raise Conflict(f"{found[at].name!r} holds no {measure} result", missing=measure)
    return at, value


@router.get(
    "/v1/benchmarks/{benchmark_id}/plots/{kind}",
    response_class=Response,
    responses=IMAGE_RESPONSES,
)
def benchmark_plot(
    benchmark_id: str,
    kind: str,
    session: SessionDep,
    caller: CallerDep,
    format: Format = "png",
    metric: Annotated[
        str | None,
        Query(
            description="comparison: a summary metric (final_test_acc); sharpness_gap: a measure"
        ),
    ] = None,
    gap: Annotated[
        Literal["gen_gap_acc", "gen_gap_loss"], Query(description="sharpness_gap's y axis")
    ] = "gen_gap_acc",
) -> Response:
    """A benchmark's plot: `comparison` (mean and 95% interval of `metric` per
    configuration), `sharpness_gap` (a sharpness measure against the generalization
    gap over all succeeded runs, with Kendall's τ) or, for a tuned benchmark,
    `tuning_curves` (each optimizer's best objective so far against its budget)."""
    if kind not in plots.BENCHMARK_KINDS:
        raise _unknown("kind", kind, plots.BENCHMARK_KINDS)
    if metric is not None and not designed_metric(metric, summary=True):
        raise _unknown("metric", metric, [*SUMMARY_METRICS, *MEASURES])  # before any 409
    if kind == "tuning_curves":
        return _tuning_curves(session, caller.team_id, benchmark_id, format)
    report = benchmark_report(
        session=session,
        team_id=caller.team_id,
        benchmark_id=benchmark_id,
        metric=metric or "final_test_acc",
        order="desc",
    )
    done = [
        (link, job) for link, job in report["jobs"] if job.status == "succeeded" and job.summary
    ]
    if not done:
        raise Conflict(
            f"benchmark {benchmark_id} has no succeeded run yet "
            f"({report['progress']['by_status']})",
            missing="succeeded runs",
        )
    if kind == "comparison":
        configurations = report["comparison"]["configurations"]
        known = sorted({m for c in configurations.values() for m in c["metrics"]})
        chosen = metric or "final_test_acc"
        if chosen not in known:
            raise _unknown("metric", chosen, known)
        baseline = report["benchmark"].baseline
        return _render(lambda: plots.comparison(configurations, chosen, baseline=baseline), format)
    runs = [Run(job.id, link.label, link.seed, job.status, job.summary) for link, job in done]
    measures = sharpness_names(runs)
    chosen = metric or (LAMBDA_MAX if LAMBDA_MAX in measures else (measures or [""])[0])
    if chosen not in measures:
        raise (
            _unknown("metric", chosen, measures)
            if metric
            else Conflict(
                f"benchmark {benchmark_id}'s runs measured no sharpness: add one to "
                "measure.sharpness of its base spec",
                missing="sharpness measure",
            )
        )
    assert gap in GAPS
    points = [(r.label, (r.summary or {}).get(chosen), (r.summary or {}).get(gap)) for r in runs]
    return _render(lambda: plots.sharpness_gap(points, chosen, gap), format)


def _tuning_curves(session: Any, team_id: str, benchmark_id: str, fmt: str) -> Response:
    benchmark = get_benchmark(session=session, benchmark_id=benchmark_id, team_id=team_id)
    if benchmark.body.get("mode") != "tuned":
        raise Conflict(
            f"benchmark {benchmark_id} is a grid: tuning curves are drawn for a tuned "
            "benchmark (mode: tuned)",
            missing="studies",
        )
    tuning = tuning_report(session, benchmark)
    x = "trials" if tuning["budget"].get("trials") is not None else "grad_evals"
    metric = tuning["objective"]["metric"]
    return _render(lambda: plots.tuning_curves(tuning["optimizers"], metric, x=x), fmt)


@router.get(
    "/v1/studies/{study_id}/plots/{kind}", response_class=Response, responses=IMAGE_RESPONSES
)
def study_plot(
    study_id: str, kind: str, session: SessionDep, caller: CallerDep, format: Format = "png"
) -> Response:
    """A study's plot: `history` (each complete trial's objective and the best so far) or
    `importance` (Optuna's fANOVA importance of each searched path)."""
    if kind not in plots.STUDY_KINDS:
        raise _unknown("kind", kind, plots.STUDY_KINDS)
    study = get_study(session=session, study_id=study_id, team_id=caller.team_id)
    trials = study_state(session=session, study=study)["trials"]
    if kind == "history":
        return _render(
            lambda: plots.optimization_history(trials, study.metric, study.direction), format
        )
    space = study.body["search_space"]
    return _render(lambda: plots.parameter_importance(trials, space, study.direction), format)
