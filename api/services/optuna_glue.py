"""Optuna behind a study row: storage, samplers, pruners, and ask / report / tell by number.

Optuna keeps its state in its own tables (`RDBStorage`) beside flatlab's, so a
restarted API carries on where the last one stopped: on PostgreSQL in the same
database, in the schema `optuna` (migration 0007 makes it; Optuna's table names,
`studies` and its own `alembic_version` among them, would collide with flatlab's in
one schema); embedded, in the SQLite file `flatlab.optuna.db` beside `flatlab.db`.

Each call loads the study afresh: nothing lives in memory between driver passes.
A sampler is seeded with (study seed, trials so far), so a pass that starts over
asks what an uninterrupted run would have asked.
"""

from __future__ import annotations

import logging
import math
import threading
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.engine import make_url

from flatlab import optuna_space as space
from flatlab.optuna_space import distribution
from sam_core.spec.study import StudyBody

optuna.logging.set_verbosity(optuna.logging.WARNING)
log = logging.getLogger(__name__)

_storages: dict[str, optuna.storages.RDBStorage] = {}
_lock = threading.Lock()
OPTUNA_SCHEMA = "optuna"


def storage_url(db_url: str) -> str:
    """Where Optuna's tables live for flatlab's database `db_url` (see the module doc)."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        path = url.database or ""
        stem = path[: -len(".db")] if path.endswith(".db") else path
        return url.set(database=f"{stem}.optuna.db").render_as_string(hide_password=False)
    if url.get_backend_name() == "postgresql":
        query = {**url.query, "options": f"-csearch_path={OPTUNA_SCHEMA}"}
        return url.set(query=query).render_as_string(hide_password=False)
    return db_url


def storage(db_url: str) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage for flatlab's database (created once per URL and process)."""
    with _lock:
        if db_url not in _storages:
            url = storage_url(db_url)
            kwargs = {"pool_pre_ping": True} if not url.startswith("sqlite") else {}
            _storages[db_url] = optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        return _storages[db_url]


def distributions(body: StudyBody) -> dict[str, BaseDistribution]:
    return {path: distribution(d.model_dump()) for path, d in body.search_space.items()}


def decode(body: StudyBody, params: dict[str, Any]) -> dict[str, Any]:
    """A trial's Optuna params as spec values (JSON-text choices decoded)."""
    return space.decode(_space(body), params)


def _space(body: StudyBody) -> dict[str, dict[str, Any]]:
    return {path: d.model_dump() for path, d in body.search_space.items()}


def sampler(body: StudyBody, n_trials: int) -> optuna.samplers.BaseSampler:
    spec = body.sampler
    seed = spec.seed
    if spec.name == "random":
        return optuna.samplers.RandomSampler(seed=seed * 100_003 + n_trials)
    if spec.name == "tpe":
        startup = spec.n_startup_trials if spec.n_startup_trials is not None else 5
        return optuna.samplers.TPESampler(seed=seed * 100_003 + n_trials, n_startup_trials=startup)
    if spec.name == "qmc":  # its sequence index lives in the storage: one seed throughout
        return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False)
    space = {path: list(_grid_values(d)) for path, d in distributions(body).items()}
    return optuna.samplers.GridSampler(space, seed=seed)


def _grid_values(dist: BaseDistribution) -> list[Any]:
    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    assert isinstance(dist, IntDistribution)
    return list(range(dist.low, dist.high + 1, dist.step))


def grid_size(body: StudyBody) -> int | None:
    """The number of grid points of a grid study, else None."""
    if body.sampler.name != "grid":
        return None
    return math.prod(len(_grid_values(d)) for d in distributions(body).values())


def pruner(body: StudyBody) -> optuna.pruners.BasePruner:
    spec = body.pruner
    if spec.name == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=spec.n_startup_trials, n_warmup_steps=spec.n_warmup_steps
        )
    if spec.name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=spec.min_resource,  # type: ignore[arg-type]  # "auto" is allowed
            reduction_factor=spec.reduction_factor,
        )
    return optuna.pruners.NopPruner()


def open_study(
    db_url: str, optuna_name: str, body: StudyBody, n_trials: int | None = None
) -> optuna.Study:
    """The study's Optuna study (created on first use): with the body's sampler seeded for
    asking trial `n_trials`, or, for reporting and telling, a plain random sampler (the
    grid sampler's `after_trial` calls `Study.stop`, which works only inside `optimize`)."""
    plain = n_trials is None
    return optuna.create_study(
        study_name=optuna_name,
        storage=storage(db_url),
        sampler=optuna.samplers.RandomSampler(seed=0) if plain else sampler(body, n_trials or 0),
        pruner=pruner(body),
        direction=body.objective.direction,
        load_if_exists=True,
    )


def ask(db_url: str, optuna_name: str, body: StudyBody) -> FrozenTrial:
    """Ask for one new trial; returns it frozen (its `number` and `params`)."""
    n_trials = len(trials(open_study(db_url, optuna_name, body)))
    study = open_study(db_url, optuna_name, body, n_trials)
    trial = study.ask(distributions(body))
    return study._storage.get_trial(trial._trial_id)


def trials(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False)


def report(study: optuna.Study, trial: FrozenTrial, step: int, value: float) -> bool:
    """Report the trial's intermediate value at `step`; whether the pruner would stop it now."""
    live = optuna.trial.Trial(study, trial._trial_id)
    live.report(value, step)
    return live.should_prune()


def tell(study: optuna.Study, trial: FrozenTrial, value: float | None, state: TrialState) -> None:
    """Finish a running trial (a trial already finished is left as it is: idempotent)."""
    current = study._storage.get_trial(trial._trial_id)
    if current.state != TrialState.RUNNING:
        return
    if state == TrialState.COMPLETE:
        study.tell(trial.number, value)
    else:
        study.tell(trial.number, state=state)


def best(study: optuna.Study) -> FrozenTrial | None:
    complete = [t for t in trials(study) if t.state == TrialState.COMPLETE]
    return study.best_trial if complete else None
