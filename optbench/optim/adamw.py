"""AdamW and Adam: torch's own implementations, with torch's fused kernel on by default where it is the same update.

torch.optim.AdamW is what the benchmark itself uses (bias correction on, decoupled decay p <- p(1 - lr*wd)
with the scheduled lr; the track-3 script passes ``fused=True``), so the zoo uses it rather than re-deriving it.
The only difference is the default implementation: ``fused=None`` and ``foreach=None`` pick torch's fused kernel
when every parameter is a float32 / float64 tensor on CPU or CUDA. There the fused kernel computes the same
update in the parameters' own precision (it differs from the per-tensor loop only in rounding, and is as close
to a float64 run), 3-5x faster on CPU. For bf16 / fp16 parameters it would compute in float32 -- a different
update -- so torch's default (per-tensor loop on CPU, foreach on CUDA) stays.
"""

from __future__ import annotations

import torch

from optbench.optim.registry import register

FUSED_SAME_UPDATE = (torch.float32, torch.float64)


def fused_is_same_update(params) -> bool:
    """True when torch's fused Adam(W) kernel computes the same update as its per-tensor loop for these params:
    all float32 / float64, all on CPU or CUDA (params: tensors, (name, tensor) pairs or param-group dicts)."""
    tensors = []
    for item in params:
        if isinstance(item, dict):
            tensors.extend(item["params"])
        else:  # a tensor, or a (name, tensor) pair
            tensors.append(item[1] if isinstance(item, tuple) else item)
    return bool(tensors) and all(
        isinstance(t, torch.Tensor) and t.dtype in FUSED_SAME_UPDATE and t.device.type in ("cpu", "cuda")
        for t in tensors
    )


def _implementation(params, foreach, fused, differentiable) -> tuple[list, bool | None]:
    params = list(params)  # a generator would be used up by the check
    if fused is None and foreach is None and not differentiable and fused_is_same_update(params):
        fused = True
    return params, fused


class AdamW(torch.optim.AdamW):
    """``torch.optim.AdamW`` (same arguments and defaults), with ``fused`` on by default where it is the same update
    (float32 / float64 parameters on CPU or CUDA; see the module docstring). Pass ``fused`` or ``foreach`` to choose."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False, foreach=None, capturable=False, differentiable=False, fused=None):
        params, fused = _implementation(params, foreach, fused, differentiable)
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         maximize=maximize, foreach=foreach, capturable=capturable, differentiable=differentiable,
                         fused=fused)


class Adam(torch.optim.Adam):
    """``torch.optim.Adam`` (same arguments and defaults; ``weight_decay`` is L2), with ``fused`` on by default
    where it is the same update, as AdamW."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, fused=None,
                 decoupled_weight_decay=False):
        params, fused = _implementation(params, foreach, fused, differentiable)
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         foreach=foreach, maximize=maximize, capturable=capturable, differentiable=differentiable,
                         fused=fused, decoupled_weight_decay=decoupled_weight_decay)


register(
    "adamw",
    AdamW,
    family="adamw",
    reference="Loshchilov & Hutter 2019 (arXiv:1711.05101); torch.optim.AdamW (fused kernel for float32/64)",
)
register(
    "adam",
    Adam,
    family="adamw",
    reference="Kingma & Ba 2015 (arXiv:1412.6980); torch.optim.Adam (weight_decay is L2, not decoupled; fused kernel "
    "for float32/64)",
)
