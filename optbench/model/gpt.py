"""The track-3 GPT of the Modded-NanoGPT Optimization Benchmark (records/track_3_optimization).

12 x 768 at full size: biased Linears, RMSNorm with gains, QK-RMSNorm without gains, half-truncated RoPE,
attention scale 0.12, ReLU^2 MLP, untied embedding (bf16 on GPU) and LM head, ISRU soft-cap 15, summed CE.
Parameter names match upstream. This module imports only torch so a submission script can inline it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int = 50304
    num_layers: int = 12
    model_dim: int = 768
    head_dim: int = 128
    mlp_ratio: int = 4
    attn_scale: float = 0.12
    softcap: float = 15.0
    rope_base_inv: float = 1 / 1024  # angular frequencies (1/1024)^linspace(0, 1, head_dim/4)

    @property
    def num_heads(self) -> int:
        return self.model_dim // self.head_dim


class RMSNorm(nn.Module):
    """RMSNorm with learnable per-channel gains (F.rms_norm, default eps)."""

    def __init__(self, dim: int):
        super().__init__()
        self.gains = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return F.rms_norm(x, (x.size(-1),), weight=self.gains.type_as(x))


class Linear(nn.Linear):
    """Biased Linear whose weight and bias are cast to the activation dtype at use."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__(in_features, out_features, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight.type_as(x), self.bias.type_as(x))


