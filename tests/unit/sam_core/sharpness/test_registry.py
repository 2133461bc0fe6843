"""The measure registry covers the catalog, and each function takes its catalog parameters."""

from __future__ import annotations

import inspect

import pytest
import torch

from sam_core import sharpness
from sam_core.spec.catalog import MEASURES

from .conftest import Quadratic, mean_output, spd_matrix


def test_every_catalog_measure_has_a_function():
    assert set(sharpness.MEASURE_FUNCTIONS) == set(MEASURES)


@pytest.mark.parametrize("name", sorted(MEASURES))
def test_signature_defaults_are_the_catalog_defaults(name):
    signature = inspect.signature(sharpness.MEASURE_FUNCTIONS[name])
    assert list(signature.parameters)[:3] == ["model", "loss_fn", "batches"]
    assert signature.parameters["seed"].default == 0
    for field, info in MEASURES[name].params.model_fields.items():
        assert signature.parameters[field].default == info.default, field


@pytest.mark.parametrize(
    ("name", "param", "bad"),
    [
        ("hessian_top_eigenvalue", "method", "arnoldi"),
        ("hessian_top_eigenvalue", "top_k", 0),
        ("hessian_trace", "probes", 0),
        ("hessian_density", "iters", 1),
        ("worst_case_sharpness", "rho", -0.1),
        ("average_sharpness", "sigma", 0.0),
        ("adaptive_sharpness", "eta", -1.0),
        ("m_sharpness", "m", 0),
        ("loss_landscape_1d", "points", 2),
    ],
)
def test_bad_parameter_raises_value_error_naming_it(name, param, bad):
    model = Quadratic(spd_matrix([2.0, 1.0]))
    batches = [(torch.zeros(4, 1), torch.zeros(4))]
    with pytest.raises(ValueError, match=rf"{param}={bad!r}"):
        sharpness.compute(name, model, mean_output, batches, **{param: bad})


def test_unknown_parameter_is_rejected():
    model = Quadratic(spd_matrix([2.0, 1.0]))
    with pytest.raises(TypeError):
        sharpness.compute("hessian_trace", model, mean_output, [], probez=3)


def test_unknown_measure_is_a_value_error():
    with pytest.raises(ValueError, match="unknown measure 'sharpest'"):
        sharpness.compute("sharpest", Quadratic(spd_matrix([1.0])), mean_output, [])


def test_compute_dispatches_to_the_measure():
    model = Quadratic(spd_matrix([3.0, 1.0]), start=torch.tensor([1.0, 0.0], dtype=torch.float64))
    batches = [(torch.zeros(2, 1), torch.zeros(2))]
    direct = sharpness.ascent_sharpness(model, mean_output, batches, rho=0.1)
    routed = sharpness.compute("ascent_sharpness", model, mean_output, batches, rho=0.1)
    assert (routed.value, routed.extras) == (direct.value, direct.extras)
