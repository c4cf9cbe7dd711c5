"""The zoo's fast paths compute what the slow ones did: batched Newton-Schulz, fused AdamW, multi-tensor steps,
the compiled NS path (slow lane), and per-parameter step counts inside one multi-tensor group."""

from __future__ import annotations

import shutil

import pytest
import torch

from optbench.optim import MARS, Adam, AdamW, AdamWScheduleFree, AdEMAMix, Muon, NorMuon
from optbench.optim.adamw import fused_is_same_update
from optbench.optim.muon import compiled_newton_schulz_, newton_schulz, newton_schulz_batched, resolve_ns_schedule

SHAPES = [(24, 8), (8, 24), (16, 16), (24, 8), (5, 7), (16, 16), (12, 30)]


def _upstream_ns(G: torch.Tensor, schedule, dtype) -> torch.Tensor:
    """modded-nanogpt's zeropower_via_newtonschulz5, written as upstream writes it (a new tensor per operation)."""
    X = G.to(dtype)
    if G.size(-2) > G.size(-1):
        X = X.mT
    X = X / (X.norm(dim=(-2, -1), keepdim=True) + 1e-7)
    for a, b, c in schedule:
        A = X @ X.mT
        B = b * A + c * A @ A
        X = a * X + B @ X
    if G.size(-2) > G.size(-1):
        X = X.mT
    return X


@pytest.mark.parametrize("preset", ["track3", "tuned5", "medium"])
def test_newton_schulz_rounds_as_upstream(preset):
    """bf16 (upstream rounding, the default there) bit for bit; float32 (fused products, the default there) to a
    few ulp; batched or not."""
    sched = resolve_ns_schedule(preset, None)
    gen = torch.Generator().manual_seed(0)
    mats = [torch.randn(s, generator=gen) for s in SHAPES]
    for dtype, atol in ((torch.bfloat16, 0.0), (torch.float32, 2e-6)):
        batched = newton_schulz_batched(mats, sched, dtype)
        for G, O in zip(mats, batched):
            want = _upstream_ns(G, sched, dtype)
            single = newton_schulz(G, sched, dtype)
            assert O.shape == G.shape and O.dtype == dtype and single.dtype == dtype
            assert (single.float() - want.float()).abs().max().item() <= atol
            assert (O.float() - want.float()).abs().max().item() <= atol


def test_fused_arithmetic_is_the_same_iteration():
    """fused=True folds the scalings and sums into baddbmm: in bf16 it differs from upstream only by rounding
    (the result's singular values agree), and it is the float32 default."""
    from optbench.optim.muon import fused_default

    assert fused_default(torch.float32) and fused_default(torch.float64)
    assert not fused_default(torch.bfloat16) and not fused_default(torch.float16)
    sched = resolve_ns_schedule("tuned5", None)
    G = torch.randn(48, 16, generator=torch.Generator().manual_seed(6))
    fused = newton_schulz(G, sched, torch.bfloat16, fused=True)
    plain = newton_schulz(G, sched, torch.bfloat16)
    assert not torch.equal(fused, plain) and (fused.float() - plain.float()).abs().max().item() < 0.05
    sv = [torch.linalg.svdvals(x.float()) for x in (fused, plain)]
    assert (sv[0] - sv[1]).abs().max().item() < 0.05
    assert torch.equal(newton_schulz(G, sched, torch.float32), newton_schulz(G, sched, torch.float32, fused=True))


def test_newton_schulz_batched_groups_tall_with_wide_and_rejects_stacks():
    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn(24, 8, generator=gen), torch.randn(8, 24, generator=gen)
    sched = resolve_ns_schedule("tuned5", None)
    oa, ob = newton_schulz_batched([a, b], sched, torch.float32)
    assert oa._base is ob._base is not None  # one (2, 8, 24) batch: the tall matrix was turned wide
    assert torch.equal(newton_schulz_batched([a], sched)[0], newton_schulz(a, sched))
    assert newton_schulz_batched([], sched) == []
    with pytest.raises(ValueError, match="2-D"):
        newton_schulz_batched([torch.zeros(2, 3, 4)], sched)


