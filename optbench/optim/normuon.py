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

from optbench.optim.muon import CoeffSpec, Coeffs, ShardedMatrixOptimizer, check_ns_args, newton_schulz
from optbench.optim.registry import register


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

    State per parameter: ``momentum_buffer`` (param shape and dtype), ``second_momentum_buffer`` (rows x 1).
    Distributed: as Muon (sorted by shape, round-robin ownership, one all_gather per chunk).
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
        )
        super().__init__(params, defaults)

    def _check_group(self, group: dict) -> None:
        super()._check_group(group)
        if not 0.0 <= group["beta2"] < 1.0:
            raise ValueError(f"beta2: must be in [0, 1), got {group['beta2']!r}")

    def _update(self, p: torch.Tensor, group: dict, schedule: list[Coeffs]) -> None:
        g = p.grad
        state = self.state[p]
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = torch.zeros_like(p)
            state["second_momentum_buffer"] = torch.zeros(p.size(0), 1, dtype=p.dtype, device=p.device)
        m, s = state["momentum_buffer"], state["second_momentum_buffer"]
        mu = group["momentum"]
        m.lerp_(g, 1 - mu)
        u = torch.lerp(g, m, mu) if group["nesterov"] else m
        if u.ndim > 2:
            u = u.reshape(u.size(0), -1)
        o = newton_schulz(u, schedule, group["ns_dtype"], group["eps"]).to(p.dtype)
        neps = group["norm_eps"]
        vnorm = o.norm(dim=(-2, -1), keepdim=True)
        s.lerp_(torch.mean(o * o, dim=-1, keepdim=True), 1 - group["beta2"])
        o.mul_(1 / s.sqrt().add_(neps))
        o.mul_(vnorm / o.norm(dim=(-2, -1), keepdim=True).add_(neps))  # keep ||O||_F as before the row scaling
        o *= max(1, u.size(-2) / u.size(-1)) ** 0.5
        lr = group["lr"]
        if group["weight_decay"]:
            p.mul_(1 - lr * group["weight_decay"])
        p.add_(o.reshape(p.shape), alpha=-lr)


register(
    "normuon",
    NorMuon,
    reference=(
        "Li et al. 2025, NorMuon: Making Muon more efficient and scalable (arXiv:2510.05491); "
        "zichongli5/NorMuon@d45c9a42 normuon.py (NorMuon / SingleDeviceNorMuon)"
    ),
    matrix_only=True,
    notes="Muon + per-row second-moment normalisation after NS; NS output cast to the param dtype (fp32-safe)",
)
