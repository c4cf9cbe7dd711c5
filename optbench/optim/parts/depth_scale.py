"""Depth-scaled init: shrink one weight of each block linearly with depth.

    W_l <- (1 - alpha l / (L - 1)) W_l        for the `weight` of block l = 0 .. L-1 (default mlp.fc)

Source: track-3 result #30 (PR #300, "v13 depth-scaled mlp.fc init"), alpha 0.30 in #44 (PR #321) and record #46.
"""

from __future__ import annotations

import torch

from optbench.optim.parts.base import Part


class DepthScale(Part):
    """Init part: scale `blocks.{l}.<weight>` by 1 - alpha l / (L - 1)."""

    name = "depth_scale"
    stage = "init"
    knobs = {"alpha": 0.30, "weight": "mlp.fc.weight"}

    @torch.no_grad()
    def init_model(self, model) -> None:
        blocks = model.blocks
        n = len(blocks)
        for i, block in enumerate(blocks):
            ramp = i / (n - 1) if n > 1 else 0.0
            block.get_parameter(self.values["weight"]).mul_(1.0 - self.values["alpha"] * ramp)
