"""A plain PyTorch GPT in the nanoGPT style: the comparator of bench/throughput.py (written for optbench).

Learned token and position embeddings, pre-LayerNorm blocks without biases, one fused q/k/v projection, causal
SDPA, a 4x GELU MLP, the LM head tied to the token embedding and a mean cross-entropy over all tokens; AdamW with
weight decay on the matrices, gradient clipping at 1. It has exactly the matmuls of optbench's GPT of the same
shape (q, k, v, out, fc, proj per block, and the head), so the two do the same model FLOPs per token.

It is not the same model. The track-3 GPT adds: biases on every Linear, RMSNorm with gains (on the embedding too),
QK-RMSNorm, half-truncated RoPE, ReLU^2, an untied LM head with a bias, the ISRU soft-cap and a summed loss. The
comparator has instead: q/k/v in one matmul, learned position embeddings, LayerNorm, GELU, a tied head, and gradient
clipping.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.out = nn.Linear(dim, dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.heads, C // self.heads).transpose(1, 2) for t in self.qkv(x).split(C, dim=2))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out(y.transpose(1, 2).contiguous().view(B, T, C))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim, bias=False)
        self.attn = SelfAttention(dim, heads)
        self.ln2 = nn.LayerNorm(dim, bias=False)
        self.fc = nn.Linear(dim, 4 * dim, bias=False)
        self.proj = nn.Linear(4 * dim, dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.proj(F.gelu(self.fc(self.ln2(x))))


class PlainGPT(nn.Module):
    """forward(idx, targets) -> mean cross-entropy."""

    def __init__(self, vocab_size: int, num_layers: int, dim: int, heads: int, seq_len: int):
        super().__init__()
        self.tok = nn.Embedding(vocab_size, dim)
        self.pos = nn.Embedding(seq_len, dim)
        self.blocks = nn.ModuleList([Block(dim, heads) for _ in range(num_layers)])
        self.ln = nn.LayerNorm(dim, bias=False)
        self.head = nn.Linear(dim, vocab_size, bias=False)
        self.head.weight = self.tok.weight  # tied
        for name, p in self.named_parameters():
            if p.ndim == 2:
                std = 0.02 / math.sqrt(2 * num_layers) if name.endswith(("out.weight", "proj.weight")) else 0.02
                nn.init.normal_(p, std=std)

    def forward(self, idx: Tensor, targets: Tensor) -> Tensor:
        x = self.tok(idx) + self.pos(torch.arange(idx.size(1), device=idx.device))
        for block in self.blocks:
            x = block(x)
        logits = self.head(self.ln(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def plain_optimizer(model: nn.Module, lr: float = 6e-4, weight_decay: float = 0.1) -> torch.optim.AdamW:
    """AdamW, weight decay on the matrices only, betas (0.9, 0.95)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95))


def plain_step(model: nn.Module, opt: torch.optim.Optimizer, x: Tensor, y: Tensor, micro_rows: int,
               clock) -> None:
    """One training step: mean loss per microbatch / accumulation, backward, clip at 1, AdamW, zero grads.
    `clock(phase)` is called after each phase ("forward", "backward", "optimizer")."""
    accum = x.size(0) // micro_rows
    for i in range(accum):
        loss = model(x[i * micro_rows:(i + 1) * micro_rows], y[i * micro_rows:(i + 1) * micro_rows]) / accum
        clock("forward")
        loss.backward()
        clock("backward")
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    clock("optimizer")
