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

from optbench.optim.muon import CoeffSpec, Coeffs, ShardedMatrixOptimizer, check_ns_args
from optbench.optim.registry import COUNT, NONNEG, POSITIVE, UNIT, register


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
      Newton-Schulz settings as in Muon, also ``ns_fused=None`` and ``compiled=None``.

    State per parameter: ``momentum_buffer`` (param shape and dtype), ``v_buffer`` (the 2-D view's shape,
    param dtype), ``step`` (int). Distributed and batched (same-shape matrices in one NS iteration) as Muon.
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
        *,
        ns_fused: bool | None = None,
        compiled: bool | None = None,
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
            ns_fused=ns_fused,
            compiled=compiled,
        )
        super().__init__(params, defaults)

    def _update_many(self, params: list[torch.Tensor], group: dict, schedule: list[Coeffs]) -> None:
        for p in params:
            if "momentum_buffer" not in self.state[p]:
                self.state[p]["momentum_buffer"] = torch.zeros_like(p)
                self.state[p]["step"] = 0
        us = self._momentum(params, [self.state[p]["momentum_buffer"] for p in params], group)
        mats = [u.reshape(u.size(0), -1) if u.ndim > 2 else u for u in us]
        if group["sign_input"] and group["nesterov"]:
            torch._foreach_sign_(mats)  # in place on nesterov's new tensors
        elif group["sign_input"]:
            mats = torch._foreach_sign(mats)  # new tensors: never the momentum buffers
        mu, eps, lr, wd = group["momentum"], group["eps"], group["lr"], group["weight_decay"]
        os = self._orthogonalize(mats, group, schedule, group["ns_eps"])
        b2 = mu if group["beta2"] is None else group["beta2"]
        rms, decay = group["rms_target"], 1 - lr * wd
        # the reference's per-matrix operations, matrix by matrix (all passes while one matrix is in cache); the
        # RMS rescale rms * sqrt(numel) / (||O|| + eps) is a 0-d factor applied with the step
        for p, o in zip(params, os):
            state = self.state[p]
            if o.dtype.itemsize > p.dtype.itemsize:  # a narrowing cast changes values; a widening one is done exactly
                o = o.to(p.dtype)  # inside addcmul_ / div / the update, as a cast to p.dtype would
            if "v_buffer" not in state:
                state["v_buffer"] = torch.zeros(o.shape, dtype=p.dtype, device=p.device)
            state["step"] += 1
            v = state["v_buffer"]
            v.mul_(b2).addcmul_(o, o, value=1 - b2)
            den = (v if group["beta2"] is None else v.div(1 - b2 ** state["step"])).sqrt().add_(eps)
            o = torch.div(o, den, out=den)
            scale = torch.linalg.vector_norm(o).add_(eps).reciprocal_().mul_(rms * math.sqrt(o.numel()))
            if wd:
                p.mul_(decay)
            p.view(o.shape).addcmul_(o, scale, value=-lr)


register(
    "adamuon",
    AdaMuon,
    reference=(
        "Si et al. 2025, AdaMuon: Adaptive Muon Optimizer (arXiv:2507.11005); Chongjie-Si/AdaMuon@369f0b3b "
        "gpt2/models/optimizers/adamuon.py (re-implemented for CPU; no reference trajectory)"
    ),
    matrix_only=True,
    notes="NS(sign(momentum)) + element-wise second moment + RMS 0.2 rescale; checked against its equations only",
    ranges=dict(
        weight_decay=NONNEG, momentum=UNIT, beta2=UNIT, eps=POSITIVE, rms_target=POSITIVE, ns_steps=COUNT,
        ns_eps=POSITIVE,
    ),
)
