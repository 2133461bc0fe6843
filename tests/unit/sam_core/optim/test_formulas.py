"""Each rule against its formula, computed independently with plain autograd.

The reference below works on TinyNet's six tensors as a function (`tiny_loss`),
writes every ε and ĝ of docs/optimizers.md with ordinary tensor code, and applies
SGD (momentum, weight decay) or AdamW by hand. Everything runs in float64, so
rule and reference agree to rounding: tolerances are `float_tolerance` of the
number of roundings that separate them (steps × parameters).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F

from sam_core.optim import create_optimizer
from tests.tolerance import float_tolerance
from tests.unit.sam_core.optim.nets import TinyNet, batches, closure, tiny_loss

EPS = 1e-12
NORM_INDEX = (2, 3)  # TinyNet's LayerNorm γ, β
BIAS_INDEX = (1, 3, 5)
SGD = {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 0.01}
NESTEROV = {**SGD, "nesterov": True}
ADAMW = {"name": "adamw", "lr": 0.01, "weight_decay": 0.01}
TINY_PARAMS = 48  # TinyNet: 3·5 + 5 + 5 + 5 + 5·3 + 3


@pytest.fixture(autouse=True)
def float64() -> Iterator[None]:
    """Models, batches and references in float64 (autouse: before `tiny` is built)."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


def assert_trajectory_close(got, want, steps):
    """Equal to rounding: `steps` updates of every parameter, relative to the largest weight."""
    tol = float_tolerance(ops=steps * TINY_PARAMS)
    scale = max(float(t.abs().max()) for t in want)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol * scale)


def grad(w, x, y):
    ws = [t.detach().requires_grad_() for t in w]
    return list(torch.autograd.grad(tiny_loss(ws, x, y), ws))


def norm(ts):
    return torch.cat([t.flatten() for t in ts]).norm()


def dot(a, b):
    return sum((u * v).sum() for u, v in zip(a, b, strict=True))


def add(a, b, scale=1.0):
    return [u + scale * v for u, v in zip(a, b, strict=True)]


def per_example(w, x, y):
    h = F.layer_norm(F.linear(x, w[0], w[1]), (5,), w[2], w[3])
    return F.cross_entropy(F.linear(torch.tanh(h), w[4], w[5]), y, reduction="none")


class HandSgd:
    def __init__(self, lr, momentum, weight_decay, nesterov=False, **_):
        self.lr, self.mu, self.wd, self.nesterov, self.buf = (
            lr,
            momentum,
            weight_decay,
            nesterov,
            None,
        )

    def step(self, w, g):
        d = add(g, w, self.wd)
        self.buf = d if self.buf is None else add([self.mu * b for b in self.buf], d)
        direction = add(d, self.buf, self.mu) if self.nesterov else self.buf
        return add(w, direction, -self.lr)


class HandAdamW:
    def __init__(self, lr, weight_decay, **_):
        self.lr, self.wd, self.t = lr, weight_decay, 0
        self.b1, self.b2, self.eps = 0.9, 0.999, 1e-8
        self.m = self.v = None

    def step(self, w, g):
        self.t += 1
        zeros = [torch.zeros_like(t) for t in g]
        m, v = self.m or zeros, self.v or zeros
        self.m = [self.b1 * a + (1 - self.b1) * b for a, b in zip(m, g, strict=True)]
        self.v = [self.b2 * a + (1 - self.b2) * b * b for a, b in zip(v, g, strict=True)]
        out = []
        for wi, mi, vi in zip(w, self.m, self.v, strict=True):
            m_hat, v_hat = mi / (1 - self.b1**self.t), vi / (1 - self.b2**self.t)
            out.append(wi * (1 - self.lr * self.wd) - self.lr * m_hat / (v_hat.sqrt() + self.eps))
        return out


# ---- the rules, by hand: each returns ĝ for one step ---------------------------------------


