"""MARS (Make vAriance Reduction Shine), following AGI-Arena/MARS ``MARS/optimizers/mars.py`` (approximate mode).

2-D tensors (all tensors with ``optimize_1d=True``), step t = 1, 2, ...:

    c = g + gamma * beta1 / (1 - beta1) * (g - g_prev)          (g_prev: last step's gradient, 0 at t = 1)
    c <- c / ||c||_2   if ||c||_2 > 1                            (per-tensor clip to unit norm)
    m <- beta1 m + (1 - beta1) c
    mars-adamw:  v <- beta2 v + (1 - beta2) c^2
                 W <- W - lr (wd W + m / ((sqrt(v) / sqrt(1 - beta2^t) + eps) (1 - beta1^t)))
    mars-lion:   W <- W - lr (wd W + sign(m))
    mars-shampoo: W <- W - lr (sqrt(max(1, rows/cols)) NS5(m / (1 - beta1)) + wd W)

Other tensors (``optimize_1d=False``): AdamW with ``betas_1d``, step lr * (lr_1d / lr), decay ``weight_decay_1d``
and the same (sqrt(v)/sqrt(bc2) + eps) * bc1 denominator.

The previous gradient is stored as a COPY (the reference keeps a reference to the gradient tensor itself, which
a loop that accumulates into ``p.grad`` in place would silently corrupt).
"""

from __future__ import annotations

import math

import torch

from optbench.optim._args import check_betas, check_nonneg
from optbench.optim.muon import newton_schulz, resolve_ns_schedule
from optbench.optim.registry import register

MARS_TYPES = ("mars-adamw", "mars-lion", "mars-shampoo")


