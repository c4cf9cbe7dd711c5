"""Momentum base (Muon's): an EMA of the gradient, with or without Nesterov's look-ahead.

    m <- lerp(m, g, 1 - mu)                        = mu m + (1 - mu) g
    u <- lerp(g, m, mu) = (1 - mu) g + mu m        (nesterov)      or      u <- m

Source: Muon, Jordan et al. 2024 (kellerjordan.github.io/posts/muon); modded-nanogpt track 3
``train_gpt_simple.py`` ``muon_update`` (result #1 onwards). ``mu = 0, nesterov = false`` is the spectral descent
of result #22 (u = g). A ``momentum_schedule`` part may set ``momentum.mu`` every step.
"""

from __future__ import annotations

import torch

from optbench.optim.parts.base import Part, StepContext, check_range


class Momentum(Part):
    """EMA momentum with optional Nesterov look-ahead. State: ``momentum_buffer`` (param shape and dtype)."""

    name = "momentum"
    stage = "base"
    knobs = {"mu": 0.95, "nesterov": True}

    def check_group(self, group: dict) -> None:
        super().check_group(group)
        check_range(self.name, "mu", self.knob(group, "mu"), 0.0, 1.0, hi_open=True)

    def direction(self, ctx: StepContext) -> torch.Tensor:
        if "momentum_buffer" not in ctx.state:
            ctx.state["momentum_buffer"] = torch.zeros_like(ctx.p)
        m = ctx.state["momentum_buffer"]
        mu = self.knob(ctx.group, "mu")
        m.lerp_(ctx.grad, 1 - mu)
        return torch.lerp(ctx.grad, m, mu) if self.knob(ctx.group, "nesterov") else m.clone()