def sam_eps(g, rho):
    n = norm(g)
    return [rho * t / (n + EPS) for t in g]


def at(w, eps, x, y):
    return grad(add(w, eps), x, y)


def ref_sgd(w, g, x, y, hp, state, t):
    return g


def ref_sam(w, g, x, y, hp, state, t):
    return at(w, sam_eps(g, hp["rho"]), x, y)


def ref_usam(w, g, x, y, hp, state, t):
    return at(w, [hp["rho"] * t_ for t_ in g], x, y)


def ref_unified_sam(w, g, x, y, hp, state, t):
    lam = {"constant": hp.get("lam", 0.5), "one_minus_inv_t": 1 - 1 / t, "inv_t": 1 / t}[
        hp.get("lam_schedule", "constant")
    ]
    factor = hp["rho"] * (1 - lam + lam / (norm(g) + EPS))
    return at(w, [factor * t_ for t_ in g], x, y)


def ref_asam(w, g, x, y, hp, state, t):
    eta, biases = hp.get("eta", 0.01), hp.get("scale_biases", True)
    T = [wi.abs() + eta if biases or i not in BIAS_INDEX else torch.ones_like(wi)
         for i, wi in enumerate(w)]  # fmt: skip
    n = norm([ti * gi for ti, gi in zip(T, g, strict=True)])
    return at(w, [hp["rho"] * ti * ti * gi / (n + EPS) for ti, gi in zip(T, g, strict=True)], x, y)


def ref_msam(w, g, x, y, hp, state, t):
    m, total = hp["m"], [torch.zeros_like(wi) for wi in w]
    for start in range(0, len(x), m):
        xc, yc = x[start : start + m], y[start : start + m]
        gc = at(w, sam_eps(grad(w, xc, yc), hp["rho"]), xc, yc)
        total = add(total, gc, len(xc) / len(x))
    return total


def ref_vasso(w, g, x, y, hp, state, t):
    theta = hp.get("theta", 0.9)
    state["d"] = g if "d" not in state else add([(1 - theta) * d for d in state["d"]], g, theta)
    return at(w, sam_eps(state["d"], hp["rho"]), x, y)


def ref_rsam(w, g, x, y, hp, state, t):
    gen = state.setdefault("gen", torch.Generator().manual_seed(0))
    delta = [torch.empty_like(wi).normal_(0.0, hp["sigma"], generator=gen) for wi in w]
    g_smooth = at(w, delta, x, y)
    return at(w, add(delta, sam_eps(g_smooth, hp["rho"])), x, y)


def ref_gsam(w, g, x, y, hp, state, t):
    gp = ref_sam(w, g, x, y, hp, state, t)
    c = dot(g, gp) / (norm(gp) + EPS) ** 2
    g_perp = add(g, gp, -c)
    return add(gp, g_perp, -hp["alpha"])


def ref_fsam(w, g, x, y, hp, state, t):
    if "m" not in state:
        state["m"], d = g, g
    else:
        state["m"] = add([hp["beta"] * m for m in state["m"]], g, 1 - hp["beta"])
        d = add(g, state["m"], -hp["sigma"])
    return at(w, sam_eps(d, hp["rho"]), x, y)


def ref_sam_on(w, g, x, y, hp, state, t):
    eps = [torch.zeros_like(wi) for wi in w]
    n = norm([g[i] for i in NORM_INDEX])
    for i in NORM_INDEX:
        eps[i] = hp["rho"] * g[i] / (n + EPS)
    return at(w, eps, x, y)


def ref_looksam(w, g, x, y, hp, state, t):
    if (t - 1) % hp["k"] == 0:
        gp = ref_sam(w, g, x, y, hp, state, t)
        state["g_v"] = add(gp, g, -dot(gp, g) / (norm(g) + EPS) ** 2)
        return gp
    return add(g, state["g_v"], hp["alpha"] * norm(g) / (norm(state["g_v"]) + EPS))


