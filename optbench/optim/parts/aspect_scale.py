"""Aspect-ratio scale: Muon's shape factor after orthogonalisation, so tall matrices get a larger step.

    O <- O * sqrt(max(1, rows / cols))          (x2 for a 4:1 tall matrix such as mlp.fc)

Source: modded-nanogpt track 3 ``muon_update`` (``update *= max(1, rows / cols) ** 0.5``), result #1 onwards;
after Contra-Muon in #11, before NorMuon's normalisation in #8/#9.
"""

from __future__ import annotations

import torch

from optbench.optim.parts.base import Part, StepContext


class AspectScale(Part):
    """Multiply the update by sqrt(max(1, rows / cols))."""

    name = "aspect_scale"
    stage = "transform"
    matrix_only = True
    knobs = {}

    def transform(self, u: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        u *= max(1, u.size(-2) / u.size(-1)) ** 0.5
        return u
