"""Properties of Shampoo, SOAP and PSGD Kron that hold by construction (exact maths, no stored numbers)."""

from __future__ import annotations

import copy
import io
import math

import pytest
import torch

import optbench.optim as zoo
from optbench.optim.kron import Kron, ProbSchedule, factors, pack_triu
from optbench.optim.shampoo import Shampoo, merge_small_dims
from optbench.optim.soap import SOAP


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny matrices: intra-op threading only adds synchronisation cost on a shared 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


SHAPES = [(12, 8), (8,)]


def _params(dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter((torch.randn(s, generator=g) * 0.5).to(dtype)) for s in SHAPES]


def _grads(step: int, params, seed=100):
    g = torch.Generator().manual_seed(seed + step)
    return [(torch.randn(p.shape, generator=g) + 0.1 * p.detach().float()).to(p.dtype) for p in params]


def _run(opt, params, steps, start=0):
    for t in range(start, start + steps):
        for p, g in zip(params, _grads(t, params)):
            p.grad = g
        opt.step()


# --------------------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------------------
def test_registered_with_reference_and_alias():
    assert zoo.get("shampoo") is Shampoo and zoo.get("soap") is SOAP and zoo.get("kron") is Kron
    assert zoo.get("psgd-kron") is Kron
    for name in ("shampoo", "soap", "kron"):
        info = zoo.info(name)
        assert "@" in info.reference and not info.matrix_only
    # defaults read from the signature are the official ones
    assert zoo.info("shampoo").defaults()["epsilon"] == 1e-12
    assert zoo.info("soap").defaults()["betas"] == (0.95, 0.95)
    assert zoo.info("kron").defaults()["precond_lr"] == 0.1


# --------------------------------------------------------------------------------------------------------
# Shampoo
# --------------------------------------------------------------------------------------------------------
def test_shampoo_before_start_equals_adam():
    """Preconditioning never started + Adam grafting == torch.optim.Adam on the same gradient stream."""
    ours, theirs = _params(), _params()
    opt = Shampoo(ours, lr=1e-2, betas=(0.9, 0.999), grafting="adam", grafting_beta2=0.999,
                  grafting_epsilon=1e-8, start_preconditioning_step=10**9)
    adam = torch.optim.Adam(theirs, lr=1e-2, betas=(0.9, 0.999), eps=1e-8)
    for t in range(12):
        for ps in (ours, theirs):
            for p, g in zip(ps, _grads(t, ours)):  # the stream is built from `ours`; both stay equal
                p.grad = g.clone()
        opt.step()
        adam.step()
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a.detach(), b.detach(), atol=1e-6, rtol=0)


def test_shampoo_first_step_is_root_inverse_direction_with_sgd_grafting_norm():
    """Step 1: P = L^-1/4 G R^-1/4 (L = G G^T, R = G^T G), rescaled to the norm of G (SGD grafting)."""
    p = torch.nn.Parameter(torch.zeros(5, 5))
    opt = Shampoo([p], lr=1.0, betas=(0.0, 1.0), grafting="sgd", max_preconditioner_dim=5)  # 25 > 5: no merge
    g = torch.randn(5, 5, generator=torch.Generator().manual_seed(1))
    p.grad = g.clone()
    opt.step()
    # beta1 = 0: filtered grad = g; step = -lr * P * ||g|| / ||P||
    torch.testing.assert_close(p.detach().norm(), g.norm(), rtol=1e-5, atol=0)
    L, R = g @ g.T, g.T @ g

    def inv4(m):
        w, v = torch.linalg.eigh(m.double() + 1e-12 * torch.eye(m.shape[0], dtype=torch.float64))
        w = w - min(w.min().item() - 1e-12, 0.0)
        return (v * w.pow(-0.25)) @ v.T

    d = inv4(L) @ g.double() @ inv4(R)
    expected = -(d * g.norm().double() / d.norm())
    torch.testing.assert_close(p.detach().double(), expected, atol=1e-4, rtol=0)


def test_shampoo_blocking_and_merging_layout():
    assert merge_small_dims((64, 32), 1024) == (64, 32)
    assert merge_small_dims((4, 8), 1024) == (32,)
    assert merge_small_dims((1, 2, 5, 1), 10) == (10,)
    assert merge_small_dims((32, 3, 64, 64), 8192) == (96, 4096)
    p = torch.nn.Parameter(torch.randn(70, 40))
    opt = Shampoo([p], max_preconditioner_dim=32, precondition_1d=False)
    p.grad = torch.randn(70, 40)
    opt.step()
    st = opt.state[p]
    # 70 -> 32, 32, 6 ; 40 -> 32, 8 : 6 blocks, two factors each
    assert [tuple(f.shape for f in fs) for fs in st["factors"]] == [
        ((32, 32), (32, 32)), ((32, 32), (8, 8)), ((32, 32), (32, 32)), ((32, 32), (8, 8)),
        ((6, 6), (32, 32)), ((6, 6), (8, 8)),
    ]
    b = torch.nn.Parameter(torch.randn(8))
    opt = Shampoo([b], precondition_1d=False)
    b.grad = torch.randn(8)
    opt.step()
    assert opt.state[b]["factors"] == [[]]


