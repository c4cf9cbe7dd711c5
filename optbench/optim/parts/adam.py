"""Adam base: the bias-corrected (or raw) first moment over the root of the second moment, per element.

    m <- lerp(m, g, 1 - b1);   v <- b2 v + (1 - b2) g^2
    u <- (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)      (bias_correction = true; t = 1, 2, ...)
    u <- m / (sqrt(v) + eps)                                   (bias_correction = false)

Source: Kingma & Ba 2015 (arXiv:1412.6980). With ``hyperball`` it is AdamH (result #4, PR #272,
``train_gpt_simple_adamh.py``); without bias correction it is the record's aux ``Adam`` for gains and biases
(#44/#46: "minimal bias-correction-free Adam"). No weight decay here: add a ``weight_decay`` part.
"""

from __future__ import annotations

import torch

from optbench.optim.parts.base import Part, StepContext, check_range


class Adam(Part):
    """Adam direction. State: ``exp_avg`` (param dtype), ``exp_avg_sq`` (float32)."""

    name = "adam"
    stage = "base"
    knobs = {"beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "bias_correction": True}

    def check_group(self, group: dict) -> None:
        super().check_group(group)
        for k in ("beta1", "beta2"):
            check_range(self.name, k, self.knob(group, k), 0.0, 1.0, hi_open=True)
        if not self.knob(group, "eps") > 0:
            raise ValueError(f"adam.eps: must be > 0, got {self.knob(group, 'eps')!r}")

    def direction(self, ctx: StepContext) -> torch.Tensor:
        st, g = ctx.state, ctx.grad
        if "exp_avg" not in st:
            st["exp_avg"] = torch.zeros_like(ctx.p)
            st["exp_avg_sq"] = torch.zeros_like(ctx.p, dtype=torch.float32)
        b1, b2, eps = self.knob(ctx.group, "beta1"), self.knob(ctx.group, "beta2"), self.knob(ctx.group, "eps")
        m, v = st["exp_avg"], st["exp_avg_sq"]
        m.lerp_(g, 1 - b1)
        gf = g.float()
        v.mul_(b2).addcmul_(gf, gf, value=1 - b2)
        if self.knob(ctx.group, "bias_correction"):
            t = ctx.step + 1
            return (m / (1 - b1 ** t)) / ((v / (1 - b2 ** t)).sqrt() + eps)
        return m.float() / (v.sqrt() + eps)