def test_muon_family_step_is_the_per_matrix_formula_on_mixed_shapes():
    """Muon on seven matrices of five shapes: each moved as upstream moves it, bit for bit (bf16 NS)."""
    gen = torch.Generator().manual_seed(2)
    ps = [torch.nn.Parameter(torch.randn(s, generator=gen)) for s in SHAPES]
    opt = Muon(ps, lr=0.1, weight_decay=0.2, ns_coefficients="tuned5")
    sched = resolve_ns_schedule("tuned5", None)
    ws, ms = [p.detach().clone() for p in ps], [torch.zeros(s) for s in SHAPES]
    for _ in range(3):
        gs = [torch.randn(s, generator=gen) for s in SHAPES]
        for p, g in zip(ps, gs):
            p.grad = g.clone()
        opt.step()
        for i, g in enumerate(gs):
            ms[i] = ms[i].lerp(g, 0.05)
            o = _upstream_ns(g.lerp(ms[i], 0.95), sched, torch.bfloat16)
            o = o * max(1, g.size(0) / g.size(1)) ** 0.5
            ws[i].mul_(1 - 0.1 * 0.2).add_(o, alpha=-0.1)  # upstream's p.mul_(1 - lr wd); p.add_(O, alpha=-lr)
            assert torch.equal(ps[i].detach(), ws[i]), i


def test_fused_adamw_is_used_where_it_is_the_same_update():
    """build_optimizers turns torch's fused kernel on for float32 params (the CPU tracks' models), not for bf16
    ones off CUDA; the rule reads tensors, (name, tensor) pairs and param groups."""
    from optbench.optim.groups import build_optimizers
    from optbench.optim.recipe import load_recipe
    from optbench.tracks import get_track

    model = get_track("nano").build_model()
    for recipe in ("nano-adamw", "nano-muon"):
        opts = build_optimizers(model, load_recipe(recipe))
        adamws = [o for o in opts if isinstance(o, torch.optim.AdamW)]
        assert adamws and all(g["fused"] for o in adamws for g in o.param_groups)
    f32 = [torch.nn.Parameter(torch.randn(4, 3))]
    assert fused_is_same_update([{"params": f32}, ("w", f32[0])]) and fused_is_same_update(f32)
    assert not fused_is_same_update([torch.zeros(2, dtype=torch.bfloat16)] + f32)
    assert not fused_is_same_update([])


@pytest.mark.parametrize("cls", [AdamW, Adam])
def test_fused_default_matches_the_per_tensor_loop(cls):
    """The fused kernel: the same update as torch's per-tensor loop up to float32 rounding over 30 steps."""
    gen = torch.Generator().manual_seed(3)
    init = [torch.randn(s, generator=gen) for s in [(16, 8), (8,), (3, 4, 5)]]
    grads = [[torch.randn(x.shape, generator=gen) for x in init] for _ in range(30)]
    runs = []
    for kw in ({"fused": True}, {"foreach": False}):
        ps = [torch.nn.Parameter(x.clone()) for x in init]
        opt = cls(ps, lr=1e-2, betas=(0.9, 0.95), eps=1e-10, weight_decay=0.1, **kw)
        for gs in grads:
            for p, g in zip(ps, gs):
                p.grad = g.clone()
            opt.step()
        runs.append(ps)
    assert max((a - b).abs().max().item() for a, b in zip(*runs)) < 1e-6