def ref_esam(w, g, x, y, hp, state, t):
    gen = state.setdefault("gen", torch.Generator().manual_seed(0))
    chosen = (torch.rand(len(w), generator=gen) < hp["beta"]).tolist()
    n = norm([gi for gi, c in zip(g, chosen, strict=True) if c])
    scale = hp["rho"] / hp["beta"]
    eps = [scale * gi / (n + EPS) if c else torch.zeros_like(gi)
           for gi, c in zip(g, chosen, strict=True)]  # fmt: skip
    moved = add(w, eps)
    rise = per_example(moved, x, y) - per_example(w, x, y)
    keep = torch.topk(rise, math.ceil(hp["gamma"] * len(x))).indices
    return grad(moved, x[keep], y[keep])


def ref_gcsam(w, g, x, y, hp, state, t):
    n = norm(g)
    centred = [gi - gi.mean(dim=tuple(range(1, gi.dim())), keepdim=True) if gi.dim() > 1 else gi
               for gi in g]  # fmt: skip
    return at(w, [hp["rho"] * c / (n + EPS) for c in centred], x, y)


REFERENCES = {name[4:]: fn for name, fn in globals().items() if name.startswith("ref_")}

CASES = [
    ("sam", {"rho": 0.3}, SGD),
    ("sam", {"rho": 0.3}, ADAMW),
    ("sam", {"rho": 0.3}, NESTEROV),
    ("usam", {"rho": 0.3}, SGD),
    ("unified_sam", {"rho": 0.3, "lam": 0.5}, SGD),
    ("unified_sam", {"rho": 0.3, "lam_schedule": "one_minus_inv_t"}, SGD),
    ("unified_sam", {"rho": 0.3, "lam_schedule": "inv_t"}, SGD),
    ("asam", {"rho": 0.5, "eta": 0.01}, SGD),
    ("asam", {"rho": 0.5, "eta": 0.01, "scale_biases": False}, SGD),
    ("msam", {"rho": 0.3, "m": 3}, SGD),
    ("vasso", {"rho": 0.3, "theta": 0.4}, SGD),
    ("rsam", {"rho": 0.3, "sigma": 0.05}, SGD),
    ("gsam", {"rho": 0.3, "alpha": 0.4}, SGD),
    ("gsam", {"rho": 0.3, "alpha": 0.4}, ADAMW),
    ("fsam", {"rho": 0.3, "sigma": 0.5, "beta": 0.6}, SGD),
    ("sam_on", {"rho": 0.5}, SGD),
    ("looksam", {"rho": 0.3, "k": 2, "alpha": 0.7}, SGD),
    ("looksam", {"rho": 0.3, "k": 2, "alpha": 0.7}, ADAMW),
    ("esam", {"rho": 0.3, "beta": 0.6, "gamma": 0.5}, SGD),
    ("gcsam", {"rho": 0.3}, SGD),
]


def by_hand(name, hp, base, w0, data):
    w, state = [t.detach().clone() for t in w0], {}
    opt = (HandSgd if base["name"] == "sgd" else HandAdamW)(**base)
    for t, (x, y) in enumerate(data, start=1):
        g = grad(w, x, y)
        w = opt.step(w, REFERENCES[name](w, g, x, y, hp, state, t))
    return w


@pytest.mark.parametrize(
    ("name", "hp", "base"), CASES, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(CASES)]
)
def test_rule_matches_its_formula_by_hand(name, hp, base, tiny):
    data = batches(5, 10, (3,), seed=1)
    w0 = [p.detach().clone() for p in tiny.parameters()]
    expected = by_hand(name, hp, base, w0, data)
    opt = create_optimizer(name, tiny, base=base, seed=0, **hp)
    for x, y in data:
        opt.step(closure(tiny, x, y))
    assert_trajectory_close([p.detach() for p in tiny.parameters()], expected, len(data))
    # The rule moved the weights off the base optimizer's path by far more than rounding.
    base_only = by_hand("sgd", {}, base, w0, data)
    assert max(float((a - b).abs().max()) for a, b in zip(expected, base_only, strict=True)) > 1e-4


