"""Muon (track-3 variant): conformance with the reference trajectories, NS maths, state, errors, sharding."""

from __future__ import annotations

import copy
import io
import socket
import time

import pytest
import torch

from optbench.optim import get, info
from optbench.optim.muon import NS_PRESETS, Muon, newton_schulz, resolve_ns_schedule
from optbench.optim.adamuon import AdaMuon
from optbench.optim.normuon import NorMuon

from .trajectory import check_initial_state, load_reference, max_abs_deviation

ATOL_FP32 = 1e-6  # README: ~10x the float64 gap of the fp32-NS references


def _explicit(ref) -> dict:
    return dict(ref["hparams"]["explicit"])  # track-3 files say mu=, KellerJordan/Muon files momentum=


# ---------------------------------------------------------------- conformance


@pytest.mark.parametrize(
    "name, extra",
    [
        ("muon_track3_fp32ns", {}),  # 12 x (2, -1.5, 0.5), the class default
        ("muon_fp32ns", {"ns_coefficients": "tuned5"}),  # KellerJordan/Muon: 5 x (3.4445, -4.7750, 2.0315)
    ],
)
def test_conformance_fp32_ns(trajectories_dir, name, extra):
    ref = load_reference(trajectories_dir, name)
    check_initial_state(ref)
    kw = {**_explicit(ref), **extra, "ns_dtype": torch.float32}
    devs = max_abs_deviation(ref, lambda ps: Muon(ps, **kw))
    assert len(devs) == 20
    assert max(devs) <= ATOL_FP32, devs


@pytest.mark.parametrize(
    "name, fp32_name, extra",
    [("muon_track3", "muon_track3_fp32ns", {}), ("muon", "muon_fp32ns", {"ns_coefficients": "tuned5"})],
)
def test_conformance_bf16_ns(trajectories_dir, name, fp32_name, extra):
    """bf16 NS: CPU bf16 matmul kernels differ between machines (ISA, blocking), and one bf16 ulp (2^-8
    relative) of an O(1) NS entry moves a parameter by ~lr * 4e-3 = 8e-5, which momentum then carries along.
    So exact agreement is not expected. The tolerance is the gap between the reference's own bf16 and fp32-NS
    trajectories, read from the files: a bf16 implementation must at least be closer to the bf16 reference than
    an exact fp32 one is (measured here: 1.6e-4 for track3 vs a 3.7e-4 gap, 7.8e-4 for tuned5 vs 1.9e-3)."""
    ref = load_reference(trajectories_dir, name)
    ref32 = load_reference(trajectories_dir, fp32_name)
    gap = max(
        (a[n] - b[n]).abs().max().item()
        for a, b in zip(ref["params_after_step"], ref32["params_after_step"])
        for n in a
    )
    devs = max_abs_deviation(ref, lambda ps: Muon(ps, **_explicit(ref), **extra))  # ns_dtype defaults to bf16
    assert devs[0] <= 1e-6, devs  # the first step agrees (no accumulated drift yet)
    assert max(devs) < gap, (max(devs), gap)


def test_conformance_normuon_fp32_ns(trajectories_dir):
    ref = load_reference(trajectories_dir, "normuon_fp32ns")
    devs = max_abs_deviation(ref, lambda ps: NorMuon(ps, **_explicit(ref), ns_dtype=torch.float32))
    assert max(devs) <= ATOL_FP32, devs


# ---------------------------------------------------------------- maths


def test_track3_ns_gives_orthogonal_factor():
    g = torch.Generator().manual_seed(0)
    for shape in [(64, 32), (32, 64), (48, 48)]:
        G = torch.randn(shape, generator=g)
        O = newton_schulz(G, resolve_ns_schedule((2.0, -1.5, 0.5), None), torch.float32)
        assert O.shape == G.shape and O.dtype == torch.float32
        s = torch.linalg.svdvals(O)
        assert (s - 1).abs().max().item() < 1e-2, s
        # and it is the polar factor U V^T of G
        U, _, Vh = torch.linalg.svd(G, full_matrices=False)
        assert (O - U @ Vh).abs().max().item() < 1e-2


