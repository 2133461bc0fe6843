"""Loss, accuracy and the distance to a synthetic task's noiseless teacher.

The training loop logs ``train_loss``/``test_loss``/``train_acc``/``test_acc``
from `evaluate` (on unaugmented data, in eval mode) and the gaps from their
differences; `prediction_error` is the ``prediction_error`` measure.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from sam_core.sharpness.objective import Batches, as_batch_source, measuring
from sam_core.sharpness.params import validate_params
from sam_core.sharpness.result import CostMeter, MeasureResult
from sam_core.spec.catalog import NoMeasureParams

LossFn = Callable[..., Tensor]


def evaluate(model: nn.Module, loss_fn: LossFn, batches: Batches) -> tuple[float, float | None]:
    """(mean loss over all examples, accuracy) in eval mode; the model's mode is restored.

    Accuracy is computed when the targets are integer class labels (argmax of
    the outputs against them) and is ``None`` otherwise (regression).
    """
    total, correct, count, labelled = 0.0, 0, 0, True
    with measuring(model), torch.no_grad():
        for x, y in as_batch_source(batches)():
            out = model(x)
            total += float(loss_fn(out, y)) * x.shape[0]
            count += x.shape[0]
            labelled = labelled and not torch.is_floating_point(y) and out.dim() == 2
            if labelled:
                correct += int((out.argmax(dim=1) == y).sum())
    if count == 0:
        raise ValueError("batches is empty: there are no examples to evaluate on")
    return total / count, (correct / count if labelled else None)


def prediction_error(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Batches,
    *,
    seed: int = 0,
    teacher: Callable[[Tensor], Tensor] | None = None,
) -> MeasureResult:
    """Mean squared distance between the model and the noiseless teacher, per output entry.

    ``batches`` are ``(x, y)`` pairs of fresh inputs (the test inputs of a
    synthetic task). With ``teacher`` the target is ``teacher(x)`` and ``y`` is
    ignored; without it ``y`` must already be the noiseless ``teacher(x)``.
    The mean runs over examples and output entries, as ``nn.MSELoss`` does, so
    a test MSE under label noise σ is ≈ this value + σ². ``loss_fn`` and
    ``seed`` are unused (kept for the common signature).
    """
    validate_params("prediction_error", NoMeasureParams)
    meter, total, count = CostMeter(), 0.0, 0
    with measuring(model), torch.no_grad():
        for x, y in as_batch_source(batches)():
            target = teacher(x) if teacher is not None else y
            out = model(x)
            if target.numel() != out.numel():
                raise ValueError(
                    f"prediction_error needs teacher targets shaped like the outputs "
                    f"{tuple(out.shape)}, got {tuple(target.shape)} (a classification set?)"
                )
            target = target.reshape(out.shape).to(out.dtype)
            total += float(((out - target) ** 2).sum())
            count += out.numel()
    if count == 0:
        raise ValueError("batches is empty: there are no examples to measure on")
    meter.forwards = 1
    return MeasureResult(total / count, meter.freeze(), None, {"entries": count})


def interpolation_trace(model: nn.Module, inputs: Tensor) -> float:
    """(2/n) Σᵢ ‖∇_θ f(xᵢ)‖²: the Hessian trace of L = (1/n) Σᵢ (f(xᵢ) − yᵢ)² at a minimum
    that interpolates (every f(xᵢ) = yᵢ), where the residual term of the Hessian vanishes
    (Wen, Li & Ma 2023, Lemma 4.1; MSE without ½).

    ``inputs``: the n training inputs, shape (n, ...); f must have one output. The
    gradient is over the parameters that require one, one example at a time, summed in
    float64. Away from interpolation this is the trace of the Gauss–Newton part only.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    total = 0.0
    for x in inputs:
        grads = torch.autograd.grad(model(x.unsqueeze(0)).sum(), params)
        total += float(sum(g.double().pow(2).sum() for g in grads))
    return 2.0 * total / len(inputs)
