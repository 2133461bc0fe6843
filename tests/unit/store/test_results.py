"""Group aggregates of the results database: numerically stable on both backends."""

from __future__ import annotations

import math
import statistics
from fractions import Fraction

import pytest
from sqlalchemy.orm import Session, sessionmaker

from sam_core.spec import JobSpec
from store.db import session_scope
from store.jobs import create_job
from store.results import Field, ResultsQuery, query_groups
from tests.tolerance import float_tolerance

SPEC = {"model": {"name": "mlp"}, "data": {"name": "digits"}, "optimizer": {"name": "sam"}}


def _jobs(factory: sessionmaker[Session], values: dict[str, list[float]]) -> None:
    """One job per value, its label the group, the value as summary metric `x`."""
    with session_scope(factory) as session:
        for label, xs in values.items():
            for seed, x in enumerate(xs):
                spec = JobSpec.model_validate(
                    {
                        **SPEC,
                        "optimizer": {"name": "sam", "label": label},
                        "training": {"seed": seed},
                    }
                )
                job = create_job(session=session, team_id="t", spec=spec, max_attempts=1)
                job.summary = {"x": x}


def _exact_std(xs: list[float]) -> float:
    """The sample std of the float values as given, in exact rational arithmetic."""
    exact = [Fraction(x) for x in xs]
    mean = sum(exact) / len(exact)
    return math.sqrt(sum((x - mean) ** 2 for x in exact) / (len(exact) - 1))


def test_std_of_values_with_a_large_offset_keeps_its_digits(
    factory: sessionmaker[Session],
) -> None:
    # Five train times near a day with a spread of 5e-4 s (the textbook Σx² − n·m² gave 0.0),
    # and values near 1e9 with a unit spread, where it loses every digit too.
    near_a_day = [86400.12 + d for d in (-2e-4, -1e-4, 0.0, 1e-4, 3e-4)]
    near_1e9 = [1e9 + d for d in (0.0, 1.0, 2.0, 4.0)]
    _jobs(factory, {"day": near_a_day, "giga": near_1e9})
    query = ResultsQuery(team_id="t", group_by=(Field("column", ("label",)),), metrics=("x",))
    with session_scope(factory) as session:
        groups = {
            g["key"]["label"]: g["metrics"]["x"] for g in query_groups(session=session, query=query)
        }
    for label, xs in (("day", near_a_day), ("giga", near_1e9)):
        got, want = groups[label], _exact_std(xs)
        assert got["n"] == len(xs)
        assert got["mean"] == pytest.approx(statistics.fmean(xs), rel=float_tolerance(ops=len(xs)))
        # The two-pass error is ~n·eps relative to the mean's magnitude over the spread:
        # the deviations x − m carry |m|·eps each (Chan, Golub & LeVeque 1983).
        condition = max(abs(x) for x in xs) / want
        assert got["std"] == pytest.approx(
            want, rel=float_tolerance(ops=len(xs), condition=condition)
        )
        assert got["std"] > 0.5 * want  # the bug: 0.0


def test_groups_without_a_key_and_with_one_value(factory: sessionmaker[Session]) -> None:
    _jobs(factory, {"one": [0.25], "two": [0.5, 0.75]})
    with session_scope(factory) as session:
        (whole,) = query_groups(session=session, query=ResultsQuery(team_id="t", metrics=("x",)))
        by_label = query_groups(
            session=session,
            query=ResultsQuery(
                team_id="t", group_by=(Field("column", ("label",)),), metrics=("x",)
            ),
        )
    assert whole["jobs"] == 3 and whole["metrics"]["x"]["std"] == pytest.approx(
        0.25, rel=float_tolerance(ops=3)
    )
    one = next(g for g in by_label if g["key"]["label"] == "one")["metrics"]["x"]
    assert (one["n"], one["mean"], one["std"]) == (1, 0.25, None)
