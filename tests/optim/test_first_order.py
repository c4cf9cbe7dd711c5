"""Properties of the first-order zoo (Lion, schedule-free AdamW, AdEMAMix, MARS, SophiaG) that pin the maths and
the torch.optim contract: state round trips, lr read from the group, bf16 params, argument errors."""

from __future__ import annotations

import io
import math

import pytest
import torch

from optbench.optim import MARS, AdamWScheduleFree, AdEMAMix, Lion, SophiaG, get, info, names
from optbench.optim.ademamix import alpha_at, beta3_at
from optbench.optim.protocol import hessian_due, set_eval_mode, set_train_mode

SHAPES = [(6, 4), (4,)]


def _make(cls, params, **kw):
    opt = cls(params, **kw)
    if isinstance(opt, AdamWScheduleFree):
        opt.train()
    return opt


def _params(dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(s, generator=gen).to(dtype)) for s in SHAPES]


def _grads(n, seed=1, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    return [[torch.randn(s, generator=gen).to(dtype) for s in SHAPES] for _ in range(n)]


def _run(opt, ps, grads):
    for gs in grads:
        for p, g in zip(ps, gs):
            p.grad = g.clone()
        opt.step()


ALL = [
    (Lion, {"weight_decay": 0.5}),
    (AdamWScheduleFree, {"weight_decay": 0.01, "warmup_steps": 2}),
    (AdEMAMix, {"weight_decay": 0.1, "alpha_warmup": 3, "beta3_warmup": 3}),
    (MARS, {"weight_decay": 0.1}),
    (MARS, {"mars_type": "mars-lion"}),
    (MARS, {"mars_type": "mars-shampoo"}),
    (SophiaG, {"hessian_interval": 2, "estimator": "minibatch", "batch_size": 8}),
]
IDS = ["lion", "sfadamw", "ademamix", "mars", "mars-lion", "mars-shampoo", "sophia-mb"]


# ---------------------------------------------------------------- the torch.optim contract, for every optimizer


@pytest.mark.parametrize("cls, kw", ALL, ids=IDS)
def test_state_dict_round_trip(cls, kw):
    grads = _grads(6)
    ps = _params()
    opt = _make(cls, ps, **kw)
    _run(opt, ps, grads[:3])
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    sd = torch.load(buf, weights_only=True)
    qs = [torch.nn.Parameter(p.detach().clone()) for p in ps]
    opt2 = cls(qs, **kw)  # fresh (schedule-free: not in train mode); everything must come from the state dict
    opt2.load_state_dict(sd)
    _run(opt, ps, grads[3:])
    _run(opt2, qs, grads[3:])
    for p, q in zip(ps, qs):
        assert torch.equal(p, q)


@pytest.mark.parametrize("cls, kw", ALL, ids=IDS)
def test_lr_read_from_group_grad_untouched_and_no_grad_skipped(cls, kw):
    ps = _params()
    opt = _make(cls, ps, **kw)
    for group in opt.param_groups:
        group["lr"] = 0.0  # what an LR scheduler does
    g0 = torch.randn(SHAPES[0])
    ps[0].grad = g0.clone()  # ps[1] has no gradient
    before = [p.detach().clone() for p in ps]
    opt.step()
    assert torch.equal(ps[0].grad, g0), "the optimizer must not modify p.grad"
    for p, b in zip(ps, before):
        assert torch.equal(p.detach(), b)
    assert len(opt.state[ps[1]]) == 0


@pytest.mark.parametrize("cls, kw", ALL, ids=IDS)
def test_bf16_params(cls, kw):
    """bf16 params: state in the param dtype (as upstream), finite, and within bf16 rounding of the fp32 run.
    Each step's update here is at most ~lr, below one bf16 ulp of |w| ~ 1, so each step may round by up to one
    ulp: the bound is (steps + 1) ulps of the largest |w|."""
    steps = 4
    grads32 = _grads(steps)
    p32 = _params()
    p16 = _params(torch.bfloat16)
    o32, o16 = _make(cls, p32, **kw), _make(cls, p16, **kw)
    _run(o32, p32, grads32)
    _run(o16, p16, [[g.bfloat16() for g in gs] for gs in grads32])
    for a, b in zip(p32, p16):
        assert b.dtype == torch.bfloat16 and torch.isfinite(b).all()
        ulp = 2.0 ** (math.floor(math.log2(a.detach().abs().max().item())) - 7)
        assert (a.detach() - b.detach().float()).abs().max().item() <= (steps + 1) * ulp
    for p in p16:
        for v in o16.state[p].values():
            if torch.is_tensor(v) and v.ndim > 0:
                assert v.dtype == torch.bfloat16 and v.device == p.device


@pytest.mark.parametrize("cls, kw", ALL, ids=IDS)
def test_param_groups_use_their_own_lr(cls, kw):
    gen = torch.Generator().manual_seed(2)
    a = torch.nn.Parameter(torch.randn(5, 3, generator=gen))
    b = torch.nn.Parameter(a.detach().clone())
    opt = _make(cls, [{"params": [a], "lr": 1e-3}, {"params": [b], "lr": 0.0}], **kw)
    g = torch.randn(5, 3, generator=gen)
    a.grad, b.grad = g.clone(), g.clone()
    before = a.detach().clone()
    opt.step()
    assert not torch.equal(a.detach(), before)
    assert torch.equal(b.detach(), before)


@pytest.mark.parametrize(
    "cls, kw, match",
    [
        (Lion, {"lr": -1.0}, "lr"),
        (Lion, {"betas": (0.9, 1.0)}, "betas"),
        (Lion, {"weight_decay": -0.1}, "weight_decay"),
        (AdamWScheduleFree, {"lr": -1.0}, "lr"),
        (AdamWScheduleFree, {"betas": (0.0, 0.999)}, "beta1"),
        (AdamWScheduleFree, {"warmup_steps": -1}, "warmup_steps"),
        (AdEMAMix, {"betas": (0.9, 0.999)}, "betas"),
        (AdEMAMix, {"alpha": -2.0}, "alpha"),
        (AdEMAMix, {"alpha_warmup": 0}, "alpha_warmup"),
        (MARS, {"mars_type": "mars-sgd"}, "mars_type"),
        (MARS, {"is_approx": False}, "is_approx"),
        (MARS, {"betas_1d": (1.5, 0.9)}, "betas_1d"),
        (SophiaG, {"rho": -1.0}, "rho"),
        (SophiaG, {"estimator": "hutchinson"}, "estimator"),
        (SophiaG, {"hessian_interval": 0}, "hessian_interval"),
        (SophiaG, {"betas": (0.965, 1.0)}, "betas"),
    ],
)
def test_bad_arguments_raise_value_error(cls, kw, match):
    with pytest.raises(ValueError, match=match):
        cls(_params(), **kw)


def test_registry_names_and_aliases():
    for name, cls in [("lion", Lion), ("adamw-schedulefree", AdamWScheduleFree), ("sfadamw", AdamWScheduleFree),
                      ("ademamix", AdEMAMix), ("mars", MARS), ("sophia", SophiaG), ("sophiag", SophiaG)]:
        assert get(name) is cls
    for name in ["lion", "adamw-schedulefree", "ademamix", "mars", "sophia"]:
        assert name in names() and "@" in info(name).reference and not info(name).matrix_only
    assert info("lion").defaults() == {"lr": 1e-4, "betas": (0.9, 0.99), "weight_decay": 0.0}
    d = info("sophia").defaults()
    assert d["batch_size"] == 5120 and d["hessian_interval"] == 10 and d["estimator"] == "gnb"


# ---------------------------------------------------------------- Lion


def test_lion_first_step_is_sign_of_gradient_plus_decay():
    p = torch.nn.Parameter(torch.randn(4, 5))
    g = torch.randn(4, 5)
    p.grad = g.clone()
    w = p.detach().clone()
    Lion([p], lr=0.01, weight_decay=0.3).step()
    assert torch.equal(p.detach(), w * (1 - 0.01 * 0.3) - 0.01 * torch.sign(g))


# ---------------------------------------------------------------- schedule-free


def test_schedulefree_modes():
    ps = _params()
    opt = AdamWScheduleFree(ps)
    ps[0].grad = torch.randn(SHAPES[0])
    with pytest.raises(RuntimeError, match="train"):
        opt.step()  # fresh optimizers start in eval mode, as upstream
    set_train_mode([opt])
    _run(opt, ps, _grads(3))
    y = [p.detach().clone() for p in ps]
    beta1 = opt.param_groups[0]["betas"][0]
    set_eval_mode([opt])
    for p, yy in zip(ps, y):
        assert torch.allclose(p.detach(), yy.lerp(opt.state[p]["z"], 1 - 1 / beta1), rtol=0, atol=1e-7)
    set_eval_mode([opt])  # idempotent
    set_train_mode([opt])
    for p, yy in zip(ps, y):
        assert torch.allclose(p.detach(), yy, rtol=0, atol=1e-6)
    assert opt.param_groups[0]["train_mode"] is True


def test_schedulefree_first_step_equations():
    """k=0: c = 1, so y <- lerp(y0, z0 = y0, 1) + lr (beta1 * 0 - 1) d = y0 - lr d and z = y0 - lr d,
    with d = g / (sqrt(v / (1 - beta2)) + eps) and lr warmed up to lr / warmup_steps."""
    p = torch.nn.Parameter(torch.randn(3, 4))
    g = torch.randn(3, 4)
    p.grad = g.clone()
    y0 = p.detach().clone()
    opt = AdamWScheduleFree([p], lr=0.01, warmup_steps=4)
    opt.train()
    opt.step()
    lr0 = 0.01 * 1 / 4  # warmup
    d = g / ((0.001 * g * g / (1 - 0.999)).sqrt() + 1e-8)
    assert torch.allclose(p.detach(), y0 - lr0 * d, rtol=0, atol=1e-7)
    assert torch.allclose(opt.state[p]["z"], y0 - lr0 * d, rtol=0, atol=1e-7)
    assert opt.param_groups[0]["scheduled_lr"] == lr0 and opt.param_groups[0]["k"] == 1


# ---------------------------------------------------------------- AdEMAMix


def test_ademamix_schedulers():
    assert alpha_at(0, 2.0, 10) == 0.0 and alpha_at(5, 2.0, 10) == 1.0 and alpha_at(10, 2.0, 10) == 2.0
    assert alpha_at(3, 2.0, None) == 2.0
    assert abs(beta3_at(0, 0.9999, 0.9, 10) - 0.9) < 1e-6  # starts at beta1 (up to the 1e-8 inside f)
    assert beta3_at(10, 0.9999, 0.9, 10) == 0.9999 and beta3_at(3, 0.9999, 0.9, None) == 0.9999
    hl = [math.log(0.5) / math.log(beta3_at(s, 0.9999, 0.9, 10) + 1e-8) for s in range(11)]  # f of the source
    steps = [b - a for a, b in zip(hl, hl[1:])]
    assert max(steps) - min(steps) < 1e-3 * max(steps)  # linear in half-life


def test_ademamix_beta1_zero_has_no_fast_buffer():
    p = torch.nn.Parameter(torch.randn(3, 3))
    p.grad = torch.randn(3, 3)
    opt = AdEMAMix([p], betas=(0.0, 0.999, 0.9999))
    opt.step()
    assert opt.state[p]["exp_avg_fast"] is None and torch.isfinite(p).all()


# ---------------------------------------------------------------- MARS


def test_mars_keeps_a_copy_of_the_previous_gradient():
    """A loop that zeroes and refills the SAME grad tensor in place must give the same result as fresh tensors
    (the reference keeps a reference to p.grad and would be corrupted)."""
    grads = _grads(5)
    ps, qs = _params(), _params()
    o1, o2 = MARS(ps, weight_decay=0.1), MARS(qs, weight_decay=0.1)
    _run(o1, ps, grads)
    bufs = [torch.zeros(s) for s in SHAPES]
    for q, b in zip(qs, bufs):
        q.grad = b
    for gs in grads:
        for b, g in zip(bufs, gs):
            b.zero_().add_(g)  # in-place accumulation into the same tensor
        o2.step()
    for p, q in zip(ps, qs):
        assert torch.equal(p, q)
    assert o2.state[qs[0]]["last_grad"].data_ptr() != qs[0].grad.data_ptr()


def test_mars_first_steps_match_equations():
    gen = torch.Generator().manual_seed(4)
    w = torch.nn.Parameter(torch.randn(5, 3, generator=gen))
    b = torch.nn.Parameter(torch.randn(3, generator=gen))
    g1, g2 = torch.randn(5, 3, generator=gen) * 0.01, torch.randn(5, 3, generator=gen) * 0.01
    gb = torch.randn(3, generator=gen)
    w0, b0 = w.detach().clone(), b.detach().clone()
    opt = MARS([w, b], lr=0.01, weight_decay=0.0, lr_1d=0.02, weight_decay_1d=0.1)
    w.grad, b.grad = g1.clone(), gb.clone()
    opt.step()
    # 2-D, t=1: the previous gradient is zero (so c = g + 0.475 g); small g, no clipping; Adam's first step is
    # lr * c / (|c| + eps) = lr * g / (|g| + eps / 1.475)
    assert torch.allclose(w.detach(), w0 - 0.01 * g1 / (g1.abs() + 1e-8 / 1.475), rtol=0, atol=1e-6)
    # 1-D: AdamW branch with lr_1d and weight_decay_1d
    assert torch.allclose(b.detach(), b0 - 0.02 * (0.1 * b0 + gb / (gb.abs() + 1e-8)), rtol=0, atol=1e-6)
    # 2-D, t=2: the correction uses g2 - g1
    w1 = w.detach().clone()
    w.grad, b.grad = g2.clone(), gb.clone()
    opt.step()
    c1, c2 = g1 + 0.475 * g1, g2 + 0.025 * 0.95 / 0.05 * (g2 - g1)
    assert c1.norm() < 1 and c2.norm() < 1
    m = 0.95 * 0.05 * c1 + 0.05 * c2
    v = 0.99 * 0.01 * c1 * c1 + 0.01 * c2 * c2
    expect = w1 - 0.01 * m / ((v.sqrt() / math.sqrt(1 - 0.99**2) + 1e-8) * (1 - 0.95**2))
    assert torch.allclose(w.detach(), expect, rtol=0, atol=1e-6)


def test_mars_clips_the_corrected_gradient_to_unit_norm():
    p = torch.nn.Parameter(torch.zeros(4, 4))
    p.grad = torch.full((4, 4), 10.0)  # ||c|| = 40 -> c / 40
    opt = MARS([p], lr=1.0, mars_type="mars-lion")
    opt.step()
    assert torch.allclose(opt.state[p]["exp_avg"], torch.full((4, 4), 0.05 * 10 / 40))
    assert torch.equal(p.detach(), torch.full((4, 4), -1.0))  # mars-lion: a sign step of size lr


def test_mars_lr_scheduler_scales_the_1d_branch_too():
    b = torch.nn.Parameter(torch.ones(3))
    opt = MARS([b], lr=0.01, lr_1d=0.02, weight_decay_1d=0.0)
    opt.param_groups[0]["lr"] = 0.005  # halved by a scheduler
    b.grad = torch.ones(3)
    opt.step()
    assert torch.allclose(b.detach(), torch.full((3,), 1 - 0.01), rtol=0, atol=1e-6)


# ---------------------------------------------------------------- SophiaG


def test_sophia_protocol_schedule():
    opt = SophiaG(_params())
    assert [t for t in range(30) if opt.hessian_update_due(t)] == [9, 19, 29]
    assert hessian_due([opt], 9) == [opt] and hessian_due([opt], 10) == []
    mb = SophiaG(_params(), estimator="minibatch")
    assert not any(mb.hessian_update_due(t) for t in range(30)) and hessian_due([mb], 9) == []


def test_sophia_update_hessian_and_clipped_step():
    p = torch.nn.Parameter(torch.zeros(2, 3))
    opt = SophiaG([p], lr=0.1, betas=(0.5, 0.9), rho=0.5, weight_decay=0.0, batch_size=2)
    gh = torch.tensor([[1.0, 2.0, 3.0], [0.5, 0.1, 4.0]])
    p.grad = gh.clone()
    opt.update_hessian()
    h = opt.state[p]["hessian"]
    assert torch.allclose(h, 0.1 * gh * gh)
    g = torch.tensor([[1.0, -1.0, 0.2], [-0.3, 0.05, 2.0]])
    p.grad = g.clone()
    opt.step()
    m = 0.5 * g
    ratio = (m.abs() / (0.5 * 2 * h + 1e-15)).clamp(max=1)
    assert torch.allclose(p.detach(), -0.1 * m.sign() * ratio, rtol=0, atol=1e-7)
    # step(bs=...) overrides the constructor's batch size for that call
    q = torch.nn.Parameter(torch.zeros(2, 3))
    opt2 = SophiaG([q], lr=0.1, betas=(0.5, 0.9), rho=0.5, weight_decay=0.0, batch_size=999)
    q.grad = gh.clone()
    opt2.update_hessian()
    q.grad = g.clone()
    opt2.step(bs=2)
    assert torch.equal(p, q)


def test_sophia_minibatch_estimator_updates_every_interval():
    p = torch.nn.Parameter(torch.zeros(3))
    opt = SophiaG([p], estimator="minibatch", hessian_interval=3)
    hs = []
    for t in range(6):
        p.grad = torch.full((3,), float(t + 1))
        opt.step()
        hs.append(opt.state[p]["hessian"][0].item())
    assert hs[:2] == [0.0, 0.0] and hs[2] == pytest.approx(0.01 * 9)  # after step 3, from g = 3
    assert hs[3] == hs[2] == hs[4] and hs[5] == pytest.approx(0.99 * 0.09 + 0.01 * 36)


def test_sophia_state_dict_keeps_constructor_settings():
    ps = _params()
    opt = SophiaG(ps, estimator="minibatch", batch_size=77, hessian_interval=4)
    _run(opt, ps, _grads(2))
    opt2 = SophiaG(_params())
    opt2.load_state_dict(opt.state_dict())
    assert (opt2.estimator, opt2.batch_size, opt2.hessian_interval) == ("minibatch", 77, 4)
