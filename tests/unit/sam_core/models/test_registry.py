"""Every catalog model builds, runs on its inputs, and describes itself."""

from __future__ import annotations

import pytest
import torch

from sam_core.models import build_model, describe_models, list_models
from sam_core.spec import JobSpec
from sam_core.spec.catalog import MODELS

FLAT = (16,)
DIGITS = (64,)
CIFAR = (3, 32, 32)
IMAGE_MODELS = {"cnn", "resnet18", "wrn16"}
# Narrow versions keep forward passes quick; the full sizes are counted below.
NARROW = {"resnet18": {"width": 8}, "wrn16": {"widen_factor": 1}}


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_every_catalog_model_is_registered():
    assert list_models() == list(MODELS)


def test_describe_models_gives_schema_and_defaults_for_each():
    described = {d["name"]: d for d in describe_models()}
    assert set(described) == set(MODELS)
    assert described["mlp"]["defaults"]["hidden"] == [256, 256]
    assert "width" in described["resnet18"]["schema"]["properties"]


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("shape", [DIGITS, CIFAR, FLAT], ids=["digits", "cifar", "flat16"])
def test_forward_gives_one_row_of_outputs_per_example(name, shape):
    if name in IMAGE_MODELS and shape == FLAT:
        shape = (1, 4, 4)  # image models need images; 16 = 4×4 also reads as one
    outputs = 10
    if name == "wen_ma_li_toy":  # its inputs are the one-hot e₁, e₂ whatever the case
        shape, outputs = (2,), 1
    model = build_model({"name": name, **NARROW.get(name, {})}, shape, outputs)
    model.eval()
    assert model(torch.randn(3, *shape)).shape == (3, outputs)


def test_build_model_takes_the_spec_object():
    spec = JobSpec.model_validate(
        {
            "model": {"name": "mlp", "hidden": [8], "batchnorm": True},
            "data": {"name": "digits"},
            "optimizer": {"name": "sgd"},
        }
    )
    model = build_model(spec.model, (64,), 10)
    assert isinstance(model[2], torch.nn.BatchNorm1d)
    assert n_params(model) == 64 * 8 + 2 * 8 + 8 * 10 + 10


@pytest.mark.parametrize(
    ("spec", "shape", "outputs", "expected"),
    [
        ({"name": "resnet18"}, CIFAR, 10, 11_173_962),
        ({"name": "resnet18"}, CIFAR, 100, 11_220_132),
        ({"name": "wrn16", "widen_factor": 4}, CIFAR, 10, 2_748_890),
        ({"name": "wrn16", "widen_factor": 8}, CIFAR, 10, 10_961_370),
        ({"name": "linear"}, DIGITS, 10, 650),
        ({"name": "linear", "bias": False}, FLAT, 1, 16),
        ({"name": "random_features", "num_features": 32}, FLAT, 1, 33),
        ({"name": "one_hidden", "width": 8}, FLAT, 1, 16 * 8 + 8 + 8 + 1),
        ({"name": "two_layer_relu", "width": 8}, FLAT, 1, 16 * 8 + 8),
        ({"name": "two_layer_relu", "width": 8, "train_output_layer": False}, FLAT, 1, 16 * 8),
        ({"name": "mlp", "hidden": [32, 32]}, DIGITS, 10, 64 * 32 + 32 + 32 * 32 + 32 + 330),
        ({"name": "cnn", "channels": [4], "batchnorm": False}, DIGITS, 10, 9 * 4 + 4 + 50),
    ],
)
def test_parameter_counts(spec, shape, outputs, expected):
    assert n_params(build_model(spec, shape, outputs)) == expected


def test_weights_follow_the_global_seed():
    torch.manual_seed(3)
    first = build_model({"name": "cnn"}, DIGITS, 10).state_dict()
    torch.manual_seed(3)
    second = build_model({"name": "cnn"}, DIGITS, 10).state_dict()
    for key, value in first.items():
        assert torch.equal(value, second[key]), key


def test_random_features_are_fixed_by_feature_seed_not_global_seed():
    torch.manual_seed(0)
    a = build_model({"name": "random_features", "feature_seed": 5}, FLAT, 1)
    torch.manual_seed(1)
    b = build_model({"name": "random_features", "feature_seed": 5}, FLAT, 1)
    c = build_model({"name": "random_features", "feature_seed": 6}, FLAT, 1)
    assert torch.equal(a.omega, b.omega) and torch.equal(a.phase, b.phase)
    assert not torch.equal(a.omega, c.omega)
    assert {n for n, _ in a.named_parameters()} == {"head.weight", "head.bias"}


def test_random_features_approximate_the_rbf_kernel():
    model = build_model(
        {"name": "random_features", "num_features": 20_000, "bandwidth": 2.0}, FLAT, 1
    )
    x = torch.randn(6, 16) * 0.5
    phi = model.features(x)
    kernel = torch.exp(-torch.cdist(x, x).pow(2) / (2 * 2.0**2))
    assert torch.allclose(phi @ phi.T, kernel, atol=0.05)


def test_two_layer_relu_with_fixed_output_layer_keeps_plus_minus_one_over_width():
    model = build_model(
        {"name": "two_layer_relu", "width": 4, "train_output_layer": False}, FLAT, 1
    )
    assert torch.equal(model.output, torch.tensor([[0.25, -0.25, 0.25, -0.25]]))
    assert "output" in dict(model.named_buffers())
    x = torch.randn(5, 16)
    expected = torch.relu(x @ model.hidden.weight.T) @ model.output.T
    assert torch.allclose(model(x), expected)


def test_image_model_refuses_inputs_it_cannot_read_as_images():
    with pytest.raises(ValueError, match=r"cnn needs image inputs .* got input shape \(20,\)"):
        build_model({"name": "cnn"}, (20,), 2)


def test_unknown_model_and_bad_params_are_refused():
    with pytest.raises(ValueError, match="unknown model 'vgg'"):
        build_model({"name": "vgg"}, FLAT, 1)
    with pytest.raises(ValueError, match="width"):
        build_model({"name": "one_hidden", "width": 0}, FLAT, 1)
