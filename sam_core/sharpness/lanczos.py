"""Krylov eigen-solvers on a symmetric operator given as v ↦ Hv on flat vectors.

`lanczos` builds the tridiagonal T_m = Qᵀ H Q with full reorthogonalization
(without it, lost orthogonality makes ghost copies of converged eigenvalues:
Paige 1976; hessian-eigenthings reorthogonalizes by default). Ritz values are
the eigenvalues of T_m; the residual of the Ritz pair (θ_i, Q s_i) is
|β_{m+1} s_{m,i}| (Golub & Van Loan §10.1). `power_iteration` is PyHessian's:
it converges to the eigenvalue of largest magnitude.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

MatVec = Callable[[Tensor], Tensor]
_TINY = 1e-12


@dataclass
class Ritz:
    """Ritz values (descending), vectors (columns, when kept) and quadrature weights."""

    values: Tensor
    vectors: Tensor | None
    weights: Tensor
    residuals: Tensor
    iterations: int
    converged: bool
    relative_change: float


def lanczos(
    matvec: MatVec,
    start: Tensor,
    max_iter: int,
    *,
    top_k: int = 1,
    tol: float | None = None,
    keep_vectors: bool = False,
    vectors_matter: bool = False,
) -> Ritz:
    """Runs up to ``max_iter`` Lanczos steps from ``start``.

    With ``tol``, stops once each of the ``top_k`` algebraically largest Ritz
    values has eigenvalue error bound min(r, r²/gap) ≤ tol·|θ|, r its residual
    and gap its distance to the nearest other Ritz value (Parlett 1998, §11.7:
    r bounds the error always, r²/gap once the Ritz gap is the true one).
    ``vectors_matter`` stops on r ≤ tol·|θ| alone, which also bounds the
    eigenvector's error (sin ∠ ≤ r/gap). An
    invariant subspace (β = 0) ends the run exactly: its Ritz values are
    eigenvalues.
    """
    dim = start.numel()
    steps = min(max_iter, dim)
    basis = torch.empty(steps, dim, dtype=start.dtype, device=start.device)
    basis[0] = start / start.norm()
    alphas: list[float] = []
    betas: list[float] = []
    previous: Tensor | None = None
    converged, change = False, float("inf")
    for j in range(steps):
        w = matvec(basis[j])
        alpha = float(w @ basis[j])
        alphas.append(alpha)
        # Two passes of classical Gram–Schmidt against the whole basis ("twice is enough").
        for _ in range(2):
            w = w - basis[: j + 1].T @ (basis[: j + 1] @ w)
        beta = float(w.norm())
        scale = max([abs(a) for a in alphas] + betas + [_TINY])
        if beta <= 1e-10 * scale:
            converged = True
            break
        if tol is not None and j + 1 >= top_k:
            ritz = _ritz(alphas, betas, beta, basis[: j + 1], False)
            top = ritz.values[:top_k]
            if previous is not None:
                change = float(((top - previous).abs() / previous.abs().clamp_min(_TINY)).max())
            previous = top
            bounds = ritz.residuals[:top_k] if vectors_matter else _error_bounds(ritz, top_k)
            if bool((bounds <= tol * top.abs().clamp_min(_TINY)).all()):
                converged = True
                break
        if j + 1 < steps:
            betas.append(beta)
            basis[j + 1] = w / beta
    m = len(alphas)
    ritz = _ritz(alphas, betas[: m - 1], beta, basis[:m], keep_vectors)
    ritz.iterations, ritz.relative_change = m, change
    ritz.converged = converged or m == dim
    return ritz


def _error_bounds(ritz: Ritz, top_k: int) -> Tensor:
    """min(r_i, r_i²/δ_i) for the top_k Ritz values (r_i alone while there is one).

    δ_i, the distance from θ_i to the rest of the spectrum, is bounded below by
    its distance to every other Ritz interval [θ_j − r_j, θ_j + r_j].
    """
    values, residuals = ritz.values, ritz.residuals
    if len(values) < 2:
        return residuals[:top_k]
    bounds = []
    for i in range(min(top_k, len(values))):
        others = torch.cat([torch.arange(i), torch.arange(i + 1, len(values))])
        gap = float(((values[others] - values[i]).abs() - residuals[others]).min())
        r = residuals[i]
        bounds.append(torch.minimum(r, r**2 / gap) if gap > r else r)
    return torch.stack(bounds)


def _tridiagonal_eigh(alphas: list[float], betas: list[float]) -> tuple[Tensor, Tensor]:
    t = torch.diag(torch.tensor(alphas, dtype=torch.float64))
    if betas:
        off = torch.tensor(betas, dtype=torch.float64)
        t = t + torch.diag(off, 1) + torch.diag(off, -1)
    return torch.linalg.eigh(t)


def _ritz(
    alphas: list[float], betas: list[float], beta_next: float, basis: Tensor, keep: bool
) -> Ritz:
    values, vectors = _tridiagonal_eigh(alphas, betas)
    order = torch.argsort(values, descending=True)
    values, vectors = values[order], vectors[:, order]
    ritz_vectors = basis.T @ vectors.to(basis.dtype).to(basis.device) if keep else None
    return Ritz(
        values=values,
        vectors=ritz_vectors,
        weights=vectors[0] ** 2,
        residuals=(beta_next * vectors[-1]).abs(),
        iterations=len(alphas),
        converged=False,
        relative_change=float("inf"),
    )


@dataclass
class PowerResult:
    values: list[float]
    vectors: list[Tensor]
    iterations: list[int]
    relative_changes: list[float]
    converged: bool


def power_iteration(
    matvec: MatVec,
    starts: Callable[[], Tensor],
    max_iter: int,
    *,
    top_k: int = 1,
    tol: float = 1e-3,
) -> PowerResult:
    """The ``top_k`` eigenpairs of largest |λ|, each deflated against those found before.

    Stops each pair when |λ_t − λ_{t−1}| / (|λ_{t−1}| + 1e-6) < tol, as PyHessian does.
    """
    found = PowerResult([], [], [], [], True)
    for _ in range(top_k):
        v = _orthogonalize(starts(), found.vectors)
        v = v / v.norm()
        value, change, done, it = 0.0, float("inf"), False, 0
        for it in range(1, max_iter + 1):
            hv = _orthogonalize(matvec(v), found.vectors)
            new_value = float(hv @ v)
            if it > 1:
                change = abs(new_value - value) / (abs(value) + 1e-6)
            value = new_value
            norm = hv.norm()
            if float(norm) <= _TINY:
                done = True
                break
            v = hv / norm
            if change < tol:
                done = True
                break
        found.values.append(value)
        found.vectors.append(v)
        found.iterations.append(it)
        found.relative_changes.append(change)
        found.converged = found.converged and done
    return found


def _orthogonalize(v: Tensor, against: list[Tensor]) -> Tensor:
    for u in against:
        v = v - (v @ u) * u
    return v
