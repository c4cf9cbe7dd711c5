"""Pieces the packed-row models share (medium.py, remix.py): the summed loss over a head, fp32 init draws."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


def summed_cross_entropy(head: Callable[[Tensor], Tensor], x: Tensor, targets: Tensor, chunk_tokens: int) -> Tensor:
    """Summed CE of head(x) against targets over all tokens; without grad in chunks of chunk_tokens tokens, so an
    evaluation of a 65,536-token row never holds all its logits at once."""
    x, t = x.flatten(end_dim=-2), targets.reshape(-1)
    if torch.is_grad_enabled():
        return F.cross_entropy(head(x), t, reduction="sum")
    n = chunk_tokens
    return sum(F.cross_entropy(head(x[i : i + n]), t[i : i + n], reduction="sum") for i in range(0, len(t), n))


@torch.no_grad()
def draw_fp32(p: Tensor, fill: Callable[[Tensor], Tensor]) -> None:
    """Draw in fp32 (upstream inits in fp32 and casts to bf16 afterwards), then copy into p."""
    if p.dtype == torch.float32:
        fill(p)
    else:
        p.copy_(fill(torch.empty(p.shape, dtype=torch.float32, device=p.device)))