@pytest.mark.parametrize(
    "make",
    [lambda ps: AdEMAMix(ps, weight_decay=0.1, alpha_warmup=4, beta3_warmup=4),
     lambda ps: MARS(ps, weight_decay=0.1),
     lambda ps: MARS(ps, mars_type="mars-shampoo", weight_decay=0.1),
     lambda ps: NorMuon(ps, weight_decay=0.1)],
)
def test_one_group_with_different_step_counts_equals_separate_optimizers(make):
    """A parameter that gets its first gradient later keeps its own step count (bias corrections, warmups)
    inside the multi-tensor group: the result equals optimizing each parameter alone."""
    gen = torch.Generator().manual_seed(4)
    init = [torch.randn(12, 6, generator=gen), torch.randn(12, 6, generator=gen)]
    grads = [[torch.randn(12, 6, generator=gen) for _ in init] for _ in range(6)]
    together = [torch.nn.Parameter(x.clone()) for x in init]
    opt = make(together)
    alone = [torch.nn.Parameter(x.clone()) for x in init]
    opts = [make([p]) for p in alone]
    for t, gs in enumerate(grads):
        for ps in (together, alone):
            ps[0].grad = gs[0].clone()
            ps[1].grad = gs[1].clone() if t >= 2 else None
        opt.step()
        for o, p in zip(opts, alone):
            if p.grad is not None:
                o.step()
    for a, b in zip(together, alone):
        assert torch.equal(a, b)


def test_compiled_and_fused_arguments_are_checked():
    with pytest.raises(ValueError, match="compiled"):
        Muon([torch.nn.Parameter(torch.zeros(4, 4))], compiled="yes")
    with pytest.raises(ValueError, match="ns_fused"):
        NorMuon([torch.nn.Parameter(torch.zeros(4, 4))], ns_fused=1)


@pytest.mark.slow
def test_compiled_newton_schulz_matches_eager_on_cpu():
    """The compiled path (used by default on CUDA) built and run on CPU: Muon with compiled=True follows the
    eager run to float32 rounding. Inductor needs a C++ compiler on CPU."""
    if shutil.which("g++") is None and shutil.which("c++") is None:
        pytest.skip("no C++ compiler for inductor's CPU backend")
    gen = torch.Generator().manual_seed(5)
    init = [torch.randn(s, generator=gen) for s in [(24, 8), (8, 24), (16, 16)]]
    grads = [[torch.randn(x.shape, generator=gen) for x in init] for _ in range(3)]
    runs = []
    for compiled in (False, True):
        ps = [torch.nn.Parameter(x.clone()) for x in init]
        opt = Muon(ps, lr=0.05, ns_dtype=torch.float32, compiled=compiled)
        for gs in grads:
            for p, g in zip(ps, gs):
                p.grad = g.clone()
            opt.step()
        runs.append(ps)
    assert compiled_newton_schulz_() is compiled_newton_schulz_()  # built once
    assert max((a - b).abs().max().item() for a, b in zip(*runs)) < 1e-5


def test_pieces_are_aligned_views_covering_each_tensor():
    from optbench.optim._elementwise import pieces

    a = [torch.arange(10.0), torch.zeros(3, 4), torch.zeros(4, 3).mT]
    b = [torch.zeros(10), torch.zeros(3, 4), torch.zeros(3, 4)]
    got = list(pieces(a, b, size=4))
    assert [x.numel() for x, _ in got] == [4, 4, 2, 4, 4, 4, 12]  # the transposed (non-contiguous) one stays whole
    assert all(x.shape == y.shape for x, y in got)
    for x, y in got:
        y.copy_(x + 1)  # writes land in the tensors
    assert torch.equal(b[0], torch.arange(1.0, 11.0)) and torch.equal(b[1], torch.ones(3, 4))


def _run(make, init, grads):
    ps = [torch.nn.Parameter(x.clone()) for x in init]
    opt = make(ps)
    if hasattr(opt, "train"):
        opt.train()
    for gs in grads:
        for p, g in zip(ps, gs):
            p.grad = g.clone()
        opt.step()
    return ps


ELEMENTWISE = [
    lambda ps, **kw: AdEMAMix(ps, lr=1e-2, weight_decay=0.1, alpha_warmup=4, beta3_warmup=4, **kw),
    lambda ps, **kw: AdEMAMix(ps, lr=1e-2, betas=(0.0, 0.99, 0.999), **kw),
    lambda ps, **kw: AdamWScheduleFree(ps, lr=1e-2, weight_decay=0.1, warmup_steps=2, **kw),
    lambda ps, **kw: AdamWScheduleFree(ps, lr=1e-2, weight_decay=0.1, inner_momentum=0.9, **kw),
]


