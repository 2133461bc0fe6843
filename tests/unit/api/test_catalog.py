"""The catalog lists every registry entry with its parameters' JSON schema; no torch."""

from __future__ import annotations

import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from sam_core.spec import DATASETS, MEASURES, MODELS, RULES


def test_every_rule_is_listed_with_its_schema_and_defaults(client: TestClient) -> None:
    body = client.get("/v1/optimizers").json()
    entries = {e["name"]: e for e in body["items"]}
    assert list(entries) == list(RULES)
    for name, info in RULES.items():
        entry = entries[name]
        assert (entry["title"], entry["reference"], entry["passes"]) == (
            info.title, info.reference, info.passes
        )  # fmt: skip
        assert set(entry["parameters"].get("properties", {})) == set(info.params.model_fields)
    assert entries["sam"]["parameters"]["properties"]["rho"]["default"] == 0.05
    assert body["base"]["properties"]["lr"]["default"] == 0.1


@pytest.mark.parametrize(
    ("path", "table"),
    [("/v1/models", MODELS), ("/v1/datasets", DATASETS), ("/v1/measures", MEASURES)],
)
def test_models_datasets_and_measures_list_their_registry(
    client: TestClient, path: str, table: dict[str, object]
) -> None:
    items = client.get(path).json()["items"]
    assert [e["name"] for e in items] == list(table)
    assert all(e["parameters"]["type"] == "object" for e in items)


def test_the_api_process_never_imports_torch() -> None:
    code = (
        "import sys, tempfile; from api.app import create_app; "
        "from flatlab.settings import Settings; "
        "from fastapi.testclient import TestClient; "
        "app = create_app(Settings(home=tempfile.mkdtemp(), _env_file=None)); "
        "c = TestClient(app).__enter__(); c.get('/v1/optimizers'); c.get('/openapi.json'); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_presets_list_every_preset_with_its_description_and_job_count(client: TestClient) -> None:
    from flatlab.presets import PRESETS

    items = client.get("/v1/presets").json()["items"]
    assert [e["name"] for e in items] == list(PRESETS)
    for entry in items:
        preset = PRESETS[entry["name"]]
        assert entry["description"] == preset.description != ""
        body = preset.body
        configs = len(body["axes"].get("config", [None])) if "config" in body["axes"] else None
        if configs is not None and len(body["axes"]) == 1:
            assert entry["jobs"] == configs * len(body["seeds"])
    xor = next(e for e in items if e["name"] == "wen_li_ma2023_bias")
    assert "width 500" in xor["description"] and "Scaled down in epochs" in xor["description"]
