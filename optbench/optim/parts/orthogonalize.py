"""Orthogonalisation: Muon's Newton-Schulz approximation of the update's polar factor.

    O <- NS(u) ~ U V^T  for u = U S V^T   (quintic X <- aX + (bA + cA^2) X, A = X X^T, after a normalisation)

Source: Muon, Jordan et al. 2024 (kellerjordan.github.io/posts/muon); modded-nanogpt track 3
``zeropower_via_newtonschulz5`` (12 x (2, -1.5, 0.5) in bf16 since efabd7eb). ``norm = "gram"`` normalises by ||X X^T||_F^(1/2) as the record's
``gram_frobenius_norm_estimate`` (#44, #46). The Newton-Schulz call is ``optbench.optim.muon.newton_schulz``
(one call site, ``_orthogonalize`` below). ``orthogonalize`` keeps its input in ``ctx.memo["pre_ortho"]`` for
parts that need it (contra_muon).
"""

from __future__ import annotations

import torch

from optbench.optim.muon import check_ns_args, newton_schulz, resolve_ns_schedule
from optbench.optim.parts.base import Part, StepContext


def _ns_dtype(name) -> torch.dtype:
    dt = getattr(torch, name, None) if isinstance(name, str) else name
    if not isinstance(dt, torch.dtype) or not dt.is_floating_point:
        raise ValueError(f"orthogonalize.ns_dtype: must name a floating torch dtype, got {name!r}")
    return dt


#: ``arithmetic`` knob: "auto" = as the zoo's Muon (fused products in fp32, upstream's rounding in bf16),
#: "upstream" = upstream's rounding after every operation in any dtype, "fused" = fused products in any dtype
_FUSED = {"auto": None, "upstream": False, "fused": True}


def _orthogonalize(u: torch.Tensor, group: dict) -> torch.Tensor:
    """The chain's one Newton-Schulz call."""
    schedule = resolve_ns_schedule(group["orthogonalize.ns_coefficients"], group["orthogonalize.ns_steps"])
    return newton_schulz(u, schedule, _ns_dtype(group["orthogonalize.ns_dtype"]), group["orthogonalize.eps"],
                         norm=group["orthogonalize.norm"], fused=_FUSED[group["orthogonalize.arithmetic"]])


class Orthogonalize(Part):
    """Newton-Schulz orthogonalisation of the update (2-D parameters). Output dtype = ``ns_dtype``."""

    name = "orthogonalize"
    stage = "transform"
    matrix_only = True
    knobs = {"ns_coefficients": "track3", "ns_steps": None, "ns_dtype": "bfloat16", "eps": 1e-7,
             "norm": "frobenius", "arithmetic": "auto"}

    def check_group(self, group: dict) -> None:
        super().check_group(group)
        check_ns_args(self.knob(group, "ns_coefficients"), self.knob(group, "ns_steps"),
                      _ns_dtype(self.knob(group, "ns_dtype")))
        if self.knob(group, "norm") not in ("frobenius", "gram"):
            raise ValueError(f"orthogonalize.norm: must be 'frobenius' or 'gram', got {self.knob(group, 'norm')!r}")
        if self.knob(group, "arithmetic") not in _FUSED:
            raise ValueError(f"orthogonalize.arithmetic: must be one of {', '.join(_FUSED)}, got "
                             f"{self.knob(group, 'arithmetic')!r}")
        if not self.knob(group, "eps") > 0:
            raise ValueError(f"orthogonalize.eps: must be > 0, got {self.knob(group, 'eps')!r}")

    def transform(self, u: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        ctx.memo["pre_ortho"] = u
        return _orthogonalize(u, ctx.group)