def test_shampoo_inverse_exponent_override_zero_is_filtered_gradient():
    """Exponent 0 everywhere + no grafting: the step is the bias-corrected EMA of the gradient."""
    p = torch.nn.Parameter(torch.zeros(5, 3))
    opt = Shampoo([p], lr=0.1, betas=(0.9, 1.0), inverse_exponent_override={2: 0.0}, merge_dims=False)
    m = torch.zeros(5, 3)
    expected = torch.zeros(5, 3)
    for t in range(1, 5):
        g = torch.randn(5, 3)
        p.grad = g.clone()
        opt.step()
        m = 0.9 * m + 0.1 * g
        expected -= 0.1 * m / (1 - 0.9**t)
        torch.testing.assert_close(p.detach(), expected, atol=1e-6, rtol=0)


# --------------------------------------------------------------------------------------------------------
# SOAP
# --------------------------------------------------------------------------------------------------------
def test_soap_1d_is_adam_with_soap_step_size():
    lr, b1, b2, eps, wd = 3e-3, 0.95, 0.95, 1e-8, 0.01
    p = torch.nn.Parameter(torch.randn(16, dtype=torch.float64))
    opt = SOAP([p], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)
    x = p.detach().clone()
    m = torch.zeros_like(x)
    v = torch.zeros_like(x)
    k = 0
    for t in range(8):
        g = torch.randn(16, dtype=torch.float64)
        p.grad = g.clone()
        opt.step()
        if t == 0:  # the first call only builds the (empty) preconditioner
            torch.testing.assert_close(p.detach(), x, atol=0, rtol=0)
            continue
        k += 1
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        x = x - lr * math.sqrt(1 - b2**k) / (1 - b1**k) * m / (v.sqrt() + eps)
        x = x - lr * wd * x
        torch.testing.assert_close(p.detach(), x, atol=1e-12, rtol=1e-10)


def test_soap_rotation_is_orthogonal_and_dims_respect_max_precond_dim():
    p = torch.nn.Parameter(torch.randn(12, 40))
    opt = SOAP([p], max_precond_dim=32, precondition_frequency=2)
    _run(opt, [p], 6)
    st = opt.state[p]
    assert st["GG"][1] is None and st["Q"][1] is None  # 40 > 32: unrotated
    q = st["Q"][0]
    torch.testing.assert_close(q.T @ q, torch.eye(12), atol=1e-5, rtol=0)
    assert st["step"] == 5


def test_soap_refresh_equals_the_reference_three_product_form():
    """The refresh takes one product M O for both the eigenvalue estimates and the power step; the reference
    (nikhilvyas/SOAP) writes diag(O^T M O) and M O[:, order]. Same sort, same bases, same permuted v."""
    torch.manual_seed(4)
    p = torch.nn.Parameter(torch.randn(9, 14, dtype=torch.float64))
    opt = SOAP([p], precondition_frequency=3)
    _run(opt, [p], 3)  # bases built, not yet refreshed
    st = opt.state[p]
    GG, Q, v = [m.clone() for m in st["GG"]], [q.clone() for q in st["Q"]], st["exp_avg_sq"].clone()
    ref_Q = []
    for ind, (m, o) in enumerate(zip(GG, Q)):
        order = torch.argsort(torch.diag(o.T @ m @ o), descending=True)
        v = v.index_select(ind, order)
        ref_Q.append(torch.linalg.qr(m @ o[:, order])[0])
    opt._refresh_bases(st, opt.param_groups[0])
    for got, want in zip(st["Q"], ref_Q):
        torch.testing.assert_close(got, want, atol=1e-12, rtol=0)
    assert torch.equal(st["exp_avg_sq"], v)


def test_soap_merge_dims_runs_on_4d():
    p = torch.nn.Parameter(torch.randn(4, 3, 2, 2))
    opt = SOAP([p], merge_dims=True, max_precond_dim=8)
    _run(opt, [p], 4)
    # reference rule, left to right: 4 | 3*2 = 6 | 2  (4*3 and 6*2 exceed 8)
    assert [None if f is None else tuple(f.shape) for f in opt.state[p]["GG"]] == [(4, 4), (6, 6), (2, 2)]
    assert torch.isfinite(p).all()