@pytest.mark.parametrize("make", ELEMENTWISE)
def test_updates_in_cache_sized_pieces_equal_whole_tensors(make, monkeypatch):
    """AdEMAMix and schedule-free AdamW run their passes piece by piece: cutting the tensors into 7-element pieces
    gives the whole-tensor result (elementwise arithmetic does not depend on where a piece starts)."""
    from optbench.optim import _elementwise

    gen = torch.Generator().manual_seed(7)
    init = [torch.randn(s, generator=gen) for s in [(24, 8), (5,), (3, 4, 5)]]
    grads = [[torch.randn(x.shape, generator=gen) for x in init] for _ in range(5)]
    whole = _run(make, init, grads)
    monkeypatch.setattr(_elementwise, "PIECE", 7)
    cut = _run(make, init, grads)
    assert max((a - b).abs().max().item() for a, b in zip(whole, cut)) <= 1e-7


def test_scratch_reuses_one_buffer_until_a_piece_needs_more_or_another_dtype():
    from optbench.optim._elementwise import Scratch

    s = Scratch()
    a = s.like(torch.zeros(4, 3))
    b = s.like(torch.zeros(5))
    assert a.shape == (4, 3) and b.shape == (5,) and a.data_ptr() == b.data_ptr()  # the same buffer
    c = s.like(torch.zeros(20))
    assert c.numel() == 20 and c.data_ptr() != a.data_ptr()  # grown
    d = s.like(torch.zeros(2, 2, dtype=torch.float64))
    assert d.dtype == torch.float64 and d.shape == (2, 2) and d.is_contiguous()
    e = s.like(torch.zeros(3, 4).T)  # a non-contiguous tensor's shape, as a contiguous view
    assert e.shape == (4, 3) and e.dtype == torch.float32 and e.is_contiguous()


def test_lion_in_cache_sized_pieces_equals_its_foreach_passes(monkeypatch):
    """On CPU Lion runs its 5 passes piece by piece (other devices: 5 foreach passes); bit for bit the same."""
    from optbench.optim import _elementwise
    from optbench.optim.lion import Lion

    monkeypatch.setattr(_elementwise, "PIECE", 7)
    gen = torch.Generator().manual_seed(9)
    init = [torch.randn(s, generator=gen) for s in [(24, 8), (5,), (3, 4, 5)]]
    grads = [[torch.randn(x.shape, generator=gen) for x in init] for _ in range(4)]
    got = _run(lambda ps: Lion(ps, lr=0.01, betas=(0.8, 0.95), weight_decay=0.3), init, grads)
    ps, ms = [x.clone() for x in init], [torch.zeros_like(x) for x in init]
    for gs in grads:
        d = torch._foreach_lerp(ms, gs, 1 - 0.8)
        torch._foreach_sign_(d)
        torch._foreach_lerp_(ms, gs, 1 - 0.95)
        torch._foreach_mul_(ps, 1 - 0.01 * 0.3)
        torch._foreach_add_(ps, d, alpha=-0.01)
    assert all(torch.equal(a, b) for a, b in zip(got, ps))


def test_compiled_argument_of_elementwise_optimizers_is_checked():
    for cls in (AdEMAMix, AdamWScheduleFree):
        with pytest.raises(ValueError, match="compiled"):
            cls([torch.nn.Parameter(torch.zeros(4, 4))], compiled=1)


