"""AdamW and Adam: torch's own implementations, registered under the zoo's names, and the rule for their kernel.

torch.optim.AdamW is what the benchmark itself uses (bias correction on, decoupled decay p <- p(1 - lr*wd)
with the scheduled lr; the track-3 script passes ``fused=True``), so the zoo uses it unchanged rather than
re-deriving it. ``build_optimizers`` turns torch's fused kernel on where it is the same update
(``fused_is_same_update``): for float32 / float64 parameters on CPU or CUDA the fused kernel computes the update in
the parameters' own precision, differing from the per-tensor loop only in rounding (and as close to a float64
run), 3-5x faster on CPU. For bf16 / fp16 parameters it computes in float32 -- a different update -- so there it
is used only on CUDA, as upstream does. (torch 2.13's fused CPU kernel reads every tensor as contiguous: a
non-contiguous gradient, which autograd never produces for a contiguous parameter but hand-set ``.grad`` can, gets
a wrong update; AdEMAMix's use of the kernel checks each piece.)
"""

from __future__ import annotations

import torch

from optbench.optim.registry import NONNEG, POSITIVE, betas, register

AdamW = torch.optim.AdamW
Adam = torch.optim.Adam

FUSED_SAME_UPDATE = (torch.float32, torch.float64)


def fused_is_same_update(params) -> bool:
    """True when torch's fused Adam(W) kernel computes the same update as its per-tensor loop for these params:
    all float32 / float64, all on CPU or CUDA (params: tensors, (name, tensor) pairs or param-group dicts)."""
    tensors = []
    for item in params:
        if isinstance(item, dict):
            tensors.extend(item["params"])
        else:
            tensors.append(item[1] if isinstance(item, tuple) else item)
    return bool(tensors) and all(
        isinstance(t, torch.Tensor) and t.dtype in FUSED_SAME_UPDATE and t.device.type in ("cpu", "cuda")
        for t in tensors
    )


register(
    "adamw",
    AdamW,
    reference="Loshchilov & Hutter 2019 (arXiv:1711.05101); torch.optim.AdamW",
    ranges=dict(betas=betas(2), eps=POSITIVE, weight_decay=NONNEG),
)
register(
    "adam",
    Adam,
    reference="Kingma & Ba 2015 (arXiv:1412.6980); torch.optim.Adam (weight_decay is L2, not decoupled)",
    ranges=dict(betas=betas(2), eps=POSITIVE, weight_decay=NONNEG),
)