# --------------------------------------------------------------------------------------------------------
# Kron
# --------------------------------------------------------------------------------------------------------
def _momentum_clip_reference(grads, lr, b1, noise=None):
    """Momentum + debias (+ optional in-place noise) + RMS clip at 1.1: Kron with an identity preconditioner."""
    m = torch.zeros_like(grads[0])
    steps = []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        mh = m / (1 - b1**t)
        if noise is not None:
            mh = mh + math.sqrt(torch.finfo(torch.float32).eps) * mh.abs().mean() * noise[t - 1]
        scale = min(1.0, 1.1 / (mh.square().mean().sqrt().item() + 1e-12))
        steps.append(lr * mh * scale)
    return steps


def test_kron_identity_preconditioner_without_updates_is_momentum_plus_clip():
    p = torch.nn.Parameter(torch.randn(6, 5))
    grads = [torch.randn(6, 5) for _ in range(6)]
    opt = Kron([p], lr=0.05, b1=0.9, preconditioner_update_probability=1e-12)
    x = p.detach().clone()
    for g, step in zip(grads, _momentum_clip_reference(grads, 0.05, 0.9)):
        p.grad = g.clone()
        opt.step()
        x = x - step
        torch.testing.assert_close(p.detach(), x, atol=1e-6, rtol=0)
    for q in factors(opt.state[p]):
        torch.testing.assert_close(q, torch.eye(q.shape[0]), atol=0, rtol=0)


def test_kron_precond_lr_zero_keeps_identity_and_perturbs_momentum_in_place():
    p = torch.nn.Parameter(torch.randn(6, 5))
    grads = [torch.randn(6, 5) for _ in range(4)]
    opt = Kron([p], lr=0.05, b1=0.9, precond_lr=0.0, precond_init_scale=1.0)
    torch.manual_seed(7)
    noise = [torch.randn(6, 5) for _ in range(4)]  # one draw per parameter per update step, same order
    torch.manual_seed(7)
    x = p.detach().clone()
    for g, step in zip(grads, _momentum_clip_reference(grads, 0.05, 0.9, noise)):
        p.grad = g.clone()
        opt.step()
        x = x - step
        torch.testing.assert_close(p.detach(), x, atol=1e-6, rtol=0)
    for q in factors(opt.state[p]):
        torch.testing.assert_close(q, torch.eye(q.shape[0]), atol=0, rtol=0)


def test_kron_stores_triangular_factors_packed_and_reads_full_ones():
    """Triangular factors are kept as their n(n+1)/2 upper-triangle entries (upper triangular by construction);
    a checkpoint with full n x n factors (older optbench) loads and continues identically."""
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(6, 4))
    grads = [torch.randn(6, 4) for _ in range(6)]
    opt = Kron([p], lr=0.05)
    for g in grads[:3]:
        p.grad = g.clone()
        opt.step()
    assert [q.shape for q in opt.state[p]["Q"]] == [(21,), (10,)]
    full = factors(opt.state[p])
    assert [q.shape for q in full] == [(6, 6), (4, 4)] and all(torch.equal(q, q.triu()) for q in full)
    assert all(torch.equal(pack_triu(f), q) for f, q in zip(full, opt.state[p]["Q"]))
    sd = opt.state_dict()
    old = copy.deepcopy(sd)
    old["state"][0]["Q"] = [f.clone() for f in full]  # the full-matrix format
    runs = []
    for state_dict in (sd, old):
        q = torch.nn.Parameter(p.detach().clone())
        o = Kron([q], lr=0.05)
        o.load_state_dict(copy.deepcopy(state_dict))
        torch.manual_seed(5)
        for g in grads[3:]:
            q.grad = g.clone()
            o.step()
        runs.append(q.detach().clone())
    assert torch.equal(runs[0], runs[1])


def test_kron_schedule_and_weight_decay_only_for_matrices():
    sched = ProbSchedule()
    assert sched(0).item() == 1.0 and sched(500).item() == 1.0
    assert sched(10**6).item() == pytest.approx(0.03)
    assert sched(1000).item() == pytest.approx(math.exp(-0.5), rel=1e-6)
    w = torch.nn.Parameter(torch.ones(3, 3))
    b = torch.nn.Parameter(torch.ones(3))
    opt = Kron([w, b], lr=0.1, weight_decay=0.5)
    w.grad, b.grad = torch.zeros(3, 3), torch.zeros(3)
    opt.step()
    torch.testing.assert_close(w.detach(), torch.full((3, 3), 1 - 0.1 * 0.5))
    torch.testing.assert_close(b.detach(), torch.ones(3))


# --------------------------------------------------------------------------------------------------------
# common: state_dict round trip, lr schedule, bf16, bad arguments
# --------------------------------------------------------------------------------------------------------
FACTORIES = {
    "shampoo": lambda ps: Shampoo(ps, lr=1e-2, betas=(0.9, 0.99), max_preconditioner_dim=8,
                                  precondition_frequency=2, grafting="adam", weight_decay=0.01),
    "soap": lambda ps: SOAP(ps, lr=3e-3, precondition_frequency=2),
    "kron": lambda ps: Kron(ps, lr=3e-3, weight_decay=0.01, preconditioner_update_probability=0.5),
}