def test_tuned5_ns_is_only_roughly_orthogonal():
    G = torch.randn(64, 32, generator=torch.Generator().manual_seed(1))
    s = torch.linalg.svdvals(newton_schulz(G, resolve_ns_schedule("tuned5", None), torch.float32))
    assert 0.5 < s.min().item() and s.max().item() < 1.25
    assert (s - 1).abs().max().item() > 1e-2  # does not converge to 1, by design


def test_presets_and_schedules():
    assert resolve_ns_schedule((2, -1.5, 0.5), None) == [(2.0, -1.5, 0.5)] * 12
    assert resolve_ns_schedule((2, -1.5, 0.5), 3) == [(2.0, -1.5, 0.5)] * 3
    assert resolve_ns_schedule("track3", None) == [(2.0, -1.5, 0.5)] * 12
    assert resolve_ns_schedule("tuned5", None) == [(3.4445, -4.7750, 2.0315)] * 5
    med = resolve_ns_schedule("medium", None)
    assert len(med) == 5 and med[0] == (4.0848, -6.8946, 2.9270) and med[4] == (2.8366, -3.0525, 1.2012)
    assert len(set(med)) == 5
    assert resolve_ns_schedule([(1, 2, 3), (4, 5, 6)], None) == [(1.0, 2.0, 3.0), (4.0, 5.0, 6.0)]
    assert set(NS_PRESETS) >= {"track3", "tuned5", "medium"}
    with pytest.raises(ValueError, match="unknown preset"):
        resolve_ns_schedule("fast", None)
    with pytest.raises(ValueError, match="contradicts"):
        resolve_ns_schedule("medium", 7)
    with pytest.raises(ValueError, match="three numbers"):
        resolve_ns_schedule([(1, 2)], None)


def _one_step_update(shape, **kw) -> tuple[torch.Tensor, torch.Tensor]:
    """(p_before - p_after, grad) for one step with lr=1, no momentum (u = g)."""
    gen = torch.Generator().manual_seed(3)
    p = torch.nn.Parameter(torch.randn(shape, generator=gen))
    g = torch.randn(shape, generator=gen)
    p.grad = g.clone()
    before = p.detach().clone()
    Muon([p], lr=1.0, momentum=0.0, ns_dtype=torch.float32, **kw).step()
    return before - p.detach(), g


def test_shape_scale_is_sqrt_rows_over_cols_for_tall_only():
    sched = resolve_ns_schedule((2.0, -1.5, 0.5), None)
    delta, g = _one_step_update((16, 4))  # 4:1 like mlp.fc (3072 x 768): scale exactly 2
    assert torch.allclose(delta, 2 * newton_schulz(g, sched, torch.float32), rtol=0, atol=1e-6)
    ratio = delta.norm() / newton_schulz(g, sched, torch.float32).norm()
    assert abs(ratio.item() - 2.0) < 1e-6
    delta, g = _one_step_update((4, 16))  # wide: no scaling
    assert torch.allclose(delta, newton_schulz(g, sched, torch.float32), rtol=0, atol=1e-6)


def test_step_matches_equations_with_momentum_and_decay():
    gen = torch.Generator().manual_seed(5)
    p = torch.nn.Parameter(torch.randn(8, 12, generator=gen))
    opt = Muon([p], lr=0.1, weight_decay=0.5, momentum=0.9, ns_dtype=torch.float32)
    sched = resolve_ns_schedule((2.0, -1.5, 0.5), None)
    w = p.detach().clone()
    m = torch.zeros_like(w)
    for _ in range(3):
        g = torch.randn(8, 12, generator=gen)
        p.grad = g.clone()
        opt.step()
        m = 0.9 * m + 0.1 * g
        u = 0.1 * g + 0.9 * m
        w = w * (1 - 0.1 * 0.5) - 0.1 * newton_schulz(u, sched, torch.float32)
        assert torch.allclose(p.detach(), w, rtol=0, atol=1e-5)


def test_grad_is_not_modified_and_lr_read_from_group():
    p = torch.nn.Parameter(torch.randn(6, 10))
    g = torch.randn(6, 10)
    p.grad = g.clone()
    opt = Muon([p], lr=0.1)
    opt.param_groups[0]["lr"] = 0.0  # what a scheduler does
    before = p.detach().clone()
    opt.step()
    assert torch.equal(p.grad, g), "Muon must not write the Nesterov look-ahead into p.grad"
    assert torch.equal(p.detach(), before)  # lr 0 from the group: no move
    opt.param_groups[0]["lr"] = 0.1
    opt.step()
    assert not torch.equal(p.detach(), before)


