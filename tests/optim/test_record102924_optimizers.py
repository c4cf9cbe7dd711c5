"""The zoo's SOAP, Shampoo and Muon against the optimizers of the 10/29/24 four-way comparison
(KellerJordan/modded-nanogpt records/102924_Optimizers), at that comparison's settings.

tests/optim/reference/record102924_*.json hold trajectories (per step and parameter: norm and a probe projection)
that the comparison's own optimizer versions produced on a toy gradient stream (nikhilvyas/SOAP@bbce86e,
facebookresearch/optimizers@ad2809a DistributedShampoo); each file's `source` and `protocol` say how. The shapes
are too large for Shampoo's dim merging, like the record's 768 x 768 and 3072 x 768 matrices. The comparison's
Muon keeps the classic momentum sum; its update is derived here from the formulas in the log and compared with the
zoo's EMA-form Muon.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from optbench.optim.muon import Muon, newton_schulz, resolve_ns_schedule
from optbench.optim.recipe import load_recipe
from optbench.optim.shampoo import Shampoo
from optbench.optim.soap import SOAP

REF = Path(__file__).resolve().parent / "reference"


pytestmark = pytest.mark.usefixtures("one_thread")


def _hparams(recipe: str) -> dict:
    h = dict(load_recipe(recipe).hparams)
    if "betas" in h:
        h["betas"] = tuple(h["betas"])
    return h


def _trajectory(make, protocol: dict) -> list:
    torch.manual_seed(0)
    ps = [torch.nn.Parameter(torch.randn(*s) * 0.1) for s in protocol["shapes"]]
    probes = [torch.randn(p.shape, generator=torch.Generator().manual_seed(1000 + i)).double() for i, p in enumerate(ps)]
    opt, out = make(ps), []
    for t in range(protocol["steps"]):
        gen = torch.Generator().manual_seed(1000 + t)
        for p in ps:
            p.grad = (torch.randn(p.shape, generator=gen) + 0.1 * p.detach()) * protocol["scale"]
        opt.step()
        out.append([(p.detach().double().norm().item(), (p.detach().double() * q).sum().item())
                    for p, q in zip(ps, probes)])
    return out


@pytest.mark.parametrize("name, recipe, cls, tol", [
    ("shampoo", "speedrun-101824-shampoo", Shampoo, 2e-6),
    # the record's SOAP keeps the first moment in the original basis and projects it each step; the zoo's (a1e55353)
    # keeps it in the rotated basis and re-rotates it when the basis changes: equal in exact arithmetic
    ("soap", "speedrun-101824-soap", SOAP, 2e-6),
])
def test_zoo_matches_the_comparisons_optimizer(name, recipe, cls, tol):
    ref = json.loads((REF / f"record102924_{name}.json").read_text())
    ours = _trajectory(lambda ps: cls(ps, **_hparams(recipe)), ref["protocol"])
    start = _trajectory(lambda ps: torch.optim.SGD(ps, lr=0.0), {**ref["protocol"], "steps": 1})[0]
    for t, (mine, theirs) in enumerate(zip(ours, ref["trajectory"])):
        for i, ((norm, probe), r) in enumerate(zip(mine, theirs)):
            moved = abs(r["probe"] - start[i][1])  # how far the probe projection has travelled
            assert norm == pytest.approx(r["norm"], rel=tol), f"step {t} param {i} norm"
            assert abs(probe - r["probe"]) <= tol * (abs(r["probe"]) + moved), f"step {t} param {i} probe"


def test_zoo_muon_equals_the_comparisons_classic_momentum_muon():
    """The log's Muon: b <- mu b + g; u = g + mu b (Nesterov); X = u / (||u|| + 1e-7); 5 tuned quintic steps;
    update lr * X * sqrt(max(1, rows / cols)). The zoo keeps m = (1 - mu) b, so u differs by 1/(1 - mu) before the
    normalisation: the updates agree up to where the 1e-7 guard sits (fp32 here, to see the maths, not bf16)."""
    h = _hparams("speedrun-101824-muon")
    mu, lr = h["momentum"], h["lr"]
    schedule = resolve_ns_schedule(h["ns_coefficients"], None)
    torch.manual_seed(0)
    shapes = [(96, 32), (32, 96), (64, 64)]
    zoo_ps = [torch.nn.Parameter(torch.randn(*s) * 0.1) for s in shapes]
    ref_ps = [p.detach().clone() for p in zoo_ps]
    bufs = [torch.zeros_like(p) for p in ref_ps]
    opt = Muon(zoo_ps, lr=lr, momentum=mu, weight_decay=0.0, ns_coefficients=h["ns_coefficients"],
               ns_dtype=torch.float32)
    for t in range(10):
        gen = torch.Generator().manual_seed(500 + t)
        grads = [torch.randn(s, generator=gen) * 1e-3 for s in shapes]
        for p, g in zip(zoo_ps, grads):
            p.grad = g.clone()
        opt.step()
        for w, b, g in zip(ref_ps, bufs, grads):
            b.mul_(mu).add_(g)
            u = newton_schulz(g + mu * b, schedule, torch.float32)
            w.add_(u * max(1, w.size(0) / w.size(1)) ** 0.5, alpha=-lr)
        for p, w in zip(zoo_ps, ref_ps):
            torch.testing.assert_close(p.detach(), w, rtol=0, atol=2e-6)


def test_shampoo_survives_rank_deficient_factors_at_epsilon_1e_12():
    """A 256 x 4 gradient gives a 256 x 256 left factor of rank 4: fp32 eigh returns eigenvalues around -1e-6 for
    its null space. Shifting them by (epsilon - lambda_min) in one step can round the smallest to 0 (an infinite
    inverse root); both DistributedShampoo versions shift in two steps (to exactly 0, then + epsilon)."""
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(256, 4))
    opt = Shampoo([p], lr=1e-3, betas=(0.95, 0.95), epsilon=1e-12, precondition_frequency=1, merge_dims=False,
                  grafting="adam", grafting_beta2=0.95, grafting_epsilon=1e-8)
    for t in range(6):
        p.grad = torch.randn(256, 4, generator=torch.Generator().manual_seed(t))
        opt.step()
    assert torch.isfinite(p).all()
    inv = opt.state[p]["inv_factors"][0][0]
    assert torch.isfinite(inv).all() and inv.abs().max() > 1e2  # the null space got epsilon^(-1/4)-sized weight
