"""The client against the real API (in process, no worker): what it sends is what the
API accepts, and what it returns is what the API said."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from flatlab.client import Benchmark, Client, Job, NotFound, SpecError, ValidationError
from tests.unit.api.conftest import spec


def test_submit_from_a_yaml_file_and_read_it_back(fl: Client, tmp_path: Path):
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(spec(name="from-yaml")))
    job = fl.submit(path)
    assert isinstance(job, Job) and job.status == "queued"
    again = fl.job(job.id)
    assert again.name == "from-yaml" and again.spec["optimizer"]["rho"] == 0.05


def test_a_pydantic_spec_is_sent_as_the_fields_it_was_given(fl: Client):
    from sam_core.spec import JobSpec

    job = fl.submit_job(JobSpec.model_validate(spec(name="typed")))
    assert fl.job(job.id).name == "typed"


def test_a_benchmark_body_is_told_apart_from_a_job(fl: Client):
    body = {"base": spec(), "axes": {"optimizer.rho": [0.01, 0.1]}, "seeds": [0, 1]}
    created = fl.submit(body)
    assert isinstance(created, Benchmark) and created.jobs == 4
    report = fl.benchmark(created.id)
    assert len(report.job_list) == 4 and not report.done


def test_the_same_idempotency_key_gives_the_same_job(fl: Client):
    first = fl.submit_job(spec(), idempotency_key="once")
    second = fl.submit_job(spec(), idempotency_key="once")
    assert first.id == second.id


def test_a_refused_spec_raises_a_validation_error_naming_the_field(fl: Client):
    with pytest.raises(ValidationError) as caught:
        fl.submit_job(spec(optimizer={"name": "sam", "rho": -1}))
    assert "optimizer.rho" in caught.value.fields
    assert caught.value.status == 422 and caught.value.problem["errors"]


def test_an_unreadable_spec_file_fails_before_any_request(fl: Client, tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {name: mlp\n")
    with pytest.raises(SpecError, match="line"):
        fl.submit(bad)
    with pytest.raises(SpecError, match="cannot read"):
        fl.submit(tmp_path / "missing.yaml")


def test_unknown_ids_raise_not_found(fl: Client):
    with pytest.raises(NotFound):
        fl.job("no-such-job")
    with pytest.raises(NotFound):
        fl.benchmark("no-such-benchmark")


def test_listing_follows_every_page_newest_first(fl: Client):
    made = [fl.submit_job(spec(name=f"n{i}", tags=["paged"])).id for i in range(5)]
    fl.submit_job(spec(name="other"))
    listed = [j.id for j in fl.jobs(tag="paged", page_size=2)]
    assert listed == made[::-1]
    assert [j.id for j in fl.jobs(tag="paged", page_size=2, limit=3)] == made[::-1][:3]


def test_cancel_a_queued_job(fl: Client):
    job = fl.submit_job(spec())
    assert fl.cancel(job.id).status == "cancelled"
    assert fl.job(job.id).done


def test_upload_a_data_set_and_train_on_its_data_block(fl: Client, tmp_path: Path):
    rng = np.random.default_rng(0)
    path = tmp_path / "toy.npz"
    np.savez(
        path,
        x_train=rng.normal(size=(32, 4)).astype(np.float32),
        y_train=rng.integers(0, 3, 32),
        x_test=rng.normal(size=(8, 4)).astype(np.float32),
        y_test=rng.integers(0, 3, 8),
    )
    dataset = fl.upload_dataset(path, name="toy")
    assert dataset.name == "toy" and dataset.data == {"name": "npz", "path": dataset.id}
    job = fl.submit_job(spec(data=dataset.data, model={"name": "mlp", "hidden": [8]}))
    assert fl.job(job.id).spec["data"]["path"] == dataset.id


def test_metrics_of_a_job_without_points_is_an_empty_frame_with_the_columns(fl: Client):
    job = fl.submit_job(spec())
    frame = fl.metrics(job.id)
    assert list(frame.columns) == ["name", "step", "epoch", "value", "time"] and frame.empty
    assert fl.artifacts(job.id) == []