def _trajectory(name, tiny, data, **hp):
    opt = create_optimizer(name, tiny, base=SGD, **hp)
    for x, y in data:
        opt.step(closure(tiny, x, y))
    return [p.detach().clone() for p in tiny.parameters()]


@pytest.mark.parametrize(("lam", "twin"), [(1.0, "sam"), (0.0, "usam")])
def test_unified_sam_at_the_ends_of_lambda_is_sam_or_usam(lam, twin):
    data = batches(4, 10, (3,), seed=2)
    torch.manual_seed(0)
    a = _trajectory("unified_sam", TinyNet(), data, rho=0.3, lam=lam)
    torch.manual_seed(0)
    b = _trajectory(twin, TinyNet(), data, rho=0.3)
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))


def test_gsam_with_alpha_zero_is_sam():
    data = batches(3, 10, (3,), seed=3)
    torch.manual_seed(0)
    a = _trajectory("gsam", TinyNet(), data, rho=0.3, alpha=0.0)
    torch.manual_seed(0)
    b = _trajectory("sam", TinyNet(), data, rho=0.3)
    assert_trajectory_close(a, b, len(data))


def test_looksam_keeps_g_v_orthogonal_to_g_globally_not_per_tensor(tiny):
    ((x, y),) = batches(1, 10, (3,), seed=4)
    w = [p.detach().clone() for p in tiny.parameters()]
    g = grad(w, x, y)
    g_p = at(w, sam_eps(g, 0.3), x, y)
    opt = create_optimizer("looksam", tiny, base=SGD, rho=0.3, k=2)
    opt.step(closure(tiny, x, y))
    g_v = opt.buffers["g_v"]
    # ⟨g_v, g⟩ is a difference of terms of size ‖g_p‖‖g‖: rounding leaves ~P·u of that, so
    # relative to ‖g_v‖‖g‖ the condition is ‖g_p‖/‖g_v‖. The rule's (‖g‖ + EPS)² in the
    # projection leaves a further 2·EPS/‖g‖ of the same terms.
    condition = float(norm(g_p) / norm(g_v))
    bound = float_tolerance(ops=TINY_PARAMS, condition=condition)
    bound += 2 * EPS / float(norm(g)) * condition
    assert abs(float(dot(g_v, g))) <= bound * float(norm(g_v) * norm(g))
    per_tensor = [abs(float((a * b).sum())) for a, b in zip(g_v, g, strict=True)]
    assert max(per_tensor) > 1e-4


def test_looksam_takes_one_pass_between_refreshes(tiny):
    opt = create_optimizer("looksam", tiny, k=2)
    evals = []
    for x, y in batches(4, 10, (3,)):
        opt.step(closure(tiny, x, y))
        evals.append(opt.last_grad_evals)
    assert evals == [2.0, 1.0, 2.0, 1.0]


def test_esam_runs_pass_two_on_the_sharpest_fraction(tiny):
    seen = []
    tiny.register_forward_pre_hook(lambda module, args: seen.append(len(args[0])))
    opt = create_optimizer("esam", tiny, gamma=0.3, seed=0)
    ((x, y),) = batches(1, 10, (3,))
    opt.step(closure(tiny, x, y))
    assert seen == [10, 10, 3]  # pass 1, the no-grad ranking, pass 2 on ⌈0.3·10⌉
    assert opt.last_grad_evals == pytest.approx(1.3, rel=float_tolerance(ops=2))


@pytest.mark.parametrize("name", ["esam", "msam"])
def test_rules_that_split_the_batch_refuse_a_plain_closure(name, tiny):
    ((x, y),) = batches(1, 10, (3,))
    opt = create_optimizer(name, tiny)

    def plain():
        loss = F.cross_entropy(tiny(x), y)
        loss.backward()
        return loss

    with pytest.raises(TypeError, match="BatchClosure"):
        opt.step(plain)


