"""Direction pieces the rules are built from, each on a list of tensors at once.

Every piece works in place on the list it is given (the pass-1 gradients,
which the engine no longer needs once ε is formed), so a step allocates
nothing parameter-sized beyond the engine's saved-weights buffer. The
``torch._foreach_*`` kernels launch one op per list, not one per tensor.
"""

from __future__ import annotations

import torch
from torch import Tensor

# Guards every division by a norm (docs/optimizers.md).
NORM_EPS = 1e-12


def global_norm(tensors: list[Tensor]) -> Tensor:
    """‖·‖₂ over all tensors as one flat vector, as a 0-dim tensor (no host sync)."""
    if not tensors:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(tensors)))


def global_dot(a: list[Tensor], b: list[Tensor]) -> Tensor:
    """⟨a, b⟩ over all tensors as one flat vector (not per tensor)."""
    dots = [torch.dot(x.reshape(-1), y.reshape(-1)) for x, y in zip(a, b, strict=True)]
    return torch.stack(dots).sum()


def scale_(tensors: list[Tensor], factor: Tensor | float | list[Tensor]) -> None:
    """tensors ← factor · tensors (one factor, or one tensor per tensor, elementwise)."""
    torch._foreach_mul_(tensors, factor)


def normalize_(tensors: list[Tensor], radius: float, norm: Tensor | None = None) -> Tensor:
    """tensors ← radius · tensors / (norm + 1e-12); norm defaults to their own ‖·‖.

    Returns the norm used, so a rule can reuse it.
    """
    norm = global_norm(tensors) if norm is None else norm
    scale_(tensors, radius / (norm + NORM_EPS))
    return norm


def scale_by_param_abs_(
    tensors: list[Tensor], params: list[Tensor], eta: float, scratch: list[Tensor]
) -> None:
    """tensors ← (|w| + η) ⊙ tensors: ASAM's T_w (Kwon et al. 2021, eq. 7), built in scratch."""
    torch._foreach_copy_(scratch, params)
    torch._foreach_abs_(scratch)
    torch._foreach_add_(scratch, eta)
    torch._foreach_mul_(tensors, scratch)


def centralize_(tensors: list[Tensor]) -> None:
    """Subtract from each tensor of rank > 1 its mean over every dim but the first.

    Gradient centralization (Yong et al. 2020), as GCSAM applies it to g;
    biases and other 1-D tensors are left as they are.
    """
    for t in tensors:
        if t.dim() > 1:
            t.sub_(t.mean(dim=tuple(range(1, t.dim())), keepdim=True))