@pytest.mark.parametrize("name", list(FACTORIES))
def test_state_dict_round_trip_gives_identical_next_steps(name):
    a = _params()
    opt_a = FACTORIES[name](a)
    _run(opt_a, a, 5)
    buf = io.BytesIO()
    torch.save(opt_a.state_dict(), buf)
    buf.seek(0)
    sd = torch.load(buf, weights_only=True)

    b = [torch.nn.Parameter(p.detach().clone()) for p in a]
    opt_b = FACTORIES[name](b)
    opt_b.load_state_dict(sd)
    for opt, ps in ((opt_a, a), (opt_b, b)):
        torch.manual_seed(3)  # Kron draws its noise from the global RNG
        _run(opt, ps, 4, start=5)
    for x, y in zip(a, b):
        assert torch.equal(x, y)


@pytest.mark.parametrize("name", list(FACTORIES))
def test_bf16_params_keep_fp32_state_through_a_checkpoint(name):
    ps = _params(torch.bfloat16)
    opt = FACTORIES[name](ps)
    _run(opt, ps, 4)
    sd = opt.state_dict()
    opt2 = FACTORIES[name]([torch.nn.Parameter(p.detach().clone()) for p in ps])
    opt2.load_state_dict(sd)
    for o in (opt, opt2):
        for p in o.state:
            tensors = [v for v in _flatten(o.state[p]) if torch.is_floating_point(v)]
            assert tensors and all(t.dtype == torch.float32 for t in tensors)
    assert all(p.dtype == torch.bfloat16 and torch.isfinite(p.float()).all() for p in ps)


def _flatten(x):
    if isinstance(x, torch.Tensor):
        yield x
    elif isinstance(x, dict):
        for v in x.values():
            yield from _flatten(v)
    elif isinstance(x, (list, tuple)):
        for v in x:
            yield from _flatten(v)


@pytest.mark.parametrize("name", list(FACTORIES))
def test_lr_is_read_from_the_group_every_step(name):
    ps = _params()
    opt = FACTORIES[name](ps)
    _run(opt, ps, 3)
    for g in opt.param_groups:
        g["lr"] = 0.0
        g["weight_decay"] = 0.0
    before = [p.detach().clone() for p in ps]
    _run(opt, ps, 2, start=3)
    for x, y in zip(before, ps):
        assert torch.equal(x, y)


@pytest.mark.parametrize(
    "factory, match",
    [
        (lambda ps: Shampoo(ps, lr=-1.0), "lr"),
        (lambda ps: Shampoo(ps, betas=(0.9, 1.5)), "beta2"),
        (lambda ps: Shampoo(ps, epsilon=0.0), "epsilon"),
        (lambda ps: Shampoo(ps, grafting="adamw"), "grafting"),
        (lambda ps: Shampoo(ps, precondition_frequency=10, start_preconditioning_step=5), "start_preconditioning_step"),
        (lambda ps: Shampoo(ps, inverse_exponent_override={2: -0.5}), "inverse_exponent_override"),
        (lambda ps: Shampoo(ps, max_preconditioner_dim=0), "max_preconditioner_dim"),
        (lambda ps: Shampoo(ps, weight_decay_type="corrected"), "weight_decay_type"),
        (lambda ps: SOAP(ps, betas=(0.9, 1.0)), "betas"),
        (lambda ps: SOAP(ps, precondition_frequency=0), "precondition_frequency"),
        (lambda ps: SOAP(ps, data_format="nhwc"), "data_format"),
        (lambda ps: Kron(ps, b1=1.0), "b1"),
        (lambda ps: Kron(ps, memory_save_mode="half_diag"), "memory_save_mode"),
        (lambda ps: Kron(ps, preconditioner_update_probability=0.0), "preconditioner_update_probability"),
        (lambda ps: Kron(ps, precond_init_scale=0.0), "precond_init_scale"),
    ],
)
def test_bad_arguments_raise_value_error(factory, match):
    with pytest.raises(ValueError, match=match):
        factory(_params())


@pytest.mark.parametrize("cls", [Shampoo, SOAP, Kron])
def test_scalar_and_4d_parameters(cls):
    s = torch.nn.Parameter(torch.tensor(1.0))
    c = torch.nn.Parameter(torch.randn(2, 3, 4, 5))
    opt = cls([s, c])
    for _ in range(3):
        s.grad = torch.tensor(0.5)
        c.grad = torch.randn(2, 3, 4, 5)
        opt.step()
    assert s.shape == () and c.shape == (2, 3, 4, 5)
    assert s.item() < 1.0 and torch.isfinite(c).all()
