"""Schedule-free AdamW, following facebookresearch/schedule_free ``schedulefree/adamw_schedulefree.py``.

The parameter tensor holds y (where gradients are taken) in train mode and x (the averaged iterate to evaluate)
in eval mode; z is the base (SGD-like) sequence kept in the state. At step k = 0, 1, ...:

    lr_k = lr * min(1, (k + 1) / warmup_steps);  lr_max = max(lr_max, lr_k)
    w_k = (k + 1)^r * lr_max^weight_lr_power;  c = w_k / sum_{j<=k} w_j
    v <- beta2 v + (1 - beta2) g^2;  d = g / (sqrt(v / (1 - beta2^(k+1))) + eps)
    d <- d + wd * y                                     (decay evaluated at y)
    y <- lerp(y, z, c);  y <- y + lr_k (beta1 (1 - c) - 1) d
    z <- z - lr_k d
    x = lerp(y, z, 1 - 1/beta1)   (eval()),   y = lerp(x, z, 1 - beta1)   (train())

Call ``train()`` before training steps and ``eval()`` before evaluating or checkpointing (the loop does this
through optbench.optim.protocol for every optimizer).
"""

from __future__ import annotations


import math

import torch

from optbench.optim._args import check_betas, check_nonneg
from optbench.optim._compiled import CPU_AUTO_MIN_NUMEL, call_compiled, check_compiled, scalars, use_compiled
from optbench.optim._elementwise import pieces
from optbench.optim.registry import NONNEG, POSITIVE, Range, UNIT, betas, register


