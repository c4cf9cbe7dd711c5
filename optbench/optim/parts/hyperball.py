"""Hyperball projection: a step of size lr ||W|| along the update, then back onto the sphere of radius ||W||.

    W' <- W - lr u ||W|| / max(||u||, eps)
    W  <- W' ||W|| / max(||W'||, eps)                  (Frobenius norms; ||W|| never changes)

Source: Wen et al., "Fantastic Pretraining Optimizers and Where to Find Them 2.1: Hyperball Optimization"
(psychedelic-sunstone-851.notion.site); track-3 results #4 AdamH, #5 MuonH, #8 NorMuonH (PRs #272, #267, #273,
``scale_invariant_update_``), #33 PSGD-Kron-H (PR #316). Replaces weight decay (the norm cannot grow), so the
weights need a non-zero init.
"""

from __future__ import annotations

import torch

from optbench.optim.parts.base import Part, StepContext


class Hyperball(Part):
    """Norm-preserving step (apply part)."""

    name = "hyperball"
    stage = "apply"
    knobs = {"eps": 1e-10}

    def apply(self, u: torch.Tensor, ctx: StepContext) -> None:
        eps, p = self.knob(ctx.group, "eps"), ctx.p
        p_norm = p.norm()
        new = p - ctx.lr * u * p_norm / torch.clamp(u.norm(), min=eps)
        p.copy_(new / torch.clamp(new.norm(), min=eps) * p_norm)