def test_conv_like_param_is_flattened():
    gen = torch.Generator().manual_seed(7)
    w = torch.randn(6, 2, 3, 3, generator=gen)
    g = torch.randn(6, 2, 3, 3, generator=gen)
    p4 = torch.nn.Parameter(w.clone())
    p2 = torch.nn.Parameter(w.reshape(6, -1).clone())
    p4.grad, p2.grad = g.clone(), g.reshape(6, -1).clone()
    Muon([p4], ns_dtype=torch.float32).step()
    Muon([p2], ns_dtype=torch.float32).step()
    assert torch.equal(p4.detach().reshape(6, -1), p2.detach())


def test_bf16_params():
    p = torch.nn.Parameter(torch.randn(16, 8).bfloat16())
    opt = Muon([p], lr=0.02)
    before = p.detach().clone()
    for _ in range(3):
        p.grad = torch.randn(16, 8).bfloat16()
        opt.step()
    assert p.dtype == torch.bfloat16 and torch.isfinite(p).all()
    assert opt.state[p]["momentum_buffer"].dtype == torch.bfloat16  # as upstream: zeros_like(p)
    assert not torch.equal(p.detach(), before)


def _run(opt, ps, grads):
    for gs in grads:
        for p, g in zip(ps, gs):
            p.grad = g.clone()
        opt.step()


def test_state_dict_round_trip():
    gen = torch.Generator().manual_seed(11)
    shapes = [(12, 6), (6, 12)]
    grads = [[torch.randn(s, generator=gen) for s in shapes] for _ in range(6)]
    ps = [torch.nn.Parameter(torch.randn(s, generator=gen)) for s in shapes]
    opt = Muon(ps, lr=0.03, weight_decay=0.1, ns_coefficients="tuned5")
    _run(opt, ps, grads[:3])
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)  # what a checkpoint does
    buf.seek(0)
    sd = torch.load(buf, weights_only=True)
    qs = [torch.nn.Parameter(p.detach().clone()) for p in ps]
    opt2 = Muon(qs, lr=0.5)  # different settings: all must come back from the state dict
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["ns_coefficients"] == "tuned5" and opt2.param_groups[0]["lr"] == 0.03
    _run(opt, ps, grads[3:])
    _run(opt2, qs, grads[3:])
    for p, q in zip(ps, qs):
        assert torch.equal(p, q)


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"lr": -0.1}, "lr"),
        ({"momentum": 1.0}, "momentum"),
        ({"momentum": -0.1}, "momentum"),
        ({"mu": 1.5}, "momentum"),
        ({"weight_decay": -1.0}, "weight_decay"),
        ({"ns_steps": 0}, "ns_steps"),
        ({"ns_coefficients": "nope"}, "preset"),
        ({"ns_dtype": torch.int32}, "ns_dtype"),
    ],
)
def test_bad_arguments_raise_value_error(kw, match):
    with pytest.raises(ValueError, match=match):
        Muon([torch.nn.Parameter(torch.zeros(4, 4))], **kw)


def test_vector_param_rejected():
    with pytest.raises(ValueError, match="ndim >= 2"):
        Muon([torch.nn.Parameter(torch.zeros(4))])


def test_param_without_grad_is_left_alone_and_groups_checked():
    a, b = torch.nn.Parameter(torch.randn(4, 6)), torch.nn.Parameter(torch.randn(6, 4))
    opt = Muon([a, b])
    a.grad = torch.randn(4, 6)
    before = b.detach().clone()
    opt.step()
    assert torch.equal(b.detach(), before) and len(opt.state[b]) == 0
    with pytest.raises(ValueError, match="lr"):
        opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(3, 3))], "lr": -1.0})
    assert len(opt.param_groups) == 1


