"""Row floor: the u/w floor per output row; each row whose update is small next to its weight row is lifted.

    f_i <- max(1, target ||W_i|| / ||u_i||) ^ rho           (row norms clamped below at 1e-8)
    u_i <- f_i u_i
    frob = true: then u <- u g / ||u||, g = target ||W|| if ||u_old|| / ||W|| < target else ||u_old||

Source: track-3 record #46 (PR #328, @ypwang61, ``ROWFLOOR=1 ROWFLOOR_RHO=1.0 ROWFLOOR_FROB=0``, target 0.3825):
"a per-output-row generalization of the scalar u/w-floor" of #9. With the radius pin after it only the row
shape survives.
"""

from __future__ import annotations

import torch

from optbench.optim.parts.base import Part, StepContext


class RowFloor(Part):
    """Per-row update/weight floor (2-D parameters)."""

    name = "row_floor"
    stage = "transform"
    matrix_only = True
    knobs = {"target": 0.3825, "rho": 1.0, "frob": False}

    def transform(self, u: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        target, p = self.knob(ctx.group, "target"), ctx.p
        r_row = p.float().norm(dim=1, keepdim=True).clamp_min(1e-8)
        s_row = u.float().norm(dim=1, keepdim=True).clamp_min(1e-8)
        f_row = torch.clamp(target * r_row / s_row, min=1.0).pow(self.knob(ctx.group, "rho"))
        u2 = u.float() * f_row
        if self.knob(ctx.group, "frob"):
            p_fro = p.float().norm().clamp_min(1e-8)
            u_fro = u.float().norm().clamp_min(1e-8)
            g_mag = torch.where(u_fro / p_fro < target, target * p_fro, u_fro)
            u2 = u2 * (g_mag / u2.norm().clamp_min(1e-8))
        return u2.to(u.dtype)
