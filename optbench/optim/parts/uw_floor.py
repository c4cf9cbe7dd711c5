"""u/w floor: if the update is small next to the weight, scale it up to a fixed ratio (weight-decay-free norm
control for Muon-like updates).

    s <- target ||W|| / ||u||   if ||u|| / ||W|| < target,   else 1       (norms clamped below at 1e-8)
    u <- s u

Source: track-3 result #9 Skylight-001 (PR #274, @kumarkrishna, target 0.35); the record lineage uses 0.3825
(#29/#30 onwards). The per-row form is the ``row_floor`` part.
"""

from __future__ import annotations

import torch

from optbench.optim.parts.base import Part, StepContext


class UWFloor(Part):
    """Scalar update/weight floor on the Frobenius norms."""

    name = "uw_floor"
    stage = "transform"
    knobs = {"target": 0.35}

    def transform(self, u: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        target = self.knob(ctx.group, "target")
        p_fro = ctx.p.float().norm().clamp_min(1e-8)
        u_fro = u.float().norm().clamp_min(1e-8)
        scale = torch.where(u_fro / p_fro < target, target * p_fro / u_fro, torch.ones_like(p_fro))
        return u * scale.to(u.dtype)
