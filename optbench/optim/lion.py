"""Lion (EvoLved Sign Momentum), following google/automl ``lion/lion_pytorch.py``.

    W <- W (1 - lr wd)
    W <- W - lr sign(beta1 m + (1 - beta1) g)
    m <- beta2 m + (1 - beta2) g
"""

from __future__ import annotations

import torch

from optbench.optim._args import check_betas, check_nonneg
from optbench.optim._elementwise import Scratch, pieces
from optbench.optim.registry import NONNEG, betas, register


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
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            for p in params:
                if "exp_avg" not in self.state[p]:
                    self.state[p]["exp_avg"] = torch.zeros_like(p)
            grads = [p.grad for p in params]
            ms = [self.state[p]["exp_avg"] for p in params]
            # beta1*m + (1-beta1)*g and m*beta2 + (1-beta2)*g as lerps -- the same values up to float rounding
            if params[0].device.type == "cpu":
                _step_in_pieces(params, grads, ms, lr, wd, beta1, beta2)
                continue
            # other devices: the fewest multi-tensor passes (5, as pytorch_optimizer's foreach Lion)
            direction = torch._foreach_lerp(ms, grads, 1 - beta1)
            torch._foreach_sign_(direction)
            torch._foreach_lerp_(ms, grads, 1 - beta2)
            if wd != 0:
                torch._foreach_mul_(params, 1 - lr * wd)
            torch._foreach_add_(params, direction, alpha=-lr)
        return loss


def _step_in_pieces(params, grads, ms, lr: float, wd: float, beta1: float, beta2: float) -> None:
    """The same 5 passes on one cache-sized piece at a time (optim._elementwise): on a CPU each foreach pass
    streams every tensor from memory again; per piece the passes after the first read it from cache."""
    scratch = Scratch()
    for p, g, m in pieces(params, grads, ms):
        direction = torch.lerp(m, g, 1 - beta1, out=scratch.like(m)).sign_()
        m.lerp_(g, 1 - beta2)
        if wd != 0:
            p.mul_(1 - lr * wd)
        p.add_(direction, alpha=-lr)


register(
    "lion",
    Lion,
    reference=(
        "Chen et al. 2023, Symbolic Discovery of Optimization Algorithms (arXiv:2302.06675); "
        "google/automl@6a54c874 lion/lion_pytorch.py"
    ),
    notes="sign update of an interpolated momentum; decoupled decay p*(1-lr*wd)",
    ranges=dict(betas=betas(2), weight_decay=NONNEG),
)