@pytest.mark.slow
@pytest.mark.parametrize("make", ELEMENTWISE)
def test_compiled_elementwise_update_matches_eager_on_cpu(make):
    """The compiled update (default on CUDA) built and run on CPU follows the eager one to float32 rounding over
    5 steps, with step-dependent scalars passed as tensors (one compile for all steps)."""
    if shutil.which("g++") is None and shutil.which("c++") is None:
        pytest.skip("no C++ compiler for inductor's CPU backend")
    gen = torch.Generator().manual_seed(8)
    init = [torch.randn(s, generator=gen) for s in [(24, 8), (16, 16)]]
    grads = [[torch.randn(x.shape, generator=gen) for x in init] for _ in range(5)]
    eager = _run(lambda ps: make(ps, compiled=False), init, grads)
    comp = _run(lambda ps: make(ps, compiled=True), init, grads)
    assert max((a - b).abs().max().item() for a, b in zip(eager, comp)) < 1e-6


@pytest.mark.parametrize("nesterov", [True, False])
def test_adamuon_signs_the_update_never_the_momentum_buffer(nesterov):
    """sign(u) runs in place on nesterov's new tensors; without nesterov u is the buffer itself, which must keep
    the EMA of the raw gradients."""
    from optbench.optim.adamuon import AdaMuon

    g = torch.randn(8, 4, generator=torch.Generator().manual_seed(9))
    p = torch.nn.Parameter(torch.zeros(8, 4))
    opt = AdaMuon([p], momentum=0.9, nesterov=nesterov, ns_dtype=torch.float32)
    p.grad = g.clone()
    opt.step()
    assert torch.allclose(opt.state[p]["momentum_buffer"], 0.1 * g, rtol=1e-6, atol=0)
    assert torch.equal(p.grad, g)


def test_fused_newton_schulz_is_as_accurate_as_upstream_rounding():
    """fused=True computes (B + aI) X in one product: against a float64 run of the convergent track-3 schedule,
    its bf16 error is no larger than upstream's rounding-after-every-operation, and float32 is within 1e-5."""
    from optbench.optim.muon import newton_schulz_

    sched = resolve_ns_schedule("track3", None)
    G = torch.randn(4, 64, 256, generator=torch.Generator().manual_seed(11))
    exact = newton_schulz_(G.double(), sched, fused=False)

    def err(dtype, fused):
        out = newton_schulz_(G.to(dtype), sched, fused=fused).double()
        return ((out - exact).norm() / exact.norm()).item()

    assert err(torch.bfloat16, True) <= err(torch.bfloat16, False)
    assert err(torch.float32, True) < 1e-5


def test_newton_schulz_batches_say_where_each_matrix_is():
    """One batch per shape, tall and wide together: (O, idx, tall) with O[j] (or O[j].mT when tall) the result
    for mats[idx[j]], as newton_schulz_batched returns it."""
    from optbench.optim.muon import newton_schulz_batches

    gen = torch.Generator().manual_seed(12)
    mats = [torch.randn(s, generator=gen) for s in [(24, 8), (16, 16), (8, 24), (16, 16)]]
    sched = resolve_ns_schedule("tuned5", None)
    batches = newton_schulz_batches(mats, sched, torch.float32)
    assert sorted((O.shape, idx, tall) for O, idx, tall in batches) == [
        (torch.Size([2, 8, 24]), [0, 2], [True, False]), (torch.Size([2, 16, 16]), [1, 3], [False, False])]
    flat = newton_schulz_batched(mats, sched, torch.float32)
    for O, idx, tall in batches:
        for j, i in enumerate(idx):
            assert torch.equal(O[j].mT if tall[j] else O[j], flat[i])


