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
from optbench.optim._compiled import CPU_AUTO_MIN_NUMEL, call_compiled, check_compiled, scalars, use_compiled
from optbench.optim._elementwise import Scratch, pieces
from optbench.optim.adamw import fused_is_same_update
from optbench.optim.registry import COUNT, NONNEG, POSITIVE, betas, register


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
    - ``compiled=None``: the update compiled, one graph for all tensors. None: on CUDA, and on CPU for a group
      of at least ``optim._compiled.CPU_AUTO_MIN_NUMEL`` (4M) elements when a C++ compiler is there (falling back
      to eager, with a warning, if compiling fails); True: always (on CPU inductor needs a C++ compiler). Eager it
      runs in cache-sized pieces (optim._elementwise); with beta1 = 0 always eager.

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
        *,
        compiled: bool | None = None,
    ):
        check_nonneg("lr", lr)
        check_betas(betas, 3)
        check_nonneg("alpha", alpha)
        check_nonneg("eps", eps)
        check_nonneg("weight_decay", weight_decay)
        for name, w in (("beta3_warmup", beta3_warmup), ("alpha_warmup", alpha_warmup)):
            if w is not None and not (isinstance(w, int) and w >= 1):
                raise ValueError(f"{name}: must be None or an integer >= 1, got {w!r}")
        check_compiled(compiled)
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            alpha=alpha,
            beta3_warmup=beta3_warmup,
            alpha_warmup=alpha_warmup,
            weight_decay=weight_decay,
            compiled=compiled,
        )
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            by_step: dict[int, list[torch.Tensor]] = {}  # params that have taken the same number of steps
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("AdEMAMix does not support sparse gradients")
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["exp_avg_fast"] = torch.zeros_like(p) if group["betas"][0] != 0.0 else None
                    state["exp_avg_slow"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                by_step.setdefault(state["step"], []).append(p)
            for t, params in by_step.items():
                self._update(params, group, t)
        return loss

    def _update(self, params: list[torch.Tensor], group: dict, t: int) -> None:
        """The reference's step t with the EMAs as lerps, the bias corrections folded into scalars, decay then one
        addcdiv --

            p <- p (1 - lr wd) - lr sqrt(bc2) (m1 / bc1 + alpha m2) / (sqrt(v) + eps sqrt(bc2))

        which is the reference's p - lr ((m1 / bc1 + alpha m2) / (sqrt(v / bc2) + eps) + wd p) up to float
        rounding: all passes on one cache-sized piece at a time, or compiled (one graph for all tensors)."""
        lr, lmbda, eps = group["lr"], group["weight_decay"], group["eps"]
        beta1, beta2, beta3_final = group["betas"]
        bc1 = 1 - beta1**t
        sqrt_bc2 = math.sqrt(1 - beta2**t)
        alpha = alpha_at(t, group["alpha"], group["alpha_warmup"])
        beta3 = beta3_at(t, beta3_final, beta1, group["beta3_warmup"])
        grads = [p.grad for p in params]
        m2, v = ([self.state[p][k] for p in params] for k in ("exp_avg_slow", "exp_avg_sq"))
        m1 = [self.state[p]["exp_avg_fast"] for p in params] if beta1 != 0.0 else grads
        c1, c2, eps_b, decay = sqrt_bc2 / bc1, alpha * sqrt_bc2, eps * sqrt_bc2, 1 - lr * lmbda
        flag = group.get("compiled")
        if beta1 != 0.0 and use_compiled(flag, params, CPU_AUTO_MIN_NUMEL):
            sc = scalars(params[0], 1 - beta1, 1 - beta3, beta2, c1, c2, eps_b, decay, -lr)
            if call_compiled(_ademamix_update, flag, params, grads, m1, m2, v, sc):
                return
        # float32/64: the Adam part in torch's fused AdamW kernel, one pass over p, g, v and u = m1 + k m2 (k =
        # alpha bc1 / beta1): the kernel's EMA step turns u into m1_new + alpha bc1 m2_new, so its
        # p (1 - lr wd) - lr / bc1 * u / (sqrt(v) / sqrt(bc2) + eps) is the reference's update; 4 passes, not 9
        fused = beta1 != 0.0 and fused_is_same_update(params)
        step = torch.tensor(float(t), device=params[0].device) if fused else None
        k = alpha * bc1 / beta1 if fused else 0.0
        scratch = Scratch()
        for p, g, a, b, vv in pieces(params, grads, m1, m2, v):  # all passes while a piece is in cache
            b.lerp_(g, 1 - beta3)
            if fused and all(x.is_contiguous() for x in (p, g, a, vv)):  # the kernel reads its tensors as contiguous
                u = torch.add(a, b, alpha=k, out=scratch.like(a))
                a.lerp_(g, 1 - beta1)
                torch._fused_adamw_([p], [g], [u], [vv], [], [step], lr=lr, beta1=beta1, beta2=beta2,
                                    weight_decay=lmbda, eps=eps, amsgrad=False, maximize=False)
                continue
            if beta1 != 0.0:
                a.lerp_(g, 1 - beta1)
            vv.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            denom = vv.sqrt().add_(eps_b)
            if lmbda != 0:
                p.mul_(decay)
            p.addcdiv_(a, denom, value=-lr * c1).addcdiv_(b, denom, value=-lr * c2)


def _ademamix_update(ps, gs, m1s, m2s, vs, sc) -> None:
    """AdEMAMix's step (beta1 > 0) on every tensor, as the eager pieces compute it: one graph per step, the
    step-dependent numbers ``sc`` as 0-d tensors (the compiled path)."""
    w1, w3, beta2, c1, c2, eps_b, decay, neg_lr = sc
    for p, g, m1, m2, v in zip(ps, gs, m1s, m2s, vs):
        m1_new, m2_new = torch.lerp(m1, g, w1), torch.lerp(m2, g, w3)
        v_new = v * beta2 + g * g * (1 - beta2)
        denom = v_new.sqrt() + eps_b
        p_new = p * decay + m1_new / denom * (neg_lr * c1) + m2_new / denom * (neg_lr * c2)
        m1.copy_(m1_new)
        m2.copy_(m2_new)
        v.copy_(v_new)
        p.copy_(p_new)


register(
    "ademamix",
    AdEMAMix,
    reference=(
        "Pagliardini et al. 2024, The AdEMAMix Optimizer: Better, Faster, Older (arXiv:2409.03137); "
        "apple/ml-ademamix@c3d73c09 pytorch/ademamix.py"
    ),
    notes="Adam + slow non-bias-corrected EMA weighted by alpha; alpha/beta3 warmups",
    ranges=dict(
        betas=betas(3), alpha=NONNEG, beta3_warmup=COUNT, alpha_warmup=COUNT, eps=POSITIVE, weight_decay=NONNEG,
    ),
)
