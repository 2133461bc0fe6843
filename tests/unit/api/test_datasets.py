"""POST /v1/datasets and /v1/datasets/uploads: checked uploads, kept per team, usable by jobs."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from sam_core.data import load_task
from tests.unit.api.conftest import make_settings, new_key, spec


def npz_bytes(compressed: bool = False, **overrides: Any) -> bytes:
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.normal(size=(40, 8)).astype(np.float32),
        "y_train": rng.integers(0, 3, 40),
        "x_test": rng.normal(size=(10, 8)).astype(np.float32),
        "y_test": rng.integers(0, 3, 10),
    }
    arrays.update(overrides)
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


def upload(client: TestClient, data: bytes, filename: str = "mine.npz", **kw: Any):
    return client.post("/v1/datasets", files={"file": (filename, data)}, **kw)


def test_upload_is_checked_saved_by_id_and_listed(client: TestClient, app: FastAPI) -> None:
    response = upload(client, npz_bytes(), filename="../../etc/evil.npz")

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == "evil.npz"  # a label only
    assert (body["task"], body["num_outputs"], body["n_train"], body["n_test"]) == (
        "classification",
        3,
        40,
        10,
    )
    assert body["arrays"]["x_train"] == {"shape": [40, 8], "dtype": "float32"}
    assert body["data"] == {"name": "npz", "path": body["id"]}
    folder = app.state.settings.datasets_dir
    assert sorted(p.name for p in folder.iterdir()) == [f"{body['id']}.npz"]
    listed = client.get("/v1/datasets/uploads").json()["items"]
    assert [d["id"] for d in listed] == [body["id"]]
    assert client.get(f"/v1/datasets/uploads/{body['id']}").json() == body


def test_a_job_on_an_upload_resolves_for_the_worker(client: TestClient, app: FastAPI) -> None:
    dataset_id = upload(client, npz_bytes()).json()["id"]

    response = client.post("/v1/jobs", json=spec(data={"name": "npz", "path": dataset_id}))

    assert response.status_code == 202, response.text
    task = load_task(response.json()["spec"]["data"], app.state.settings.datasets_dir)
    assert (task.task, task.num_outputs, len(task.x_train)) == ("classification", 3, 40)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x_train": np.full((40, 8), np.nan, np.float32)}, "x_train contains NaN"),
        ({"y_test": np.array([np.inf] * 10)}, "y_test contains NaN or infinite"),
        ({"y_train": np.zeros(39, int)}, "x_train and y_train must have the same length"),
        ({"x_test": np.array(["a"] * 10)}, "x_test must be a numeric array"),
        ({"x_train": np.zeros((40, 1, 1, 1, 1, 2))}, "x_train has rank 6"),
        ({"y_train": np.array([object()] * 40, dtype=object)}, "y_train holds Python objects"),
    ],
)
def test_unfit_arrays_are_422_naming_the_array(client, arrays, message) -> None:
    response = upload(client, npz_bytes(**arrays))

    assert response.status_code == 422
    assert message in response.json()["detail"]
    assert response.json()["errors"][0]["loc"] == "file"


def test_missing_array_and_non_npz_are_422(client: TestClient) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, x_train=np.zeros((2, 2)))
    assert "missing key(s) y_train, x_test, y_test" in upload(client, buffer.getvalue()).text
    assert upload(client, b"not a zip").status_code == 422


def test_a_small_file_that_inflates_past_the_limit_is_refused(tmp_path) -> None:
    app = create_app(make_settings(tmp_path, max_upload_array_bytes=1_000_000))
    huge = np.zeros((2_000_000, 1), np.float32)  # 8 MB inflated, a few kB compressed
    with TestClient(app) as client:
        response = upload(client, npz_bytes(compressed=True, x_train=huge))
    assert response.status_code == 422
    assert "x_train would take 8000000 bytes in memory" in response.json()["detail"]


def test_upload_over_the_limit_is_413_declared_or_streamed(tmp_path) -> None:
    app = create_app(make_settings(tmp_path, max_upload_bytes=10_000))
    with TestClient(app) as client:
        declared = upload(client, b"x" * 200_000)
        boundary = "b0undary"
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.npz"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()

        def chunks():  # no Content-Length: the limit holds while streaming
            yield head
            for _ in range(100):
                yield b"x" * 4096
            yield f"\r\n--{boundary}--\r\n".encode()

        streamed = client.post(
            "/v1/datasets",
            content=chunks(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "payload_too_large"
    folder = app.state.settings.datasets_dir
    assert not folder.exists() or not any(folder.iterdir())


def test_wrong_content_type_is_415_and_missing_file_422(client: TestClient) -> None:
    assert client.post("/v1/datasets", json={"file": "x"}).status_code == 415
    response = client.post("/v1/datasets", files={"other": ("a.npz", npz_bytes())})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == "file"


def test_another_teams_upload_cannot_be_read_or_trained_on(auth_client, auth_app) -> None:
    mine, theirs = new_key(auth_app, "a"), new_key(auth_app, "b")
    as_a = {"Authorization": f"Bearer {mine}"}
    as_b = {"Authorization": f"Bearer {theirs}"}
    dataset_id = upload(auth_client, npz_bytes(), headers=as_a).json()["id"]

    assert auth_client.get(f"/v1/datasets/uploads/{dataset_id}", headers=as_b).status_code == 404
    assert auth_client.get("/v1/datasets/uploads", headers=as_b).json()["items"] == []
    for path in (dataset_id, f"{dataset_id}.npz", f"./{dataset_id}.npz", dataset_id.upper()):
        job = spec(data={"name": "npz", "path": path})
        response = auth_client.post("/v1/jobs", json=job, headers=as_b)
        assert response.status_code == 422, path
        assert response.json()["errors"][0]["loc"] == "data.path"
    bench = {"base": spec(data={"name": "npz", "path": dataset_id}), "seeds": [0]}
    assert auth_client.post("/v1/benchmarks", json=bench, headers=as_b).status_code == 422
    assert auth_client.post("/v1/benchmarks", json=bench, headers=as_a).status_code == 202


def test_a_read_only_key_cannot_upload(auth_client, auth_app) -> None:
    key = new_key(auth_app, "ro", read_only=True)
    response = upload(auth_client, npz_bytes(), headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 403


def test_zip_without_arrays_is_422(client: TestClient) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "hello")
    assert upload(client, buffer.getvalue()).status_code == 422