def _epsilon(opt, model, x, y):
    before = [p.detach().clone() for p in model.parameters()]
    F.cross_entropy(model(x), y).backward()
    opt.first_step()
    return [p.detach() - b for p, b in zip(model.parameters(), before, strict=True)]


def test_sam_on_perturbs_only_normalization_parameters(tiny):
    ((x, y),) = batches(1, 10, (3,))
    g_norm = float(norm([grad(list(tiny.parameters()), x, y)[i] for i in NORM_INDEX]))
    eps = _epsilon(create_optimizer("sam_on", tiny, rho=0.5), tiny, x, y)
    for i, e in enumerate(eps):
        assert (e.abs().max() > 0) == (i in NORM_INDEX)
    # ‖ε‖ = ρ‖g‖/(‖g‖ + EPS): rounding of a norm, plus EPS/‖g‖ from the formula itself.
    rel = float_tolerance(ops=TINY_PARAMS) + EPS / g_norm
    assert float(norm([eps[i] for i in NORM_INDEX])) == pytest.approx(0.5, rel=rel)


@pytest.mark.parametrize(("name", "hp"), [("sam_on", {}), ("asam", {"scale_biases": False})])
def test_rules_that_need_layer_types_refuse_bare_parameters(name, hp, tiny):
    with pytest.raises(ValueError, match="needs the model"):
        create_optimizer(name, tiny.parameters(), **hp)


def test_gcsam_centralizes_matrices_only_and_divides_by_the_raw_norm(tiny):
    ((x, y),) = batches(1, 10, (3,))
    g = grad(list(tiny.parameters()), x, y)
    eps = _epsilon(create_optimizer("gcsam", tiny, rho=0.3), tiny, x, y)
    # w + ε − w rounds at the size of w: the absolute error scales with the largest weight.
    tol = float_tolerance(ops=TINY_PARAMS) * max(
        float(w.detach().abs().max()) for w in tiny.parameters()
    )
    for i in BIAS_INDEX:  # 1-D tensors keep g's direction and the raw-norm scale
        torch.testing.assert_close(eps[i], 0.3 * g[i] / (norm(g) + EPS), rtol=0, atol=tol)
    for i in (0, 4):
        torch.testing.assert_close(
            eps[i].mean(dim=1), torch.zeros(eps[i].shape[0]), atol=tol, rtol=0
        )
    assert float(norm(eps)) < 0.3


def test_rho_follows_the_learning_rate_when_asked(tiny):
    opt = create_optimizer("sam", tiny, rho=0.2, rho_schedule="lr")
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    x, y = batches(1, 10, (3,))[0]
    opt.step(closure(tiny, x, y))
    scheduler.step()
    g_norm = float(norm(grad(list(tiny.parameters()), x, y)))
    eps = _epsilon(opt, tiny, x, y)
    # w + ε − w rounds at the size of w; the formula's ‖g‖ + EPS leaves EPS/‖g‖ more.
    tol = float_tolerance(ops=TINY_PARAMS) * max(
        float(w.detach().abs().max()) for w in tiny.parameters()
    )
    assert float(norm(eps)) == pytest.approx(0.1, rel=EPS / g_norm, abs=tol)
    assert opt.param_groups[0]["rho"] == pytest.approx(0.1, rel=float_tolerance())


@pytest.mark.parametrize("name", ["rsam", "looksam", "esam", "msam"])
def test_rules_with_their_own_passes_refuse_manual_two_pass(name, tiny):
    with pytest.raises(TypeError, match="step\\(closure\\)"):
        create_optimizer(name, tiny).first_step()


def test_step_without_closure_says_what_it_needs(tiny):
    with pytest.raises(ValueError, match="needs step\\(closure\\)"):
        create_optimizer("sam", tiny).step()
