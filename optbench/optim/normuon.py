"""NorMuon: Muon followed by a per-row (neuron-wise) second-moment normalisation of the orthogonalised update.

Follows zichongli5/NorMuon ``normuon.py`` (classes ``NorMuon`` / ``SingleDeviceNorMuon``). Per matrix W:

    m <- lerp(m, g, 1 - mu);  u <- lerp(g, m, mu) (nesterov)
    O <- NS(u)                                          (5 x KellerJordan quintic by default)
    nu <- ||O||_F
    s <- lerp(s, mean_j O_ij^2, 1 - beta2)              (one value per row)
    O <- O / (sqrt(s) + 1e-10);  O <- O * nu / (||O||_F + 1e-10)
    O <- O * sqrt(max(1, rows / cols))
    W <- W (1 - lr wd)  (only when the param had a gradient);  W <- W - lr O

Differences from the official file, all deliberate: the NS output is used in the parameter dtype for the
normalisation, upcast exactly inside the reductions and the update (the official code fails with float32 params on
torch 2.13 because its per-row buffer is float32 and the NS output bf16 -- this is the fix the reference
trajectory ``normuon_fp32ns`` also applies); a parameter without a gradient is skipped (the official code feeds it
a zero gradient); tensors with more than two dims are flattened to (shape[0], rest) for the row statistics too.
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
        # twice (r, the update) instead of eight times; the same values up to float rounding. r comes from each NS
        # batch in one reduction, and the small vectors are handled by foreach ops: no per-matrix Python work
        neps, lr, wd = group["norm_eps"], group["lr"], group["weight_decay"]
        os: list[torch.Tensor] = [None] * len(mats)  # type: ignore[list-item]
        r: list[torch.Tensor] = [None] * len(mats)  # type: ignore[list-item]
        dt = params[0].dtype  # O stays in the NS dtype: r is summed in dt and addcmul_ upcasts O exactly, as a cast would
        for O, idx, tall in self._orthogonalize(mats, group, schedule, group["eps"], batches=True):
            wide_js = [j for j, t in enumerate(tall) if not t]
            tall_js = [j for j, t in enumerate(tall) if t]
            if wide_js:
                Ow = O if not tall_js else O[wide_js]
                rows = torch.linalg.vector_norm(Ow, dim=-1, keepdim=True, dtype=dt).square_()
                for k, j in enumerate(wide_js):
                    os[idx[j]], r[idx[j]] = O[j], rows[k]
            if tall_js:  # a tall matrix's rows are its wide result's columns (square and sum: 6x faster than a norm over dim -2)
                Ot = O if not wide_js else O[tall_js]
                cols = torch.square(Ot.to(dt)).sum(-2, keepdim=True).mT
                for k, j in enumerate(tall_js):
                    os[idx[j]], r[idx[j]] = O[j].mT, cols[k]
        if any(p.dtype != dt for p in params):
            r = [ri.to(p.dtype) for ri, p in zip(r, params)]
        s2 = [self.state[p]["second_momentum_buffer"] for p in params]
        torch._foreach_lerp_(s2, torch._foreach_div(r, [o.size(-1) for o in os]), 1 - group["beta2"])
        c = torch._foreach_sqrt(s2)
        torch._foreach_add_(c, neps)
        torch._foreach_reciprocal_(c)  # 1 / (sqrt(s) + eps), per row
        q = torch._foreach_mul(r, c)
        torch._foreach_mul_(q, c)  # r / (sqrt(s) + eps)^2
        ratio = torch._foreach_sqrt(torch._foreach_norm(r, 1))  # ||O|| (r >= 0: its 1-norm is its sum)
        den = torch._foreach_sqrt(torch._foreach_norm(q, 1))  # ||O'||
        torch._foreach_add_(den, neps)
        torch._foreach_div_(ratio, den)
        torch._foreach_mul_(ratio, [max(1, o.size(-2) / o.size(-1)) ** 0.5 for o in os])  # the shape scale
        torch._foreach_mul_(c, ratio)
        if wd:
            torch._foreach_mul_(params, 1 - lr * wd)
        torch._foreach_addcmul_([p.view(o.shape) for p, o in zip(params, os)], os, c, value=-lr)


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
