"""AdEMAMix: Adam with a second, slow EMA of the gradient mixed into the numerator.

Follows apple/ml-ademamix ``pytorch/ademamix.py``. At step t = 1, 2, ...:

    m1 <- beta1 m1 + (1 - beta1) g          (fast EMA, bias corrected)
    m2 <- beta3(t) m2 + (1 - beta3(t)) g    (slow EMA, NOT bias corrected)
    v  <- beta2 v + (1 - beta2) g^2
    u = (m1 / (1 - beta1^t) + alpha(t) m2) / (sqrt(v) / sqrt(1 - beta2^t) + eps) + wd W
    W <- W - lr u

alpha(t) ramps linearly 0 -> alpha over ``alpha_warmup`` steps; beta3(t) ramps from beta1 to beta3 linearly in
half-life space, f(beta) = ln 0.5 / ln(beta + 1e-8) - 1, mapped back by beta = 0.5^(1 / (f + 1)).
"""

from __future__ import annotations

import math

import torch

from optbench.optim._args import check_betas, check_nonneg
from optbench.optim.registry import register


def alpha_at(step: int, alpha_end: float, warmup: int | None) -> float:
    """Linear warmup 0 -> alpha_end over ``warmup`` steps (step counts from 1); alpha_end without warmup."""
    if warmup is not None and step < warmup:
        a = step / float(warmup)
        return a * alpha_end
    return alpha_end


def beta3_at(step: int, beta_end: float, beta_start: float, warmup: int | None) -> float:
    """beta3 warmup, linear in half-life space from beta_start (= beta1) to beta_end."""
    if warmup is None or step >= warmup:
        return beta_end

    def f(beta: float, eps: float = 1e-8) -> float:
        return math.log(0.5) / math.log(beta + eps) - 1

    a = step / float(warmup)
    return math.pow(0.5, 1 / ((1.0 - a) * f(beta_start) + a * f(beta_end) + 1))


class AdEMAMix(torch.optim.Optimizer):
    """AdEMAMix (Pagliardini et al. 2024), official apple/ml-ademamix semantics.

    Hyperparameters (official defaults):

    - ``lr=1e-3``.
    - ``betas=(0.9, 0.999, 0.9999)``: (beta1 fast EMA, beta2 second moment, beta3 slow EMA).
    - ``alpha=2.0``: weight of the slow EMA.
    - ``beta3_warmup=None``, ``alpha_warmup=None``: warmup lengths in steps (None = no warmup); the paper
      recommends both equal to the run length for long runs.
    - ``eps=1e-8``.
    - ``weight_decay=0.0``: decoupled, added to the update as ``wd * W`` (so the decay is ``lr * wd``).

    State per parameter: ``step`` (int), ``exp_avg_fast`` (None when beta1 == 0), ``exp_avg_slow``,
    ``exp_avg_sq``; param dtype as upstream.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float, float] = (0.9, 0.999, 0.9999),
        alpha: float = 2.0,
        beta3_warmup: int | None = None,
        alpha_warmup: int | None = None,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        check_nonneg("lr", lr)
        check_betas(betas, 3)
        check_nonneg("alpha", alpha)
        check_nonneg("eps", eps)
        check_nonneg("weight_decay", weight_decay)
        for name, w in (("beta3_warmup", beta3_warmup), ("alpha_warmup", alpha_warmup)):
            if w is not None and not (isinstance(w, int) and w >= 1):
                raise ValueError(f"{name}: must be None or an integer >= 1, got {w!r}")
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            alpha=alpha,
            beta3_warmup=beta3_warmup,
            alpha_warmup=alpha_warmup,
            weight_decay=weight_decay,
        )
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, lmbda, eps = group["lr"], group["weight_decay"], group["eps"]
            beta1, beta2, beta3_final = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if g.is_sparse:
                    raise RuntimeError("AdEMAMix does not support sparse gradients")
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["exp_avg_fast"] = torch.zeros_like(p) if beta1 != 0.0 else None
                    state["exp_avg_slow"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t = state["step"]
                bc1 = 1 - beta1**t
                bc2 = 1 - beta2**t
                alpha = alpha_at(t, group["alpha"], group["alpha_warmup"])
                beta3 = beta3_at(t, beta3_final, beta1, group["beta3_warmup"])
                m1, m2, v = state["exp_avg_fast"], state["exp_avg_slow"], state["exp_avg_sq"]
                if beta1 != 0.0:
                    m1.mul_(beta1).add_(g, alpha=1 - beta1)
                else:
                    m1 = g
                m2.mul_(beta3).add_(g, alpha=1 - beta3)
                v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                denom = (v.sqrt() / math.sqrt(bc2)).add_(eps)
                update = (m1.div(bc1) + alpha * m2) / denom
                update.add_(p, alpha=lmbda)
                p.add_(-lr * update)
        return loss


register(
    "ademamix",
    AdEMAMix,
    reference=(
        "Pagliardini et al. 2024, The AdEMAMix Optimizer: Better, Faster, Older (arXiv:2409.03137); "
        "apple/ml-ademamix@c3d73c09 pytorch/ademamix.py"
    ),
    notes="Adam + slow non-bias-corrected EMA weighted by alpha; alpha/beta3 warmups",
)
