"""The GPT of the 10/18/24 NanoGPT speedrun record, on which KellerJordan/modded-nanogpt
`records/102924_Optimizers/` compares Adam, DistributedShampoo, SOAP and Muon.

Source read: the code section of that folder's four logs (8d6193f4 Muon, 95a9fd44 Adam, 8bfe4e35 Shampoo, e21a2838
SOAP; identical model code). 12 x 768 at full size; parameter names as upstream, so its state_dicts load strictly:
- `transformer.wte` tied to `lm_head` (50,304 rows, torch's Linear init U(+-1/sqrt(768))); NO norm on the embedding
  (x = wte(t));
- block: x <- x + attn(norm(x)); x <- x + mlp(norm(x)); RMSNorm without gains (F.rms_norm), no biases;
- attention: separate `c_q`, `c_k`, `c_v` (768 x 768 each, torch's Linear init), 6 heads of 128, QK-RMSNorm,
  full RoPE with base 10,000 whose cos/sin are rounded to bf16 (upstream caches them in bf16, also on CPU), plain
  causal attention over each 1,024-token row (no document masking), SDPA's default scale 1/sqrt(128), zero-init
  `c_proj`;
- MLP 768 -> 3,072 -> 768, ReLU^2, zero-init `c_proj`;
- final norm, LM head, fp32 logits, no soft-cap.

Init (`init_speedrun101824_weights`, upstream's construction order from the default torch RNG): wte N(0,1) (drawn,
then discarded by the tie), per block c_q, c_k, c_v, c_proj (then zero), c_fc, mlp c_proj (then zero) with torch's
Linear init, then the LM head. Same seed, same tensors as upstream.

Precision: fp32 weights; on CUDA the forward runs under torch.autocast(bfloat16), as upstream's `ctx`.
Loss: forward(inputs, targets) returns the SUMMED cross entropy; the track sets `loss_reduction = "mean"`, so the
loop scales the gradient to upstream's mean over the batch.

Parameter count at full size: 123,568,128 = 50,304*768 (tied) + 12 * (4*768^2 + 2*4*768^2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class Speedrun101824Config:
    vocab_size: int = 50304  # rows of the tied embedding/head (GPT-2's 50,257 padded to a multiple of 128)
    num_layers: int = 12
    model_dim: int = 768
    head_dim: int = 128
    mlp_ratio: int = 4
    rope_base: float = 10000.0
    max_seq_len: int = 1024  # rows are this long; RoPE tables are built for it

    def __post_init__(self) -> None:
        if self.model_dim % self.head_dim or self.head_dim % 2:
            raise ValueError(f"invalid Speedrun101824Config: model_dim {self.model_dim} must be a multiple of an "
                             f"even head_dim {self.head_dim}")

    @property
    def num_heads(self) -> int:
        return self.model_dim // self.head_dim


def norm(x: Tensor) -> Tensor:
    return F.rms_norm(x, (x.size(-1),))


class Rotary(nn.Module):
    """RoPE over all head dims, pairs (first half, second half); cos/sin computed in fp32 on the CPU and rounded
    to bf16 (upstream's cache), then multiplied in the activation dtype."""

    def __init__(self, head_dim: int, base: float, max_seq_len: int):
        super().__init__()
        self.head_dim, self.base, self.max_seq_len = head_dim, base, max_seq_len
        self.register_buffer("cos", torch.empty(max_seq_len, head_dim // 2, dtype=torch.bfloat16), persistent=False)
        self.register_buffer("sin", torch.empty(max_seq_len, head_dim // 2, dtype=torch.bfloat16), persistent=False)
        self.reset()

    @torch.no_grad()
    def reset(self) -> None:
        if self.cos.is_meta:
            return
        inv_freq = 1.0 / (self.base ** (torch.arange(0, self.head_dim, 2).float() / self.head_dim))
        freqs = torch.outer(torch.arange(self.max_seq_len).type_as(inv_freq), inv_freq)
        self.cos.copy_(freqs.cos().bfloat16())
        self.sin.copy_(freqs.sin().bfloat16())

    def forward(self, x_BTHD: Tensor) -> Tensor:
        T = x_BTHD.size(1)
        if T > self.max_seq_len:
            raise ValueError(f"sequence of {T} tokens is longer than the RoPE table ({self.max_seq_len})")
        cos, sin = self.cos[None, :T, None, :], self.sin[None, :T, None, :]
        d = x_BTHD.size(3) // 2
        x1, x2 = x_BTHD[..., :d], x_BTHD[..., d:]
        y1 = x1 * cos + x2 * sin
        y2 = x1 * (-sin) + x2 * cos
        return torch.cat([y1, y2], 3).type_as(x_BTHD)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: Speedrun101824Config):
        super().__init__()
        self.num_heads, self.head_dim = cfg.num_heads, cfg.head_dim
        d = cfg.model_dim
        self.c_q = nn.Linear(d, d, bias=False)
        self.c_k = nn.Linear(d, d, bias=False)
        self.c_v = nn.Linear(d, d, bias=False)
        self.c_proj = nn.Linear(d, d, bias=False)
        self.rotary = Rotary(cfg.head_dim, cfg.rope_base, cfg.max_seq_len)

    def forward(self, x: Tensor) -> Tensor:
        B, T, C = x.size()
        q = self.c_q(x).view(B, T, self.num_heads, self.head_dim)
        k = self.c_k(x).view(B, T, self.num_heads, self.head_dim)
        v = self.c_v(x).view(B, T, self.num_heads, self.head_dim)
        q, k = norm(q), norm(k)
        q, k = self.rotary(q), self.rotary(k)
        y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view_as(x))


class MLP(nn.Module):
    def __init__(self, cfg: Speedrun101824Config):
        super().__init__()
        self.c_fc = nn.Linear(cfg.model_dim, cfg.mlp_ratio * cfg.model_dim, bias=False)
        self.c_proj = nn.Linear(cfg.mlp_ratio * cfg.model_dim, cfg.model_dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.c_proj(F.relu(self.c_fc(x)).square())


class Block(nn.Module):
    def __init__(self, cfg: Speedrun101824Config):
        super().__init__()
        self.attn = CausalSelfAttention(cfg)
        self.mlp = MLP(cfg)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(norm(x))
        return x + self.mlp(norm(x))


class Speedrun101824GPT(nn.Module):
    """forward(inputs, targets) -> summed CE loss (fp32 scalar); forward(inputs) -> fp32 logits (rows, T, vocab).

    init=False leaves the weights to init_speedrun101824_weights (the loop's way, so that the seed alone decides
    them). Modules are built with torch's skip_init-style meta construction: nothing is drawn twice."""

    def __init__(self, cfg: Speedrun101824Config, *, init: bool = True):
        super().__init__()
        self.cfg = cfg
        with torch.device("meta"):  # shapes only; to_empty below allocates without drawing
            self.transformer = nn.ModuleDict(dict(
                wte=nn.Embedding(cfg.vocab_size, cfg.model_dim),
                h=nn.ModuleList([Block(cfg) for _ in range(cfg.num_layers)]),
            ))
            self.lm_head = nn.Linear(cfg.model_dim, cfg.vocab_size, bias=False)
        self.to_empty(device=torch.get_default_device())
        self.transformer.wte.weight = self.lm_head.weight  # upstream's weight tying (after to_empty, which unties)
        if init and not self.lm_head.weight.is_meta:
            init_speedrun101824_weights(self)

    def param_roles(self) -> dict[str, str]:
        """Role of each parameter for the optimizer split: the tied embedding/head is "embed"; blocks "matrix"."""
        return {name: "embed" if name == "transformer.wte.weight" else ("matrix" if p.ndim >= 2 else "scalar")
                for name, p in self.named_parameters()}

    def logits(self, inputs: Tensor) -> Tensor:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=inputs.is_cuda):
            x = self.transformer.wte(inputs)
            for block in self.transformer.h:
                x = block(x)
            return self.lm_head(norm(x)).float()

    def forward(self, inputs: Tensor, targets: Tensor | None = None) -> Tensor:
        logits = self.logits(inputs)
        if targets is None:
            return logits
        return F.cross_entropy(logits.view(targets.numel(), -1), targets.reshape(-1), reduction="sum")


def _torch_linear_init(w: Tensor) -> None:
    """nn.Linear.reset_parameters on the weight: kaiming_uniform_(a=sqrt(5)), i.e. U(+-1/sqrt(fan_in))."""
    nn.init.kaiming_uniform_(w, a=math.sqrt(5))


@torch.no_grad()
def init_speedrun101824_weights(model: Speedrun101824GPT) -> None:
    """Upstream's init, drawing from the default torch RNG in upstream's construction order (module doc)."""
    cfg = model.cfg
    for module in model.modules():
        if isinstance(module, Rotary):
            module.reset()
    dev = model.lm_head.weight.device
    torch.empty(cfg.vocab_size, cfg.model_dim, device=dev).normal_()  # the embedding upstream ties away
    for block in model.transformer.h:
        for lin in (block.attn.c_q, block.attn.c_k, block.attn.c_v, block.attn.c_proj, block.mlp.c_fc, block.mlp.c_proj):
            _torch_linear_init(lin.weight)
        block.attn.c_proj.weight.zero_()
        block.mlp.c_proj.weight.zero_()
    _torch_linear_init(model.lm_head.weight)
