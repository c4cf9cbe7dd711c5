"""NorMuon: Muon followed by a per-row (neuron-wise) second-moment normalisation of the orthogonalised update.

Follows zichongli5/NorMuon ``normuon.py`` (classes ``NorMuon`` / ``SingleDeviceNorMuon``). Per matrix W:

    m <- lerp(m, g, 1 - mu);  u <- lerp(g, m, mu) (nesterov)
    O <- NS(u)                                          (5 x KellerJordan quintic by default)
    nu <- ||O||_F
    s <- lerp(s, mean_j O_ij^2, 1 - beta2)              (one value per row)
    O <- O / (sqrt(s) + 1e-10);  O <- O * nu / (||O||_F + 1e-10)
    O <- O * sqrt(max(1, rows / cols))
    W <- W (1 - lr wd)  (only when the param had a gradient);  W <- W - lr O

Differences from the official file, all deliberate: the NS output is cast back to the parameter dtype before
the normalisation (the official code fails with float32 params on torch 2.13 because its per-row buffer is
float32 and the NS output bf16 — this is the fix the reference trajectory ``normuon_fp32ns`` also applies); a
parameter without a gradient is skipped (the official code feeds it a zero gradient); tensors with more than two
dims are flattened to (shape[0], rest) for the row statistics too.
"""

from __future__ import annotations

import math

import torch

from optbench.optim.muon import CoeffSpec, Coeffs, ShardedMatrixOptimizer, check_ns_args
from optbench.optim.registry import COUNT, NONNEG, POSITIVE, UNIT, register


class NorMuon(ShardedMatrixOptimizer):
    """NorMuon (Li et al. 2025), official zichongli5/NorMuon semantics. Matrices (ndim >= 2) only.

    Hyperparameters (defaults = the official defaults):

    - ``lr=0.02``, ``weight_decay=0.0`` (decoupled ``W <- W (1 - lr wd)``), ``momentum=0.95`` in [0, 1).
    - ``beta2=0.95``: EMA factor of the per-row mean of O^2, in [0, 1).
    - ``nesterov=True``.
    - ``ns_coefficients="tuned5"`` (5 x (3.4445, -4.7750, 2.0315), as upstream), ``ns_steps=None``: see
      ``optbench.optim.muon.resolve_ns_schedule`` ("track3", "medium", a triple or a per-step list also work).
    - ``ns_dtype=torch.bfloat16``: NS precision (float32 reproduces ``normuon_fp32ns`` exactly).
    - ``eps=1e-7``: NS normalisation; ``norm_eps=1e-10``: the two 1e-10 constants of the row normalisation.
    - ``ns_fused=None`` (fused NS arithmetic for float32/64) and ``compiled=None`` (``torch.compile``, CUDA only): as Muon.

    State per parameter: ``momentum_buffer`` (param shape and dtype), ``second_momentum_buffer`` (rows x 1).
    Distributed and batched as Muon (same-shape matrices in one Newton-Schulz iteration; sorted by shape,
    round-robin ownership, one all_gather per chunk).
    """

    def __init__(
        self,
        params,
        lr: float = 0.02,
        weight_decay: float = 0.0,
        momentum: float = 0.95,
        beta2: float = 0.95,
        nesterov: bool = True,
        ns_coefficients: CoeffSpec = "tuned5",
        ns_steps: int | None = None,
        ns_dtype: torch.dtype = torch.bfloat16,
        eps: float = 1e-7,
        norm_eps: float = 1e-10,
        *,
        ns_fused: bool | None = None,
        compiled: bool | None = None,
    ):
        if not (isinstance(beta2, (int, float)) and 0.0 <= beta2 < 1.0):
            raise ValueError(f"beta2: must be in [0, 1), got {beta2!r}")
        check_ns_args(ns_coefficients, ns_steps, ns_dtype)
        if not (eps > 0 and norm_eps > 0 and math.isfinite(eps) and math.isfinite(norm_eps)):
            raise ValueError(f"eps/norm_eps: must be finite and > 0, got {eps!r}, {norm_eps!r}")
        defaults = dict(
            lr=lr,
            weight_decay=weight_decay,
            momentum=momentum,
            beta2=beta2,
            nesterov=bool(nesterov),
            ns_coefficients=ns_coefficients,
            ns_steps=ns_steps,
            ns_dtype=ns_dtype,
            eps=eps,
            norm_eps=norm_eps,
            ns_fused=ns_fused,
            compiled=compiled,
        )
        super().__init__(params, defaults)

    def _check_group(self, group: dict) -> None:
        super()._check_group(group)
        if not 0.0 <= group["beta2"] < 1.0:
            raise ValueError(f"beta2: must be in [0, 1), got {group['beta2']!r}")

    def _update_many(self, params: list[torch.Tensor], group: dict, schedule: list[Coeffs]) -> None:
        for p in params:
            state = self.state[p]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(p)
                state["second_momentum_buffer"] = torch.zeros(p.size(0), 1, dtype=p.dtype, device=p.device)
        us = self._momentum(params, [self.state[p]["momentum_buffer"] for p in params], group)
        mats = [u.reshape(u.size(0), -1) if u.ndim > 2 else u for u in us]
        # the reference's per-matrix scalings folded into one per-row factor c (tiny tensors), applied in one pass:
        #   s <- lerp(s, rowmean(O^2), 1 - beta2);  O' = O / (sqrt(s) + eps);  O'' = O' ||O|| / (||O'|| + eps)
        # with ||O||^2 = sum(r) and ||O'||^2 = sum(r / (sqrt(s) + eps)^2), r = the rows' sums of squares: O is read
        # twice (r, the update) instead of eight times; the same values up to float rounding
        neps, lr, wd = group["norm_eps"], group["lr"], group["weight_decay"]
        os = self._orthogonalize(mats, group, schedule, group["eps"], out_dtype=params[0].dtype)
        if any(p.dtype != params[0].dtype for p in params):
            os = [o.to(p.dtype) for o, p in zip(os, params)]
        r = [torch.linalg.vector_norm(o, dim=-1, keepdim=True).square_() for o in os]
        s2 = [self.state[p]["second_momentum_buffer"] for p in params]
        torch._foreach_lerp_(s2, [ri / o.size(-1) for ri, o in zip(r, os)], 1 - group["beta2"])
        inv = torch._foreach_sqrt(s2)
        torch._foreach_add_(inv, neps)
        torch._foreach_reciprocal_(inv)
        cs = []
        for o, ri, iv in zip(os, r, inv):
            shape_scale = max(1, o.size(-2) / o.size(-1)) ** 0.5
            ratio = ri.sum().sqrt() / ((ri * iv * iv).sum().sqrt() + neps)
            cs.append(iv.mul_(ratio * shape_scale))
        if wd:
            torch._foreach_mul_(params, 1 - lr * wd)
        for p, o, c in zip(params, os, cs):
            p.view(o.shape).addcmul_(o, c, value=-lr)


register(
    "normuon",
    NorMuon,
    reference=(
        "Li et al. 2025, NorMuon: Making Muon more efficient and scalable (arXiv:2510.05491); "
        "zichongli5/NorMuon@d45c9a42 normuon.py (NorMuon / SingleDeviceNorMuon)"
    ),
    matrix_only=True,
    notes="Muon + per-row second-moment normalisation after NS; NS output cast to the param dtype (fp32-safe)",
    ranges=dict(weight_decay=NONNEG, momentum=UNIT, beta2=UNIT, ns_steps=COUNT, eps=POSITIVE, norm_eps=POSITIVE),
)
