"""Radial brake: split the update into its parts along and across W; damp the part that would grow ||W||.

    c <- <u, W> / max(||W||^2, eps);   radial = c W;   tangential = u - radial
    u <- tangential + s radial,   s = outward (c < 0: the step -lr u points away from 0) or inward (c >= 0)

Source: track-3 result #29 (PR #294, @nilin, ``scale_radial_update``: outward 0.5, inward 1.0), kept in the
record #46 stack ("dampens outward radial updates before the u/w floor").
"""

from __future__ import annotations

import torch

from optbench.optim.parts.base import Part, StepContext


class RadialBrake(Part):
    """Scale the outward radial component of the update."""

    name = "radial_brake"
    stage = "transform"
    knobs = {"outward": 0.5, "inward": 1.0, "eps": 1e-12}

    def transform(self, u: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        uf, pf = u.float(), ctx.p.float()
        coeff = (uf * pf).sum() / (pf * pf).sum().clamp_min(self.knob(ctx.group, "eps"))
        radial = coeff * pf
        tangential = uf - radial
        scale = torch.where(coeff < 0, uf.new_tensor(self.knob(ctx.group, "outward")),
                            uf.new_tensor(self.knob(ctx.group, "inward")))
        return (tangential + scale * radial).to(u.dtype)
