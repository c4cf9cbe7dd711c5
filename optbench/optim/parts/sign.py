"""Sign transform: keep only each element's sign (signSGD / signum when it follows momentum).

    u <- sign(u)

Source: Bernstein et al. 2018, signSGD (arXiv:1802.04434); track-3 open PR #326 (signSGD lr 7e-4, wd .1).
"""

from __future__ import annotations

import torch

from optbench.optim.parts.base import Part, StepContext


class Sign(Part):
    """Elementwise sign of the update."""

    name = "sign"
    stage = "transform"
    knobs = {}

    def transform(self, u: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        return torch.sign(u)