@pytest.mark.parametrize("ns_dtype", [torch.bfloat16, torch.float32])
def test_normuon_step_is_the_per_matrix_formula_on_mixed_shapes(ns_dtype):
    """NorMuon's batched row statistics (one reduction per NS batch, tall matrices by columns) and foreach
    scalings give the reference's per-matrix arithmetic to float32 rounding, on tall, wide and square matrices
    sharing batches."""
    gen = torch.Generator().manual_seed(13)
    ps = [torch.nn.Parameter(torch.randn(s, generator=gen)) for s in SHAPES]
    opt = NorMuon(ps, lr=0.05, weight_decay=0.1, momentum=0.9, beta2=0.9, ns_dtype=ns_dtype)
    sched = resolve_ns_schedule("tuned5", None)
    ws = [p.detach().clone() for p in ps]
    ms, ss = [torch.zeros(s) for s in SHAPES], [torch.zeros(s[0], 1) for s in SHAPES]
    for _ in range(3):
        gs = [torch.randn(s, generator=gen) for s in SHAPES]
        for p, g in zip(ps, gs):
            p.grad = g.clone()
        opt.step()
        for i, g in enumerate(gs):  # zichongli5/NorMuon's update, matrix by matrix
            ms[i] = ms[i].lerp(g, 0.1)
            o = newton_schulz(g.lerp(ms[i], 0.9), sched, ns_dtype).float()
            nu = o.norm()
            ss[i] = ss[i].lerp(o.square().mean(dim=-1, keepdim=True), 0.1)
            o = o / (ss[i].sqrt() + 1e-10)
            o = o * (nu / (o.norm() + 1e-10)) * max(1, g.size(0) / g.size(1)) ** 0.5
            ws[i] = ws[i] * (1 - 0.05 * 0.1) - 0.05 * o
    for i, (p, w) in enumerate(zip(ps, ws)):
        assert (p.detach() - w).abs().max().item() < 1e-6, i


def test_ademamix_fused_kernel_path_is_the_reference_update():
    """AdEMAMix's Adam part in torch's fused AdamW kernel (float32 params) follows apple/ml-ademamix's update,
    written out here, to float32 rounding over 6 steps with both warmups and weight decay."""
    from optbench.optim.ademamix import alpha_at, beta3_at

    gen = torch.Generator().manual_seed(14)
    init = [torch.randn(s, generator=gen) for s in [(24, 8), (5,), (3, 4, 5)]]
    grads = [[torch.randn(x.shape, generator=gen) for x in init] for _ in range(6)]
    lr, (b1, b2, b3), alpha, wd, eps = 1e-2, (0.9, 0.95, 0.999), 5.0, 0.1, 1e-8
    got = _run(lambda ps: AdEMAMix(ps, lr=lr, betas=(b1, b2, b3), alpha=alpha, beta3_warmup=4, alpha_warmup=4,
                                   weight_decay=wd), init, grads)
    for k, (x, p) in enumerate(zip(init, got)):
        w, m1, m2, v = x.clone(), torch.zeros_like(x), torch.zeros_like(x), torch.zeros_like(x)
        for t, gs in enumerate(grads, start=1):
            g = gs[k]
            m1.mul_(b1).add_(g, alpha=1 - b1)
            beta3 = beta3_at(t, b3, b1, 4)
            m2.mul_(beta3).add_(g, alpha=1 - beta3)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (v.sqrt() / (1 - b2**t) ** 0.5).add_(eps)
            update = (m1.div(1 - b1**t) + alpha_at(t, alpha, 4) * m2) / denom + wd * w
            w.add_(-lr * update)
        assert (p.detach() - w).abs().max().item() < 1e-6


def test_automatic_compile_choice():
    """compiled=None: on CPU only the elementwise updates (a cpu_min_numel is given), from that many elements in the
    group on, and only with a C++ compiler for inductor; True / False are taken as given."""
    from optbench.optim import _compiled

    small, big = [torch.zeros(8, 8)], [torch.zeros(64, 64), torch.zeros(64, 64)]  # 64 and 8192 elements
    assert _compiled.use_compiled(True, small) and not _compiled.use_compiled(False, big, 1)
    assert not _compiled.use_compiled(None, big)  # the Muon family: CUDA only
    assert not _compiled.use_compiled(None, small, 8192) and not _compiled.use_compiled(None, [], 1)
    assert _compiled.use_compiled(None, big, 8192) == (_compiled.cpp_compiler() is not None)
    _compiled.cpp_compiler.cache_clear()
    try:
        import unittest.mock as mock

        with mock.patch("shutil.which", return_value=None):
            assert _compiled.cpp_compiler() is None and not _compiled.use_compiled(None, big, 8192)
    finally:
        _compiled.cpp_compiler.cache_clear()