class AdamWScheduleFree(torch.optim.Optimizer):
    """Schedule-free AdamW (Defazio et al. 2024), official facebookresearch/schedule_free semantics.

    Hyperparameters (official defaults):

    - ``lr=0.0025``: base step size (no LR schedule is needed; an external scheduler multiplying
      ``group["lr"]`` still works, the averaging weight then uses the running max).
    - ``betas=(0.9, 0.999)``: beta1 is the y interpolation (momentum-like) between x and z, beta2 the
      second-moment EMA.
    - ``eps=1e-8``: added to the bias-corrected sqrt(v).
    - ``weight_decay=0.0``: added to the normalised gradient as ``wd * y`` (decay evaluated at y).
    - ``warmup_steps=0``: linear warmup of lr over this many steps.
    - ``r=0.0``: polynomial weighting (k+1)^r of the average.
    - ``weight_lr_power=2.0``: the averaging weight is lr_max^weight_lr_power.
    - ``inner_momentum=0.0``: optional EMA of g (bias-corrected) divided by the same denominator; only 0 is
      checked against a reference trajectory.
    - ``compiled=None``: the update compiled, one graph for all tensors. None: on CUDA, and on CPU for a group
      of at least ``optim._compiled.CPU_AUTO_MIN_NUMEL`` (4M) elements when a C++ compiler is there (falling back
      to eager, with a warning, if compiling fails); True: always (on CPU inductor needs a C++ compiler). Eager it
      runs in cache-sized pieces (optim._elementwise); with inner momentum always eager.

    Group counters (saved in ``state_dict`` with the groups): ``k``, ``train_mode``, ``weight_sum``,
    ``lr_max``, ``scheduled_lr``. State per parameter: ``z``, ``exp_avg_sq`` (+ ``exp_avg`` with inner
    momentum), param dtype as upstream. ``step`` raises RuntimeError unless in train mode.
    """

    def __init__(
        self,
        params,
        lr: float = 0.0025,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2.0,
        inner_momentum: float = 0.0,
        *,
        compiled: bool | None = None,
    ):
        check_nonneg("lr", lr)
        check_betas(betas)
        if betas[0] == 0.0:
            raise ValueError("betas: beta1 must be > 0 for schedule-free (x = lerp(y, z, 1 - 1/beta1))")
        check_nonneg("eps", eps)
        check_nonneg("weight_decay", weight_decay)
        if not (isinstance(warmup_steps, int) and warmup_steps >= 0):
            raise ValueError(f"warmup_steps: must be an integer >= 0, got {warmup_steps!r}")
        check_nonneg("r", r)
        check_nonneg("weight_lr_power", weight_lr_power)
        if not 0.0 <= inner_momentum < 1.0:
            raise ValueError(f"inner_momentum: must be in [0, 1), got {inner_momentum!r}")
        check_compiled(compiled)
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            r=r,
            k=0,
            warmup_steps=warmup_steps,
            train_mode=False,
            weight_sum=0.0,
            lr_max=-1.0,
            scheduled_lr=0.0,
            weight_lr_power=weight_lr_power,
            weight_decay=weight_decay,
            inner_momentum=inner_momentum,
            compiled=compiled,
        )
        super().__init__(params, defaults)

    @torch.no_grad()
    def eval(self) -> None:
        """Put x (the point to evaluate / checkpoint) into the parameter tensors."""
        for group in self.param_groups:
            if group["train_mode"]:
                beta1 = group["betas"][0]
                for p in group["params"]:
                    z = self.state[p].get("z")
                    if z is not None:
                        p.lerp_(z.to(p.device), 1 - 1 / beta1)
                group["train_mode"] = False

    @torch.no_grad()
    def train(self) -> None:
        """Put y (where gradients are taken) into the parameter tensors."""
        for group in self.param_groups:
            if not group["train_mode"]:
                beta1 = group["betas"][0]
                for p in group["params"]:
                    z = self.state[p].get("z")
                    if z is not None:
                        p.lerp_(z.to(p.device), 1 - beta1)
                group["train_mode"] = True

    @torch.no_grad()
    def step(self, closure=None):
        if not all(g["train_mode"] for g in self.param_groups):
            raise RuntimeError(
                "AdamWScheduleFree.step() called in eval mode: call opt.train() before training steps "
                "and opt.eval() before evaluation/checkpointing"
            )
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            eps = group["eps"]
            beta1, beta2 = group["betas"]
            decay = group["weight_decay"]
            k = group["k"]
            warmup = group["warmup_steps"]
            sched = (k + 1) / warmup if k < warmup else 1.0
            bias_correction2 = 1 - beta2 ** (k + 1)
            lr = group["lr"] * sched
            group["scheduled_lr"] = lr
            lr_max = group["lr_max"] = max(lr, group["lr_max"])
            weight = ((k + 1) ** group["r"]) * (lr_max ** group["weight_lr_power"])
            weight_sum = group["weight_sum"] = group["weight_sum"] + weight
            ckp1 = weight / weight_sum if weight_sum != 0 else 0.0
            mom = group["inner_momentum"]
            params = [p for p in group["params"] if p.grad is not None]
            for p in params:
                state = self.state[p]
                if "z" not in state:
                    state["z"] = torch.clone(p, memory_format=torch.preserve_format).detach()
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                if mom > 0 and "exp_avg" not in state:
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            if params:
                grads = [p.grad for p in params]
                z, v = ([self.state[p][key] for p in params] for key in ("z", "exp_avg_sq"))
                # d = s * (x / (sqrt(v) + eps s) + decay / s * y) with s = sqrt(bc2): the reference's
                # x / (sqrt(v / bc2) + eps) + decay * y up to float rounding; s goes into the alphas below
                s = math.sqrt(bias_correction2)
                eps_s = eps * s
                if mom > 0:
                    s /= 1 - mom ** (k + 1)  # the momentum's bias correction joins the scale
                y_alpha, z_alpha = lr * (beta1 * (1 - ckp1) - 1) * s, lr * s
                flag = group.get("compiled")
                done = False
                if mom == 0 and use_compiled(flag, params, CPU_AUTO_MIN_NUMEL):
                    sc = scalars(params[0], beta2, eps_s, decay / s, ckp1, y_alpha, z_alpha)
                    done = call_compiled(_sf_update, flag, params, grads, z, v, sc)
                if not done:
                    m = [self.state[p]["exp_avg"] for p in params] if mom > 0 else grads
                    for p, g, mm, zz, vv in pieces(params, grads, m, z, v):  # all passes while a piece is in cache
                        vv.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                        d = vv.sqrt().add_(eps_s)
                        if mom > 0:
                            mm.lerp_(g, 1 - mom)
                        torch.div(mm, d, out=d)  # a new tensor: p.grad is left as the loop handed it over
                        if decay != 0:
                            d.add_(p, alpha=decay / s)
                        p.lerp_(zz, ckp1).add_(d, alpha=y_alpha)
                        zz.sub_(d, alpha=z_alpha)
            group["k"] = k + 1
        return loss


def _sf_update(ps, gs, zs, vs, sc) -> None:
    """The schedule-free step without inner momentum on every tensor, as the eager pieces compute it: one graph per
    step, the step-dependent numbers ``sc`` as 0-d tensors (the compiled path)."""
    beta2, eps_s, decay_s, ckp1, y_alpha, z_alpha = sc
    for p, g, z, v in zip(ps, gs, zs, vs):
        v_new = v * beta2 + g * g * (1 - beta2)
        d = g / (v_new.sqrt() + eps_s) + p * decay_s
        y = torch.lerp(p, z, ckp1) + d * y_alpha
        z.copy_(z - d * z_alpha)
        v.copy_(v_new)
        p.copy_(y)


register(
    "adamw-schedulefree",
    AdamWScheduleFree,
    aliases=("sfadamw",),
    reference=(
        "Defazio et al. 2024, The Road Less Scheduled (arXiv:2405.15682); facebookresearch/schedule_free@70785b53 "
        "schedulefree/adamw_schedulefree.py (AdamWScheduleFree)"
    ),
    notes="needs opt.train()/opt.eval() (loop protocol); no LR schedule needed; warmup_steps built in",
    ranges=dict(
        betas=betas(2), eps=POSITIVE, weight_decay=NONNEG, warmup_steps=Range(0, integer=True), r=NONNEG,
        weight_lr_power=NONNEG, inner_momentum=UNIT,
    ),
)