class Rotary(nn.Module):
    """Half-truncated RoPE: head_dim/4 frequencies plus head_dim/4 zeros; pairs are (first, second half)."""

    def __init__(self, head_dim: int, base_inv: float = 1 / 1024):
        super().__init__()
        freq = base_inv ** torch.linspace(0, 1, steps=head_dim // 4, dtype=torch.float32)
        # persistent, as upstream's: its state_dicts (which hold the buffer) load strictly
        self.register_buffer("angular_freq", torch.cat([freq, freq.new_zeros(head_dim // 4)]))

    def forward(self, x_BTHD: Tensor) -> Tensor:
        pos = torch.arange(x_BTHD.size(1), dtype=torch.float32, device=x_BTHD.device)
        theta = torch.outer(pos, self.angular_freq)[None, :, None, :]
        cos, sin = theta.cos(), theta.sin()
        x1, x2 = x_BTHD.to(dtype=torch.float32).chunk(2, dim=-1)
        y1 = x1 * cos + x2 * sin
        y2 = x1 * (-sin) + x2 * cos
        return torch.cat((y1, y2), 3).type_as(x_BTHD)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.num_heads, self.head_dim, self.scale = cfg.num_heads, cfg.head_dim, cfg.attn_scale
        hdim = self.num_heads * self.head_dim
        self.q = Linear(cfg.model_dim, hdim)
        self.k = Linear(cfg.model_dim, hdim)
        self.v = Linear(cfg.model_dim, hdim)
        self.proj = Linear(hdim, cfg.model_dim)
        self.rotary = Rotary(cfg.head_dim, cfg.rope_base_inv)

    def forward(self, x: Tensor) -> Tensor:
        B, T = x.size(0), x.size(1)
        q = self.q(x).view(B, T, self.num_heads, self.head_dim)
        k = self.k(x).view(B, T, self.num_heads, self.head_dim)
        v = self.v(x).view(B, T, self.num_heads, self.head_dim)
        q, k = F.rms_norm(q, (q.size(-1),)), F.rms_norm(k, (k.size(-1),))
        q, k = self.rotary(q), self.rotary(k)
        y = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), scale=self.scale, is_causal=True
        ).transpose(1, 2)
        return self.proj(y.contiguous().view(B, T, self.num_heads * self.head_dim))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.fc = Linear(cfg.model_dim, cfg.mlp_ratio * cfg.model_dim)
        self.proj = Linear(cfg.mlp_ratio * cfg.model_dim, cfg.model_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(self.fc(x).relu().square())


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.attn = CausalSelfAttention(cfg)
        self.mlp = MLP(cfg)
        self.norm1 = RMSNorm(cfg.model_dim)
        self.norm2 = RMSNorm(cfg.model_dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class SoftCap(torch.autograd.Function):
    """ISRU soft-cap y = c*z / sqrt(z^2 + c^2) with fewer passes over the logits than autograd's graph.

    The forward evaluates upstream's expression (c*z) * rsqrt(z^2 + c^2) in the same order (bitwise equal);
    the backward uses dy/dz = c^3 * r^3 with r = rsqrt(z^2 + c^2), saving only r.
    """

    @staticmethod
    def forward(ctx, z: Tensor, c: float) -> Tensor:
        r = z.square().add_(c * c).rsqrt_()
        ctx.save_for_backward(r)
        ctx.c = c
        return (c * z).mul_(r)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (r,) = ctx.saved_tensors
        return grad * r.pow(3).mul_(ctx.c**3), None


def softcap(z: Tensor, c: float) -> Tensor:
    return SoftCap.apply(z, c)


class GPT(nn.Module):
    """forward(inputs, targets) -> summed CE loss (fp32 scalar); forward(inputs) -> soft-capped fp32 logits."""

    def __init__(self, cfg: GPTConfig, embed_dtype: torch.dtype = torch.float32):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.model_dim).to(embed_dtype)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.num_layers)])
        self.proj = Linear(cfg.model_dim, cfg.vocab_size)
        self.norm1 = RMSNorm(cfg.model_dim)
        self.norm2 = RMSNorm(cfg.model_dim)

    def param_roles(self) -> dict[str, str]:
        """Role of each parameter for the upstream optimizer split: embed | head | scalar | matrix."""
        roles = {}
        for name, p in self.named_parameters():
            if name == "embed.weight":
                roles[name] = "embed"
            elif name == "proj.weight":
                roles[name] = "head"
            elif p.ndim < 2:
                roles[name] = "scalar"
            else:
                roles[name] = "matrix"
        return roles

    def logits(self, inputs: Tensor) -> Tensor:
        x = self.norm1(self.embed(inputs))
        for block in self.blocks:
            x = block(x)
        return softcap(self.proj(self.norm2(x)).float(), self.cfg.softcap)

    def forward(self, inputs: Tensor, targets: Tensor | None = None) -> Tensor:
        logits = self.logits(inputs)
        if targets is None:
            return logits
        return F.cross_entropy(logits.view(targets.numel(), -1), targets.reshape(-1), reduction="sum")


def init_weights(model: nn.Module) -> None:
    """Upstream init: `proj` weights (attn, MLP and LM head) zero, embedding N(0,1), other weights
    N(0, 0.33**0.5 / fan_in**0.5), biases 0, gains 1. Draws from the default torch RNG in parameter order exactly as
    upstream's loop does (gains come from `normal_(mean=1, std=0)`, which consumes random numbers), so the same
    seed gives the same tensors as upstream (tests/model/test_init_parity.py)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight"):
                if "proj" in name:
                    p.zero_()
                elif "embed" in name:
                    p.normal_()
                else:
                    p.normal_(std=0.33**0.5 / p.size(-1) ** 0.5)  # upstream's expression, bit for bit
            elif name.endswith("bias"):
                p.zero_()
            elif name.endswith("gains"):
                p.normal_(mean=1, std=0)  # = 1 exactly, and advances the RNG as upstream's does
            else:
                raise ValueError(f"uninitialized parameter: {name}")


def init_weights_torch_default(model: nn.Module) -> None:
    """Result #2's init: torch's default Linear/Embedding init, then every `proj` weight zeroed."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                module.reset_parameters()
            elif isinstance(module, RMSNorm):
                module.gains.fill_(1.0)
        for name, p in model.named_parameters():
            if name.endswith("weight") and "proj" in name:
                p.zero_()


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
