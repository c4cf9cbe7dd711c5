"""Lion (EvoLved Sign Momentum), following google/automl ``lion/lion_pytorch.py``.

    W <- W (1 - lr wd)
    W <- W - lr sign(beta1 m + (1 - beta1) g)
    m <- beta2 m + (1 - beta2) g
"""

from __future__ import annotations

import torch

from optbench.optim._args import check_betas, check_nonneg
from optbench.optim.registry import register


class Lion(torch.optim.Optimizer):
    """Lion (Chen et al. 2023), google/automl semantics.

    Hyperparameters (official defaults):

    - ``lr=1e-4``: step size; every coordinate moves by exactly lr (plus decay).
    - ``betas=(0.9, 0.99)``: beta1 interpolates the update direction, beta2 is the momentum EMA.
    - ``weight_decay=0.0``: decoupled, ``W <- W (1 - lr wd)`` (typically 3-10x AdamW's value).

    State per parameter: ``exp_avg`` (param shape and dtype, as upstream).
    """

    def __init__(self, params, lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.99), weight_decay: float = 0.0):
        check_nonneg("lr", lr)
        check_betas(betas)
        check_nonneg("weight_decay", weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, wd = group["lr"], group["weight_decay"]
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                state = self.state[p]
                if "exp_avg" not in state:
                    state["exp_avg"] = torch.zeros_like(p)
                m = state["exp_avg"]
                p.mul_(1 - lr * wd)
                direction = m * beta1 + g * (1 - beta1)
                p.add_(torch.sign(direction), alpha=-lr)
                m.mul_(beta2).add_(g, alpha=1 - beta2)
        return loss


register(
    "lion",
    Lion,
    reference=(
        "Chen et al. 2023, Symbolic Discovery of Optimization Algorithms (arXiv:2302.06675); "
        "google/automl@6a54c874 lion/lion_pytorch.py"
    ),
    notes="sign update of an interpolated momentum; decoupled decay p*(1-lr*wd)",
)