def test_normuon_rows_equalised_and_norm_kept():
    """beta2=0, momentum=0: s = row-mean(O^2), so every row of the update has the same norm and the update's
    Frobenius norm is that of NS(g) (times the tall-matrix scale)."""
    gen = torch.Generator().manual_seed(8)
    p = torch.nn.Parameter(torch.randn(24, 6, generator=gen))
    g = torch.randn(24, 6, generator=gen)
    p.grad = g.clone()
    before = p.detach().clone()
    NorMuon([p], lr=1.0, momentum=0.0, beta2=0.0, ns_dtype=torch.float32).step()
    delta = before - p.detach()
    rows = delta.norm(dim=1)
    assert (rows / rows.mean() - 1).abs().max().item() < 1e-5
    O = newton_schulz(g, resolve_ns_schedule("tuned5", None), torch.float32)
    assert abs(delta.norm().item() - 2 * O.norm().item()) < 1e-4 * O.norm().item()  # 24:6 -> scale 2


def test_normuon_fp32_params_with_bf16_ns_and_state_round_trip():
    """The official code crashes here (fp32 buffer lerp'd with a bf16 NS output); ours casts back."""
    gen = torch.Generator().manual_seed(9)
    shapes = [(10, 4), (4, 10)]
    grads = [[torch.randn(s, generator=gen) for s in shapes] for _ in range(5)]
    ps = [torch.nn.Parameter(torch.randn(s, generator=gen)) for s in shapes]
    opt = NorMuon(ps, weight_decay=0.1)
    _run(opt, ps, grads[:2])
    assert opt.state[ps[0]]["second_momentum_buffer"].shape == (10, 1)
    qs = [torch.nn.Parameter(p.detach().clone()) for p in ps]
    opt2 = NorMuon(qs)
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
    _run(opt, ps, grads[2:])
    _run(opt2, qs, grads[2:])
    assert all(torch.equal(p, q) for p, q in zip(ps, qs))
    with pytest.raises(ValueError, match="beta2"):
        NorMuon([torch.nn.Parameter(torch.zeros(3, 3))], beta2=1.0)


def test_adamuon_matches_its_equations():
    gen = torch.Generator().manual_seed(12)
    p = torch.nn.Parameter(torch.randn(12, 5, generator=gen))
    opt = AdaMuon([p], lr=0.05, weight_decay=0.1, momentum=0.9, ns_dtype=torch.float32)
    sched = resolve_ns_schedule("tuned5", None)
    w, m, v = p.detach().clone(), torch.zeros(12, 5), torch.zeros(12, 5)
    for _ in range(3):
        g = torch.randn(12, 5, generator=gen)
        p.grad = g.clone()
        opt.step()
        m = 0.9 * m + 0.1 * g
        O = newton_schulz(torch.sign(0.1 * g + 0.9 * m), sched, torch.float32)
        v = 0.9 * v + 0.1 * O * O
        O = O / (v.sqrt() + 1e-8)
        O = 0.2 * (12 * 5) ** 0.5 * O / (O.norm() + 1e-8)
        assert abs(O.pow(2).mean().sqrt().item() - 0.2) < 1e-5  # RMS-aligned
        w = w * (1 - 0.05 * 0.1) - 0.05 * O
        assert torch.allclose(p.detach(), w, rtol=0, atol=1e-5)


def test_adamuon_top_level_variant_and_round_trip():
    """beta2=0.999 (bias corrected) and sign_input=False: the repository's top-level adamuon.py variant."""
    gen = torch.Generator().manual_seed(13)
    p = torch.nn.Parameter(torch.randn(6, 9, generator=gen))
    g = torch.randn(6, 9, generator=gen)
    p.grad = g.clone()
    w = p.detach().clone()
    opt = AdaMuon([p], lr=0.1, weight_decay=0.0, momentum=0.0, beta2=0.999, sign_input=False, ns_dtype=torch.float32)
    opt.step()
    O = newton_schulz(g, resolve_ns_schedule("tuned5", None), torch.float32)
    O = O / ((0.001 * O * O / 0.001).sqrt() + 1e-8)  # first step: v_hat = O^2
    O = 0.2 * 54**0.5 * O / (O.norm() + 1e-8)
    assert torch.allclose(p.detach(), w - 0.1 * O, rtol=0, atol=1e-5)
    q = torch.nn.Parameter(p.detach().clone())
    opt2 = AdaMuon([q])
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
    g2 = torch.randn(6, 9, generator=gen)
    p.grad, q.grad = g2.clone(), g2.clone()
    opt.step()
    opt2.step()
    assert torch.equal(p, q)
    with pytest.raises(ValueError, match="beta2"):
        AdaMuon([torch.nn.Parameter(torch.zeros(3, 3))], beta2=1.0)


