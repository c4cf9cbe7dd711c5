"""Contra-Muon: subtract a multiple of the operator-normalised pre-orthogonalisation update from the polar factor,
keeping the polar factor's Frobenius norm.

    G~ <- u / ||u||_2              (||u||_2 from `power_iters` power iterations; u = the input of orthogonalize)
    O' <- O - (coeff / 2) G~;      O <- O' ||O||_F / max(||O'||_F, 1e-10)

Source: nilin/contra-muon (github.com/nilin/contra-muon); track-3 result #11 (PR #275, CONTRA_MUON = 0.4),
also in #14-#29. Needs the ``orthogonalize`` part before it and runs before ``aspect_scale``.
"""

from __future__ import annotations

import torch

from optbench.optim.parts.base import Part, StepContext


def unit_operator_norm(G: torch.Tensor, iters: int, eps: float = 1e-10) -> torch.Tensor:
    """G divided by its spectral norm, estimated by power iteration from the all-ones vector."""
    X = G.float()
    v = torch.ones(X.size(-1), dtype=X.dtype, device=X.device)
    v = v / torch.clamp(v.norm(), min=eps)
    for _ in range(iters):
        w = X @ v
        w = w / torch.clamp(w.norm(), min=eps)
        v = X.mT @ w
        v = v / torch.clamp(v.norm(), min=eps)
    return G / torch.clamp((X @ v).norm(), min=eps).to(G.dtype)


class ContraMuon(Part):
    """Polar factor minus (coeff/2) x the operator-normalised momentum update, Frobenius norm kept."""

    name = "contra_muon"
    stage = "transform"
    matrix_only = True
    signed = frozenset({"coeff"})  # coeff < 0 adds the momentum instead
    knobs = {"coeff": 0.4, "power_iters": 5}

    def transform(self, u: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        pre = ctx.memo.get("pre_ortho")
        if pre is None:
            raise ValueError("contra_muon: needs the orthogonalize part before it")
        ng = unit_operator_norm(pre.clone(), self.knob(ctx.group, "power_iters"))
        fro = u.norm()
        u = u - self.knob(ctx.group, "coeff") / 2 * ng
        return u * fro / torch.clamp(u.norm(), min=1e-10)
