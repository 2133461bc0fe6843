"""The tuned comparison protocol: tune each optimizer on the same budget, then re-run
each one's best configuration over many seeds and compare those.

As DeepOBS (Schneider et al. 2019) and AlgoPerf (Dahl et al. 2023) do: a comparison
at fixed hyperparameters favours the optimizers they happen to suit. A tuned benchmark
(`mode: tuned`) is a benchmark row with one study per optimizer (`studies.benchmark_id`,
`studies.label`); when every study has finished, the driver creates the re-runs (the
best trial's spec, `training.seed` set to each seed) as the benchmark's jobs, so the
report's comparison (means, CIs, paired tests, equal-gradient-evaluation view) is the
one every benchmark has, read on the test split the studies never saw.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.services.bodies import validate_body
from api.services.jobs import auto_queue_now
from api.services.studies import submit_study, tuning_curve
from flatlab.settings import Settings
from sam_core.spec.study import StudyInvalid, TunedBody, apply_params
from store.benchmarks import benchmark_jobs, create_benchmark, link_jobs
from store.errors import Unprocessable
from store.jobs import create_job
from store.models import Benchmark, Job, Study
from store.studies import study_trials

log = logging.getLogger(__name__)


def read_tuned_body(request: dict[str, Any]) -> TunedBody:
    return validate_body(TunedBody, request)


def submit_tuned(
    *, session: Session, settings: Settings, team_id: str, request: dict[str, Any]
) -> tuple[Benchmark, list[Study]]:
    """The benchmark row and one study per optimizer; the driver does the rest."""
    body = read_tuned_body(request)
    labels = [o.label for o in body.optimizers]
    benchmark = create_benchmark(
        session=session,
        team_id=team_id,
        body=body.model_dump(mode="json"),
        name=body.name,
        baseline=body.baseline or labels[0],
        tags=body.tags,
    )
    studies = []
    for i, (label, study_body) in enumerate(body.study_bodies()):
        try:
            study = submit_study(
                session=session,
                settings=settings,
                team_id=team_id,
                request=study_body.model_dump(mode="json"),
                benchmark_id=benchmark.id,
                label=label,
            )
        except Unprocessable as exc:  # name the optimizer the error belongs to
            errors = [_under(e, i) for e in exc.details.get("errors", [])]
            raise Unprocessable(f"optimizers.{i} ({label}): {exc.message}", errors=errors) from None
        studies.append(study)
    return benchmark, studies


def _under(error: dict[str, Any], index: int) -> dict[str, Any]:
    loc = str(error.get("loc", ""))
    if loc.startswith("base.optimizer"):
        loc = f"optimizers.{index}.optimizer" + loc.removeprefix("base.optimizer")
    elif loc.startswith("search_space"):
        loc = f"optimizers.{index}.{loc}"
    return {**error, "loc": loc}


def start_reruns(session: Session, settings: Settings, benchmark: Benchmark) -> list[Job]:
    """When all the benchmark's studies have finished: its re-run jobs (once; none while a
    study runs or after they exist). A study without a best trial re-runs nothing."""
    studies = _studies(session, benchmark.id)
    if not studies or any(s.status == "running" for s in studies):
        return []
    if benchmark_jobs(session=session, benchmark_id=benchmark.id):
        return []
    body = TunedBody.model_validate(benchmark.body)
    bodies = dict(body.study_bodies())
    created, links = [], []
    auto_queue = auto_queue_now(session, settings)
    for study in studies:
        if study.best_params is None or study.label not in bodies:
            continue
        try:
            best = apply_params(bodies[study.label].base, study.best_params)
        except StudyInvalid as exc:  # cannot happen for a trial that ran; say so if it does
            log.warning("benchmark %s: best of %s does not re-run: %s", benchmark.id, study.id, exc)
            continue
        for seed in body.seeds:
            raw = best.model_dump(mode="json")
            raw["training"]["seed"] = seed
            raw["tags"] = list(dict.fromkeys([*raw.get("tags", []), "tuned-rerun"]))
            spec = type(best).model_validate(raw)
            job = create_job(
                session=session,
                team_id=benchmark.team_id,
                spec=spec,
                max_attempts=settings.max_attempts,
                benchmark_id=benchmark.id,
                auto_queue=auto_queue,
            )
            job.label = study.label
            created.append(job)
            links.append((job.id, study.label or "", seed, False))
    link_jobs(session=session, benchmark_id=benchmark.id, links=links)
    return created


def tuned_benchmarks_waiting(session: Session) -> list[str]:
    """Tuned benchmarks with no re-runs yet whose studies have all finished."""
    stmt = select(Study.benchmark_id, Study.status).where(Study.benchmark_id.is_not(None))
    state: dict[str, bool] = {}
    for benchmark_id, status in session.execute(stmt).tuples():
        if benchmark_id is None:
            continue
        state[benchmark_id] = state.get(benchmark_id, True) and status != "running"
    waiting = [b for b, done in state.items() if done]
    return [b for b in waiting if not benchmark_jobs(session=session, benchmark_id=b)]


def tuning_report(session: Session, benchmark: Benchmark) -> dict[str, Any]:
    """What was tuned, on what split, with what budget; each optimizer's study, best
    configuration and tuning curve (best so far against trials and gradient evaluations)."""
    body = TunedBody.model_validate(benchmark.body)
    data = body.base.get("data", {})
    per_optimizer = []
    for study in _studies(session, benchmark.id):
        rows = study_trials(session=session, study_id=study.id)
        per_optimizer.append(
            {
                "label": study.label,
                "study_id": study.id,
                "status": study.status,
                "tuned": sorted(study.body["search_space"]),
                "search_space": study.body["search_space"],
                "best_value": study.best_value,
                "best_params": study.best_params,
                "trials": len(rows),
                "grad_evals": sum(t.grad_evals or 0.0 for t, _ in rows),
                "curve": tuning_curve(
                    [(t, job.status) for t, job in rows],
                    maximize=study.direction == "maximize",
                ),
            }
        )
    reruns = len(benchmark_jobs(session=session, benchmark_id=benchmark.id))
    return {
        "protocol": "tune each optimizer on the same budget (validation split), then re-run "
        "its best configuration over the seeds and compare on the test split",
        "split": {
            "tuned_on": "validation",
            "validation_fraction": data.get("validation_fraction"),
            "compared_on": "test",
        },
        "objective": body.objective.model_dump(),
        "budget": body.budget.model_dump(),
        "sampler": body.sampler.model_dump(),
        "pruner": body.pruner.model_dump(),
        "seeds": body.seeds,
        "phase": "re-running" if reruns else "tuning",
        "optimizers": per_optimizer,
    }


def _studies(session: Session, benchmark_id: str) -> list[Study]:
    stmt = select(Study).where(Study.benchmark_id == benchmark_id).order_by(Study.created_at)
    return list(session.scalars(stmt))
