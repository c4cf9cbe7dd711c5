"""Radius pin: take the step, then rescale W to the radius that the update's radial part alone would give.

    r <- max(||W||, eps) - lr <u, W> / max(||W||, eps)      (first-order radius change of W - lr u)
    W <- W - lr u;   W <- W r / max(||W||, eps)

The finite tangential step would grow ||W|| by O(lr^2); the pin removes that drift while keeping the direction.
Source: track-3 result #29 (PR #294, @nilin, ``target_radius_after_update`` / ``rescale_to_radius``), kept in
the record #46 stack. Usually follows ``radial_brake`` and a u/w floor.
"""

from __future__ import annotations

import torch

from optbench.optim.parts.base import Part, StepContext


class RadiusPin(Part):
    """Step, then rescale to the first-order target radius (apply part)."""

    name = "radius_pin"
    stage = "apply"
    knobs = {"eps": 1e-8}

    def apply(self, u: torch.Tensor, ctx: StepContext) -> None:
        eps, p, lr = self.knob(ctx.group, "eps"), ctx.p, ctx.lr
        pf, uf = p.float(), u.float()
        before = pf.norm().clamp_min(eps)
        target = (before + (-lr * (uf * pf).sum() / before)).clamp_min(eps)
        p.add_(u, alpha=-lr)
        p.mul_((target / p.float().norm().clamp_min(eps)).to(p.dtype))
