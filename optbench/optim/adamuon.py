"""AdaMuon: Muon with an element-wise second moment of the orthogonalised update and RMS-aligned rescaling.

CPU-friendly re-implementation of Chongjie-Si/AdaMuon (``gpt2/models/optimizers/adamuon.py`` @369f0b3b, as
described in the zoo spec; the official file hard-wires CUDA buffers and torch.distributed). Per matrix W:

    m <- lerp(m, g, 1 - mu);  u <- lerp(g, m, mu) (nesterov)
    O <- NS(sign(u))                               (5 x KellerJordan quintic by default)
    v <- mu v + (1 - mu) O * O                     (same beta as the momentum, no bias correction)
    O <- O / (sqrt(v) + eps)
    O <- 0.2 sqrt(rows * cols) O / (||O||_F + eps)   (RMS(O) = 0.2, Adam-like update size)
    W <- W (1 - lr wd) - lr O

``beta2=<float>`` switches to the variant in the repository's top-level ``adamuon.py`` (bias-corrected EMA
with its own beta2 = 0.999 there) and ``sign_input=False`` orthogonalises u itself instead of sign(u), as that
file does. No reference trajectory exists (the official code does not run on CPU), so the tests pin the
equations.
"""

from __future__ import annotations

import math

import torch

from optbench.optim.muon import CoeffSpec, Coeffs, ShardedMatrixOptimizer, check_ns_args, newton_schulz
from optbench.optim.registry import register


class AdaMuon(ShardedMatrixOptimizer):
    """AdaMuon (Si et al. 2025). Matrices (ndim >= 2) only.

    Hyperparameters (defaults = the official defaults):

    - ``lr=0.02``, ``weight_decay=0.01`` (decoupled), ``momentum=0.95`` in [0, 1), ``nesterov=True``.
    - ``eps=1e-8``: in the second-moment denominator and the final normalisation.
    - ``beta2=None``: None = EMA with the momentum's beta and no bias correction (gpt2 file); a float = a
      bias-corrected EMA with that beta (top-level file, 0.999 there).
    - ``sign_input=True``: orthogonalise sign(u) (gpt2 file) instead of u.
    - ``rms_target=0.2``: RMS of the final update.
    - ``ns_coefficients="tuned5"``, ``ns_steps=None``, ``ns_dtype=torch.bfloat16``, ``ns_eps=1e-7``: the
      Newton-Schulz settings as in Muon.

    State per parameter: ``momentum_buffer`` (param shape and dtype), ``v_buffer`` (the 2-D view's shape,
    param dtype), ``step`` (int). Distributed: as Muon.
    """

    def __init__(
        self,
        params,
        lr: float = 0.02,
        weight_decay: float = 0.01,
        momentum: float = 0.95,
        nesterov: bool = True,
        eps: float = 1e-8,
        beta2: float | None = None,
        sign_input: bool = True,
        rms_target: float = 0.2,
        ns_coefficients: CoeffSpec = "tuned5",
        ns_steps: int | None = None,
        ns_dtype: torch.dtype = torch.bfloat16,
        ns_eps: float = 1e-7,
    ):
        if beta2 is not None and not (isinstance(beta2, (int, float)) and 0.0 <= beta2 < 1.0):
            raise ValueError(f"beta2: must be None or in [0, 1), got {beta2!r}")
        if not (isinstance(eps, (int, float)) and eps > 0 and math.isfinite(eps)):
            raise ValueError(f"eps: must be a finite number > 0, got {eps!r}")
        if not (isinstance(rms_target, (int, float)) and rms_target > 0 and math.isfinite(rms_target)):
            raise ValueError(f"rms_target: must be a finite number > 0, got {rms_target!r}")
        check_ns_args(ns_coefficients, ns_steps, ns_dtype)
        defaults = dict(
            lr=lr,
            weight_decay=weight_decay,
            momentum=momentum,
            nesterov=bool(nesterov),
            eps=eps,
            beta2=beta2,
            sign_input=bool(sign_input),
            rms_target=rms_target,
            ns_coefficients=ns_coefficients,
            ns_steps=ns_steps,
            ns_dtype=ns_dtype,
            ns_eps=ns_eps,
        )
        super().__init__(params, defaults)

    def _update(self, p: torch.Tensor, group: dict, schedule: list[Coeffs]) -> None:
        g = p.grad
        state = self.state[p]
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = torch.zeros_like(p)
            state["step"] = 0
        m = state["momentum_buffer"]
        mu = group["momentum"]
        m.lerp_(g, 1 - mu)
        u = torch.lerp(g, m, mu) if group["nesterov"] else m
        if u.ndim > 2:
            u = u.reshape(u.size(0), -1)
        if group["sign_input"]:
            u = torch.sign(u)
        o = newton_schulz(u, schedule, group["ns_dtype"], group["ns_eps"]).to(p.dtype)
        if "v_buffer" not in state:
            state["v_buffer"] = torch.zeros_like(o)
        v = state["v_buffer"]
        state["step"] += 1
        eps = group["eps"]
        if group["beta2"] is None:
            v.mul_(mu).addcmul_(o, o, value=1 - mu)
            v_hat = v
        else:
            b2 = group["beta2"]
            v.mul_(b2).addcmul_(o, o, value=1 - b2)
            v_hat = v / (1 - b2 ** state["step"])
        o = o / (v_hat.sqrt() + eps)
        o.mul_(group["rms_target"] * math.sqrt(o.numel()) / (o.norm() + eps))
        lr = group["lr"]
        p.mul_(1 - lr * group["weight_decay"])
        p.add_(o.reshape(p.shape), alpha=-lr)


register(
    "adamuon",
    AdaMuon,
    reference=(
        "Si et al. 2025, AdaMuon: Adaptive Muon Optimizer (arXiv:2507.11005); Chongjie-Si/AdaMuon@369f0b3b "
        "gpt2/models/optimizers/adamuon.py (re-implemented for CPU; no reference trajectory)"
    ),
    matrix_only=True,
    notes="NS(sign(momentum)) + element-wise second moment + RMS 0.2 rescale; checked against its equations only",
)
