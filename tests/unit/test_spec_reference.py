"""docs/spec_reference.md is what scripts/spec_reference.py makes of the spec's models today."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location(
        "spec_reference", ROOT / "scripts/spec_reference.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_spec_reference_page_matches_the_models_that_validate_a_spec():
    page = (ROOT / "docs/spec_reference.md").read_text()
    assert page == _script().render(), "run `python scripts/spec_reference.py` and commit the page"


def test_spec_reference_lists_every_registered_rule_model_data_set_and_measure():
    from sam_core.spec.catalog import DATASETS, MEASURES, MODELS
    from sam_core.spec.optimizers import RULES

    page = _script().render()
    for key, table in (("optimizer", RULES), ("model", MODELS), ("data", DATASETS)):
        for name in table:
            assert f"`{key}.name: {name}`" in page
    for name in MEASURES:
        assert f"`measure.sharpness.name: {name}`" in page
    assert "| `rho` | number | `0.05` | >= 0, <= 100 | perturbation radius ρ |" in page
