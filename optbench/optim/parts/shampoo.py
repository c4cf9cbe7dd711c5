"""Shampoo base: momentum preconditioned on both sides by inverse roots of EMAs of the gradient's Gram matrices.

    m <- lerp(m, g, 1 - beta1);   L <- lerp(L, g g^T, 1 - beta2);   R <- lerp(R, g^T g, 1 - beta2)
    every `precondition_frequency` steps:  P_L <- L^(-power),  P_R <- R^(-power)   (eigh; pseudo-inverse: eigenvalues
                                           below eps * the largest are dropped)
    u <- P_L m P_R

With beta1 = beta2 = 0, power 1/4 and a full-rank g, u = U V^T for g = U S V^T: Muon's orthogonalised gradient,
i.e. the spectral descent of track-3 result #22 ("Shampoo(betas=(0, 0), precond_freq=1, power=-1/4)").
Source: Gupta, Koren & Singer 2018, Shampoo (arXiv:1802.09568); track-3 results #21 (power -1/4, lr .0015, wd .2,
betas (.9, .95), precondition every 5 steps; DistributedShampoo there, the zoo's ``shampoo`` here) and #22.
"""

from __future__ import annotations

import torch

from optbench.optim.parts.base import Part, StepContext, check_range


def _inverse_root(A: torch.Tensor, power: float, eps: float) -> torch.Tensor:
    lam, Q = torch.linalg.eigh(A)
    keep = lam > eps * lam.max().clamp_min(0)
    inv = torch.where(keep, lam.clamp_min(torch.finfo(lam.dtype).tiny) ** -power, torch.zeros_like(lam))
    return (Q * inv) @ Q.mT


class Shampoo(Part):
    """Two-sided Shampoo direction (2-D parameters). State: ``shampoo_m``, ``shampoo_l``, ``shampoo_r`` and the
    cached inverse roots (float32)."""

    name = "shampoo"
    stage = "base"
    matrix_only = True
    knobs = {"beta1": 0.9, "beta2": 0.95, "power": 0.25, "eps": 1e-8, "precondition_frequency": 1}

    def check_group(self, group: dict) -> None:
        super().check_group(group)
        for k in ("beta1", "beta2"):
            check_range(self.name, k, self.knob(group, k), 0.0, 1.0, hi_open=True)
        check_range(self.name, "power", self.knob(group, "power"), 0.0, 1.0)
        f = self.knob(group, "precondition_frequency")
        if not (isinstance(f, int) and f >= 1):
            raise ValueError(f"shampoo.precondition_frequency: must be an integer >= 1, got {f!r}")

    def direction(self, ctx: StepContext) -> torch.Tensor:
        st, grp, g = ctx.state, ctx.group, ctx.grad.float()
        if "shampoo_m" not in st:
            st["shampoo_m"] = torch.zeros_like(g)
            st["shampoo_l"] = torch.zeros(g.size(0), g.size(0), dtype=g.dtype, device=g.device)
            st["shampoo_r"] = torch.zeros(g.size(1), g.size(1), dtype=g.dtype, device=g.device)
        b1, b2 = self.knob(grp, "beta1"), self.knob(grp, "beta2")
        st["shampoo_m"].lerp_(g, 1 - b1)
        st["shampoo_l"].lerp_(g @ g.T, 1 - b2)
        st["shampoo_r"].lerp_(g.T @ g, 1 - b2)
        if ctx.step % self.knob(grp, "precondition_frequency") == 0:
            p, eps = self.knob(grp, "power"), self.knob(grp, "eps")
            st["shampoo_pl"] = _inverse_root(st["shampoo_l"], p, eps)
            st["shampoo_pr"] = _inverse_root(st["shampoo_r"], p, eps)
        return (st["shampoo_pl"] @ st["shampoo_m"] @ st["shampoo_pr"]).to(ctx.p.dtype)