class MARS(torch.optim.Optimizer):
    """MARS (Yuan et al. 2024), official AGI-Arena/MARS semantics with ``is_approx=True``.

    Hyperparameters (official defaults):

    - ``lr=3e-3``, ``betas=(0.95, 0.99)``, ``eps=1e-8``, ``weight_decay=0.0`` (decoupled, ``lr * wd * W``).
    - ``amsgrad=False``: use the running max of v in the denominator.
    - ``gamma=0.025``: strength of the variance-reduction correction.
    - ``is_approx=True``: only the approximate form is supported (the exact form needs a second gradient at the
      previous iterate on the new batch, i.e. an extra backward per step); False raises ValueError.
    - ``mars_type="mars-adamw"``: or "mars-lion" (sign of m) or "mars-shampoo" (bf16 5-step Newton-Schulz of
      m / (1 - beta1) for matrices, optbench's NS routine: same maths as upstream, different op order).
    - ``optimize_1d=False``: False routes tensors with ndim != 2 to the internal AdamW branch.
    - ``lr_1d=3e-3``, ``betas_1d=(0.9, 0.95)``, ``weight_decay_1d=0.1``: that AdamW branch. Its step is
      ``group["lr"] * lr_1d / lr`` with the ratio fixed at construction, so an LR scheduler scales both branches.
      (Upstream divides by the constructor's lr for every group; here each group uses its own initial lr.)

    State per parameter: ``step`` (int), ``exp_avg``, ``exp_avg_sq``, ``last_grad`` (a copy),
    ``max_exp_avg_sq`` with amsgrad; param dtype as upstream.
    """

    def __init__(
        self,
        params,
        lr: float = 3e-3,
        betas: tuple[float, float] = (0.95, 0.99),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        gamma: float = 0.025,
        is_approx: bool = True,
        mars_type: str = "mars-adamw",
        optimize_1d: bool = False,
        lr_1d: float = 3e-3,
        betas_1d: tuple[float, float] = (0.9, 0.95),
        weight_decay_1d: float = 0.1,
    ):
        check_nonneg("lr", lr)
        if lr == 0:
            raise ValueError("lr: must be > 0 for MARS (the 1-D branch's lr_1d / lr ratio is fixed at construction)")
        check_betas(betas)
        check_nonneg("eps", eps)
        check_nonneg("weight_decay", weight_decay)
        check_nonneg("gamma", gamma)
        if not is_approx:
            raise ValueError(
                "is_approx: only True is supported (exact MARS needs an extra gradient at the previous iterate "
                "on each new batch, which the one-pass training loop does not provide)"
            )
        if mars_type not in MARS_TYPES:
            raise ValueError(f"mars_type: must be one of {', '.join(MARS_TYPES)}, got {mars_type!r}")
        check_nonneg("lr_1d", lr_1d)
        check_betas(betas_1d, name="betas_1d")
        check_nonneg("weight_decay_1d", weight_decay_1d)
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=bool(amsgrad),
            gamma=gamma,
            mars_type=mars_type,
            optimize_1d=bool(optimize_1d),
            lr_1d=lr_1d,
            betas_1d=tuple(betas_1d),
            weight_decay_1d=weight_decay_1d,
        )
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        if "lr_1d_factor" not in group:  # fixed at construction (a scheduler later rescales group["lr"])
            group["lr_1d_factor"] = group["lr_1d"] / group["lr"] if group["lr"] > 0 else 0.0

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, wd, eps = group["lr"], group["weight_decay"], group["eps"]
            beta1, beta2 = group["betas"]
            amsgrad, gamma, mars_type = group["amsgrad"], group["gamma"], group["mars_type"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if grad.is_sparse:
                    raise RuntimeError("MARS does not support sparse gradients")
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["last_grad"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                    if amsgrad:
                        state["max_exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t = state["step"]
                m, v = state["exp_avg"], state["exp_avg_sq"]
                is_2d = grad.ndim == 2
                if group["optimize_1d"] or is_2d:
                    c = (grad - state["last_grad"]).mul(gamma * (beta1 / (1.0 - beta1))).add(grad)
                    c_norm = torch.norm(c)
                    if c_norm > 1.0:
                        c = c / c_norm
                    m.mul_(beta1).add_(c, alpha=1.0 - beta1)
                    if mars_type == "mars-adamw" or (mars_type == "mars-shampoo" and not is_2d):
                        v.mul_(beta2).addcmul_(c, c, value=1.0 - beta2)
                        denom = self._denom(state, v, amsgrad, t, beta1, beta2, eps)
                        update = -lr * torch.mul(p, wd).add(m.div(denom))
                    elif mars_type == "mars-lion":
                        update = -lr * torch.mul(p, wd).add(m.sign())
                    else:  # mars-shampoo on a matrix
                        scale = max(1, grad.size(0) / grad.size(1)) ** 0.5
                        o = newton_schulz(m.mul(1.0 / (1.0 - beta1)), resolve_ns_schedule("tuned5", None), eps=eps)
                        update = o.to(p.dtype).mul(scale).add(p, alpha=wd).mul(-lr)
                    p.add_(update)
                else:
                    b1, b2 = group["betas_1d"]
                    m.mul_(b1).add_(grad, alpha=1.0 - b1)
                    v.mul_(b2).addcmul_(grad, grad, value=1.0 - b2)
                    denom = self._denom(state, v, amsgrad, t, b1, b2, eps)
                    wd1 = wd if group["optimize_1d"] else group["weight_decay_1d"]
                    update = -lr * group["lr_1d_factor"] * torch.mul(p, wd1).add(m.div(denom))
                    p.add_(update)
                state["last_grad"] = grad.detach().clone()  # a copy, never a reference to p.grad
        return loss

    @staticmethod
    def _denom(state, v, amsgrad, t, beta1, beta2, eps):
        bc1 = 1.0 - beta1**t
        bc2 = 1.0 - beta2**t
        if amsgrad:
            torch.max(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        return v.sqrt().mul(1 / math.sqrt(bc2)).add(eps).mul(bc1)


register(
    "mars",
    MARS,
    reference=(
        "Yuan et al. 2024, MARS: Unleashing the Power of Variance Reduction for Training Large Models "
        "(arXiv:2411.10438); AGI-Arena/MARS@4831e28e MARS/optimizers/mars.py"
    ),
    notes="approximate MARS (previous gradient kept as a copy); mars-adamw default, mars-lion/mars-shampoo options; "
    "1-D tensors via the internal AdamW branch unless optimize_1d",
)