@pytest.mark.parametrize("make", ELEMENTWISE[:1] + ELEMENTWISE[2:3])
def test_automatic_compile_falls_back_to_eager_when_compiling_fails(make, monkeypatch):
    """Above the CPU threshold compiled=None compiles; if compiling fails it warns once and runs the eager update
    (the same result as compiled=False), where an explicit compiled=True raises."""
    from optbench.optim import _compiled, ademamix, schedulefree

    def broken(fn):
        def run(*args):
            raise RuntimeError("no toolchain")
        return run

    for module in (ademamix, schedulefree):
        monkeypatch.setattr(module, "CPU_AUTO_MIN_NUMEL", 1)
    monkeypatch.setattr(_compiled, "cpp_compiler", lambda: "c++")
    monkeypatch.setattr(_compiled, "compile_once", broken)
    monkeypatch.setattr(_compiled, "_FAILED", set())
    gen = torch.Generator().manual_seed(15)
    init = [torch.randn(s, generator=gen) for s in [(24, 8), (16, 16)]]
    grads = [[torch.randn(x.shape, generator=gen) for x in init] for _ in range(3)]
    with pytest.warns(RuntimeWarning, match="torch.compile failed") as seen:
        auto = _run(make, init, grads)
    assert len([w for w in seen if "torch.compile failed" in str(w.message)]) == 1
    eager = _run(lambda ps: make(ps, compiled=False), init, grads)
    assert all(torch.equal(a, b) for a, b in zip(auto, eager))
    with pytest.raises(RuntimeError, match="no toolchain"):
        _run(lambda ps: make(ps, compiled=True), init, grads)


@pytest.mark.parametrize("make", ELEMENTWISE[:1] + ELEMENTWISE[2:3])
def test_automatic_compile_runs_the_compiled_update_above_the_threshold(make, monkeypatch):
    """With the group above the CPU threshold, compiled=None goes through compile_once (here a stand-in that runs
    the graph's function eagerly, so no compiler is needed): the same update as the eager pieces to rounding."""
    from optbench.optim import _compiled, ademamix, schedulefree

    used = []
    for module in (ademamix, schedulefree):
        monkeypatch.setattr(module, "CPU_AUTO_MIN_NUMEL", 1)
    monkeypatch.setattr(_compiled, "cpp_compiler", lambda: "c++")
    monkeypatch.setattr(_compiled, "compile_once", lambda fn: used.append(fn.__name__) or fn)
    gen = torch.Generator().manual_seed(16)
    init = [torch.randn(s, generator=gen) for s in [(24, 8), (16, 16)]]
    grads = [[torch.randn(x.shape, generator=gen) for x in init] for _ in range(3)]
    auto = _run(make, init, grads)
    assert len(used) == 3 and used[0] in ("_ademamix_update", "_sf_update")
    eager = _run(lambda ps: make(ps, compiled=False), init, grads)
    assert max((a - b).abs().max().item() for a, b in zip(auto, eager)) < 1e-6


def test_ademamix_non_contiguous_gradient_takes_the_same_update(monkeypatch):
    """torch's fused AdamW kernel reads its tensors as contiguous (a transposed gradient silently gives a wrong
    update on CPU), so a piece with a non-contiguous tensor takes the plain arithmetic: the same result as the
    path without the kernel."""
    from optbench.optim import ademamix

    gen = torch.Generator().manual_seed(17)
    init = [torch.randn(8, 6, generator=gen)]
    grads = [[torch.randn(6, 8, generator=gen).T] for _ in range(3)]
    make = lambda ps: AdEMAMix(ps, lr=1e-2, weight_decay=0.1)  # noqa: E731
    with_kernel = _run(make, init, grads)
    monkeypatch.setattr(ademamix, "fused_is_same_update", lambda ps: False)
    without = _run(make, init, grads)
    assert (with_kernel[0] - without[0]).abs().max().item() < 1e-6
