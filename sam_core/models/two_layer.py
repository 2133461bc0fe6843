"""The two-layer networks of Wen, Li & Ma (NeurIPS 2023): f(x) = W₂·N(σ(W₁x [+ b₁])).

Never an output bias. The first layer may carry a bias b₁; σ is ReLU or softplus;
N is the identity, Sim-BN or Sim-LN (the paper's §3 and Table 2):

- Sim-BN divides each hidden unit by its root-mean-square over the batch and
  multiplies it by a learned γ_j (no mean subtraction, no running statistics: the
  statistic is always that of the batch given, in training and evaluation alike);
- Sim-LN divides the hidden vector of each example by max(‖h‖, ε).

`project_()` rescales (W₁, b₁) to a fixed Frobenius norm; the trainer calls it after
every step when `project_norm` is set (the paper's projected Sim-LN variant).
"""

from __future__ import annotations

import torch
from torch import nn

from sam_core.models.layers import flat_size
from sam_core.models.registry import register


class TwoLayerNet(nn.Module):
    """Shapes: x (n, d) or any (n, ...) flattened to d; f(x) (n, out).

    `init="mean_field"` sets W₂ = ±1/width, alternating in sign along the hidden
    units (half positive), the same for every output row; `init="pytorch"` keeps
    nn.Linear's default initialization of both layers. With `train_output_layer`
    false, W₂ is a buffer and only the first layer (and γ) train.
    """

    def __init__(
        self,
        in_features: int,
        width: int,
        out: int,
        *,
        train_output_layer: bool = True,
        first_bias: bool = False,
        activation: str = "relu",
        norm: str = "none",
        init: str = "mean_field",
        eps: float = 1e-6,
        project_norm: float | None = None,
    ) -> None:
        super().__init__()
        if activation not in ("relu", "softplus"):
            raise ValueError(f"activation must be relu or softplus, got {activation!r}")
        if norm not in ("none", "sim_bn", "sim_ln"):
            raise ValueError(f"norm must be none, sim_bn or sim_ln, got {norm!r}")
        self.hidden = nn.Linear(in_features, width, bias=first_bias)
        self.activation, self.norm, self.eps = activation, norm, eps
        self.project_norm = project_norm
        if init == "mean_field":
            signs = torch.where(torch.arange(width) % 2 == 0, 1.0, -1.0)
            w2 = (signs / width).expand(out, width).clone()
        elif init == "pytorch":
            w2 = nn.Linear(width, out, bias=False).weight.detach().clone()
        else:
            raise ValueError(f"init must be mean_field or pytorch, got {init!r}")
        if train_output_layer:
            self.output = nn.Parameter(w2)
        else:
            self.register_buffer("output", w2)
        self.gamma = nn.Parameter(torch.ones(width)) if norm == "sim_bn" else None
        if project_norm is not None:
            self.project_()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """N(σ(W₁x + b₁)), shape (n, width)."""
        pre = self.hidden(x.flatten(1))
        h = torch.relu(pre) if self.activation == "relu" else nn.functional.softplus(pre)
        if self.gamma is not None:  # Sim-BN
            rms = h.pow(2).mean(0).sqrt().clamp_min(self.eps)
            return self.gamma * h / rms
        if self.norm == "sim_ln":
            return h / h.norm(dim=1, keepdim=True).clamp_min(self.eps)
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x) @ self.output.T

    def first_layer(self) -> list[torch.Tensor]:
        return [p for p in (self.hidden.weight, self.hidden.bias) if p is not None]

    @torch.no_grad()
    def project_(self) -> None:
        """Rescale (W₁, b₁) so that ‖(W₁, b₁)‖_F = project_norm; no-op when unset."""
        if self.project_norm is None:
            return
        tensors = self.first_layer()
        norm = torch.sqrt(sum(t.pow(2).sum() for t in tensors))  # type: ignore[arg-type]
        for t in tensors:
            t.mul_(self.project_norm / norm.clamp_min(1e-12))


@register("two_layer_relu")
def build_two_layer_relu(params, input_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
    return TwoLayerNet(
        flat_size(input_shape),
        params.width,
        num_outputs,
        train_output_layer=params.train_output_layer,
        first_bias=params.first_bias,
        activation=params.activation,
        norm=params.norm,
        init=params.init,
        eps=params.eps,
        project_norm=params.project_norm,
    )
