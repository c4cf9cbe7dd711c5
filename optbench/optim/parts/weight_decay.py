"""Decoupled weight decay, applied before the step (as track-3 Muon and torch AdamW do).

    W <- W (1 - lr wd);   then the apply part moves W by the update

Source: Loshchilov & Hutter 2019, AdamW (arXiv:1711.05101); track-3 ``Muon.step``
(``p.mul_(1 - lr * weight_decay)``). The record's cautious variant is the ``cautious_wd`` part.
"""

from __future__ import annotations

import torch

from optbench.optim.parts.base import Part, StepContext, check_range


class WeightDecay(Part):
    """Multiply W by (1 - lr wd) before the step."""

    name = "weight_decay"
    stage = "post"
    knobs = {"wd": 0.0}

    def check_group(self, group: dict) -> None:
        super().check_group(group)
        check_range(self.name, "wd", self.knob(group, "wd"), 0.0)

    def before(self, u: torch.Tensor, ctx: StepContext) -> None:
        ctx.p.mul_(1 - ctx.lr * self.knob(ctx.group, "wd"))
