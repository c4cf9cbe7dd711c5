"""Cautious weight decay: decay only the coordinates the step already shrinks, after the step.

    mask <- 1[u * W > 0]            (computed before the step: -lr u moves those W_ij toward 0)
    W <- W (1 - lr wd mask)         (after the apply part, so after the record's radius pin)

Source: Chen et al. 2025, Cautious Weight Decay (arXiv:2510.12402); track-3 PR #265 (@alint77); the post-pin
form with wd = 0.025 is record #46 (PR #328, ``CWD=0.025 CWD_POST=1``).
"""

from __future__ import annotations

import torch

from optbench.optim.parts.base import Part, StepContext, check_range


class CautiousWeightDecay(Part):
    """Sign-gated decoupled decay, after the apply part."""

    name = "cautious_wd"
    stage = "post"
    knobs = {"wd": 0.025}

    def check_group(self, group: dict) -> None:
        super().check_group(group)
        check_range(self.name, "wd", self.knob(group, "wd"), 0.0)

    def before(self, u: torch.Tensor, ctx: StepContext) -> None:
        ctx.memo["cautious_mask"] = (u.float() * ctx.p.float() > 0).to(ctx.p.dtype)

    def after(self, ctx: StepContext) -> None:
        ctx.p.mul_(1.0 - (ctx.lr * self.knob(ctx.group, "wd")) * ctx.memo.pop("cautious_mask"))