def test_registry_entry():
    assert get("muon") is Muon
    i = info("muon")
    assert i.matrix_only and "modded-nanogpt" in i.reference
    d = i.defaults()
    assert d["lr"] == 0.02 and d["momentum"] == 0.95 and d["ns_coefficients"] == (2.0, -1.5, 0.5)
    assert get("normuon") is NorMuon and info("normuon").matrix_only
    assert get("adamuon") is AdaMuon and info("adamuon").matrix_only


# ---------------------------------------------------------------- distributed (2 gloo ranks on CPU)

DIST_SHAPES = [(8, 16), (16, 8), (4, 4), (16, 8), (12, 4)]  # sorted: (16,8),(16,8) | (12,4),(8,16) | (4,4)


def _dist_problem():
    gen = torch.Generator().manual_seed(21)
    init = [torch.randn(s, generator=gen) for s in DIST_SHAPES]
    grads = [[torch.randn(s, generator=gen) for s in DIST_SHAPES] for _ in range(4)]
    return init, grads


OPTS = {"muon": Muon, "normuon": NorMuon, "adamuon": AdaMuon}


def _dist_worker(rank: int, world_size: int, port: int, out_dir: str, name: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        init, grads = _dist_problem()
        ps = [torch.nn.Parameter(w.clone()) for w in init]
        opt = OPTS[name](ps, lr=0.05, weight_decay=0.1, ns_dtype=torch.float32)
        _run(opt, ps, grads)
        owned = [i for i, p in enumerate(ps) if len(opt.state[p]) > 0]
        torch.save({"params": [p.detach().clone() for p in ps], "owned": owned}, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("name", sorted(OPTS))
def test_sharded_matches_single_process(tmp_path, name):
    import torch.multiprocessing as mp

    init, grads = _dist_problem()
    ps = [torch.nn.Parameter(w.clone()) for w in init]
    opt = OPTS[name](ps, lr=0.05, weight_decay=0.1, ns_dtype=torch.float32)
    _run(opt, ps, grads)

    # fork: the children inherit the imported modules (spawn would re-import torch twice, ~15 s here)
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    ctx = mp.start_processes(
        _dist_worker, args=(2, _free_port(), str(tmp_path), name), nprocs=2, join=False, start_method=method
    )
    deadline = time.monotonic() + 120
    while not ctx.join(timeout=1):  # raises if a rank failed
        if time.monotonic() > deadline:
            for proc in ctx.processes:
                proc.kill()
            pytest.fail("the 2-rank gloo run did not finish within 120 s")
    res = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    for r in range(2):
        for p, q in zip(ps, res[r]["params"]):
            assert (p.detach() - q).abs().max().item() < 1e-6
    # ownership: sorted by shape descending (stable), round-robin over ranks
    order = sorted(range(len(DIST_SHAPES)), key=lambda i: DIST_SHAPES[i], reverse=True)
    expect = {r: sorted(order[r::2]) for r in range(2)}
    assert res[0]["owned"] == expect[0] and res[1]["owned"] == expect[1]
    assert not set(res[0]["owned"]) & set(res[1]["owned"])



def test_nd_mode_batch_orthogonalises_each_stacked_matrix():
    from optbench.optim.muon import Muon

    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.zeros(4, 16, 16))
    g = torch.randn(4, 16, 16)
    w.grad = g.clone()
    Muon([w], lr=1.0, momentum=0.0, nesterov=False, ns_dtype=torch.float32, nd_mode="batch").step()
    for i in range(4):
        s = torch.linalg.svdvals(-w.detach()[i])
        assert torch.allclose(s, torch.ones(16), atol=1e-2)
    flat = torch.nn.Parameter(torch.zeros(4, 16, 16))
    flat.grad = g.clone()
    Muon([flat], lr=1.0, momentum=0.0, nesterov=False, ns_dtype=torch.float32).step()
    assert not torch.allclose(flat, w, atol=1e-3)  # (4, 256) flattening is a different update
    with pytest.raises(ValueError, match="nd_mode"):
        Muon([w], nd_mode="stack")
