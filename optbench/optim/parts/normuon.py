"""NorMuon variance normalisation: an Adafactor-like EMA of the orthogonalised update's mean square per row
(per column for a wide matrix), divided out.

    v_new <- mean_j O_ij^2 (rows >= cols)  or  mean_i O_ij^2 (rows < cols)
    v <- lerp(v, v_new, 1 - beta2);   O <- O / sqrt(max(v, eps))
    renorm = true: then O <- O ||O_before|| / max(||O||, eps)       (keep the Frobenius norm)

Source: Li et al. 2025, NorMuon (arXiv:2510.05491). ``renorm = false`` is NorMuonH's ``normuon_update``
(track-3 #8, PR #273; the hyperball drops the scale anyway); ``renorm = true`` is Skylight-001's "NorMuon-lite"
(#9, PR #274) and Contra-Muon's (#11). The official NorMuon class is the zoo optimizer ``normuon``.
"""

from __future__ import annotations

import torch

from optbench.optim.parts.base import Part, StepContext, check_range


class NorMuonVariance(Part):
    """Row/column second-moment normalisation of the update. State: ``normuon_v`` (float32)."""

    name = "normuon"
    stage = "transform"
    matrix_only = True
    knobs = {"beta2": 0.95, "eps": 1e-10, "renorm": False}

    def check_group(self, group: dict) -> None:
        super().check_group(group)
        check_range(self.name, "beta2", self.knob(group, "beta2"), 0.0, 1.0, hi_open=True)

    def transform(self, u: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        g = ctx.group
        eps = self.knob(g, "eps")
        per_row = u.size(-2) >= u.size(-1)
        v_new = (u * u).mean(dim=-1 if per_row else -2, keepdim=True)
        if "normuon_v" not in ctx.state:
            ctx.state["normuon_v"] = torch.zeros_like(v_new, dtype=torch.float32)
        v = ctx.state["normuon_v"]
        v.lerp_(v_new.float(), 1 - self.knob(g, "beta2"))
        if not self.knob(g, "renorm"):
            return u * v.clamp_min(eps).rsqrt()
        vnorm = u.norm()
        u = u * v.clamp_min(eps).rsqrt().to(u.dtype)
        return u * (vnorm / u.norm().clamp_min(eps))
