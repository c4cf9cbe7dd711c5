"""The modded-nanogpt-remixed baselines A and M (Srivastava 2025): a "modern dense transformer" GPT.

Source read: flukeskywalker/modded-nanogpt-remixed @ 74a75bc8, `train_gpt_A.py` and `train_gpt_M.py` (the code
of `log/A.txt` and `log/M.txt`). Both scripts share the model; A ties the embedding to the LM head, M unties it,
zero-inits the head and soft-caps the logits.

Architecture (12 x 768 at full size; parameter names as upstream, so upstream state_dicts load strictly):
- `embed` (A: the LM head's weight, 50,304 rows; M: its own 50,257 x 768, N(0,1)); x = norm(embed(t));
- block: x <- x + attn(norm(x)); x <- x + mlp(norm(x)); RMSNorm without gains (F.rms_norm), no biases;
- attention: merged `qkv_w` (3, d, d), heads of 128, QK-RMSNorm, half-truncated RoPE over the packed row
  (positions 0..T-1), fixed scale 0.12, zero-init `c_proj`; document-causal mask (a document starts at BOS
  50256) with a token-level sliding window: key k is visible from query q iff k <= q, same document and
  q - k < window (1,024);
- MLP d -> 4d -> d, ReLU^2, zero-init `c_proj`;
- final norm, `lm_head` (50,304 rows = 50,257 padded to a multiple of 128), fp32 logits;
  M only: z <- 30 sigmoid(z / (7.5 sqrt(d))).

Init (`init_remix_weights`, the upstream construction order, from the default torch RNG): embedding N(0,1) (drawn
and then discarded by A, which ties it to the head), per block qkv_w uniform with std 0.5/sqrt(d), attn c_proj
torch's Linear init then zero, c_fc torch's Linear init, mlp c_proj torch's Linear init then zero, LM head torch's
Linear init (M: then zero). Same seed, same tensors as upstream.

Attention: on CPU (and as the reference) a dense (rows, 1, T, T) boolean mask through
F.scaled_dot_product_attention (optbench.model.medium.attend); on CUDA a FlexAttention BlockMask built from the
same mask_mod with create_block_mask, rows laid end to end, as upstream.

Loss: forward(inputs, targets) returns the SUMMED cross entropy (the harness's convention); the remix tracks set
`loss_reduction = "mean"`, so the loop scales the gradient to upstream's mean over the batch. Precision: upstream
casts the whole model (weights and optimizer states) to bf16; `dtype` does the same (the loop passes bf16 on CUDA).

Parameter count at full size: A 123,568,128 = head/embedding 50,304*768 + 12 * 7,077,888 (qkv 3*768^2,
c_proj 768^2, MLP 2*4*768^2); M 162,165,504 (+ the untied 50,257*768 embedding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from optbench.model.common import draw_fp32 as _fill
from optbench.model.common import summed_cross_entropy
from optbench.model.medium import Rotary, attend, document_ids, next_multiple_of_n, norm


@dataclass(frozen=True)
class RemixConfig:
    vocab_size: int = 50257  # token ids (GPT-2); the LM head is padded to padded_vocab_size rows
    num_layers: int = 12
    model_dim: int = 768
    head_dim: int = 128
    mlp_ratio: int = 4
    attn_scale: float = 0.12
    rope_base_inv: float = 1 / 1024
    tied: bool = False  # A: the embedding IS the LM head weight
    softcap: float | None = None  # M: 30.0 -> z <- 30 sigmoid(z / (7.5 sqrt(model_dim)))
    window: int = 1024  # sliding window in tokens: q - k < window
    bos_id: int = 50256  # a document starts at this token
    head_pad_multiple: int = 128

    def __post_init__(self) -> None:
        problems = []
        if self.model_dim % self.head_dim:
            problems.append(f"model_dim {self.model_dim} is not a multiple of head_dim {self.head_dim}")
        if self.head_dim % 4:
            problems.append(f"head_dim {self.head_dim} is not a multiple of 4 (half-truncated RoPE)")
        if self.window < 1:
            problems.append(f"window {self.window} must be at least 1 token")
        if problems:
            raise ValueError("invalid RemixConfig: " + "; ".join(problems))

    @property
    def num_heads(self) -> int:
        return self.model_dim // self.head_dim

    @property
    def padded_vocab_size(self) -> int:
        return next_multiple_of_n(self.vocab_size, self.head_pad_multiple)


# -----------------------------------------------------------------------------
# Attention masks: document-causal with a token-level sliding window (upstream's mask_mod)


def window_mask(docs: Tensor, window: int) -> Tensor:
    """(rows, 1, T, T) boolean mask (True = may attend): k <= q, same document, q - k < window."""
    T = docs.size(1)
    pos = torch.arange(T, device=docs.device)
    back = pos[:, None] - pos[None, :]
    keep = (back >= 0) & (back < window) & (docs[:, :, None] == docs[:, None, :])
    return keep[:, None]


_compiled_create_block_mask = None


def flex_window_mask(docs: Tensor, window: int):
    """The same mask as a FlexAttention BlockMask over the rows laid end to end (documents renumbered so that
    none spans two rows), built like upstream: create_block_mask on the mask_mod, compiled."""
    from torch.nn.attention.flex_attention import create_block_mask

    global _compiled_create_block_mask
    if _compiled_create_block_mask is None:
        _compiled_create_block_mask = torch.compile(create_block_mask, dynamic=False)
    starts = torch.ones_like(docs, dtype=torch.bool)
    starts[:, 1:] = docs[:, 1:] != docs[:, :-1]
    flat = starts.flatten().cumsum(0)
    S = flat.numel()

    def document_causal_window(b, h, q_idx, kv_idx):
        return (q_idx >= kv_idx) & (flat[q_idx] == flat[kv_idx]) & (q_idx - kv_idx < window)

    return _compiled_create_block_mask(document_causal_window, None, None, S, S, device=docs.device)


# -----------------------------------------------------------------------------
# Modules


class Linear(nn.Module):
    """nn.Linear(bias=False)'s weight layout and name; the weight is drawn by init_remix_weights."""

    def __init__(self, in_features: int, out_features: int, dtype: torch.dtype):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features, dtype=dtype))

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight.type_as(x))


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: RemixConfig, dtype: torch.dtype):
        super().__init__()
        self.num_heads, self.head_dim, self.scale = cfg.num_heads, cfg.head_dim, cfg.attn_scale
        d = cfg.model_dim
        self.qkv_w = nn.Parameter(torch.empty(3, d, d, dtype=dtype))
        self.rotary = Rotary(cfg.head_dim, cfg.rope_base_inv)
        self.c_proj = Linear(d, d, dtype)

    def forward(self, x: Tensor, mask) -> Tensor:
        B, T = x.size(0), x.size(1)
        qkv = F.linear(x, self.qkv_w.flatten(end_dim=1).type_as(x)).view(B, T, 3 * self.num_heads, self.head_dim)
        q, k, v = qkv.chunk(3, dim=-2)
        q, k = norm(q), norm(k)
        q, k = self.rotary(q), self.rotary(k)
        y = attend(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), mask, self.scale).transpose(1, 2)
        return self.c_proj(y.contiguous().view_as(x))


class MLP(nn.Module):
    def __init__(self, cfg: RemixConfig, dtype: torch.dtype):
        super().__init__()
        hdim = cfg.mlp_ratio * cfg.model_dim
        self.c_fc = Linear(cfg.model_dim, hdim, dtype)
        self.c_proj = Linear(hdim, cfg.model_dim, dtype)

    def forward(self, x: Tensor) -> Tensor:
        return self.c_proj(F.relu(self.c_fc(x)).square())


class Block(nn.Module):
    def __init__(self, cfg: RemixConfig, dtype: torch.dtype):
        super().__init__()
        self.attn = CausalSelfAttention(cfg, dtype)
        self.mlp = MLP(cfg, dtype)

    def forward(self, x: Tensor, mask) -> Tensor:
        x = x + self.attn(norm(x), mask)
        return x + self.mlp(norm(x))


class RemixGPT(nn.Module):
    """forward(inputs, targets) -> summed CE loss (fp32 scalar); forward(inputs) -> fp32 logits (rows, T,
    padded_vocab_size). Each row of `inputs` is one packed token stream.

    dtype: of every parameter (upstream: bf16 on GPU); attn_backend: "auto" (FlexAttention on CUDA, SDPA with a
    dense mask elsewhere), "flex" or "sdpa"; init=False leaves the weights to init_remix_weights (the loop's way,
    so that the seed alone decides them)."""

    loss_chunk_tokens: int = 65536  # tokens per CE chunk when grad is disabled (evaluation)

    def __init__(self, cfg: RemixConfig, dtype: torch.dtype = torch.float32, *, attn_backend: str = "auto",
                 init: bool = True):
        super().__init__()
        if attn_backend not in ("auto", "flex", "sdpa"):
            raise ValueError(f"attn_backend must be 'auto', 'flex' or 'sdpa', got {attn_backend!r}")
        self.cfg, self.attn_backend = cfg, attn_backend
        V, D = cfg.padded_vocab_size, cfg.model_dim
        # A: a placeholder (on meta, no memory) until the head's weight replaces it, as upstream ties them
        placeholder = torch.empty(cfg.vocab_size, D, dtype=dtype, device="meta" if cfg.tied else None)
        self.embed = nn.Embedding(cfg.vocab_size, D, _weight=placeholder)
        self.blocks = nn.ModuleList([Block(cfg, dtype) for _ in range(cfg.num_layers)])
        self.lm_head = Linear(D, V, dtype)
        if cfg.tied:
            self.embed.weight = self.lm_head.weight  # upstream: self.embed.weight = self.lm_head.weight
        if init and not self.lm_head.weight.is_meta:
            init_remix_weights(self)

    def param_roles(self) -> dict[str, str]:
        """Role of each parameter for the optimizer split: embed (A: the tied embedding/head) | head | matrix."""
        roles = {}
        for name, p in self.named_parameters():
            roles[name] = {"embed.weight": "embed", "lm_head.weight": "head"}.get(name, "matrix" if p.ndim >= 2
                                                                                  else "scalar")
        return roles

    def _mask(self, inputs: Tensor):
        docs = document_ids(inputs, self.cfg.bos_id)
        backend = self.attn_backend
        if backend == "auto":
            backend = "flex" if inputs.is_cuda else "sdpa"
        return (flex_window_mask if backend == "flex" else window_mask)(docs, self.cfg.window)

    def hidden(self, inputs: Tensor) -> Tensor:
        """Final RMS-normed hidden states (rows, T, model_dim)."""
        mask = self._mask(inputs)
        x = norm(self.embed(inputs))
        for block in self.blocks:
            x = block(x, mask)
        return norm(x)

    def _head(self, x: Tensor) -> Tensor:
        z = self.lm_head(x).float()
        if self.cfg.softcap is not None:
            z = self.cfg.softcap * torch.sigmoid(z / (7.5 * x.size(-1) ** 0.5))
        return z

    def forward(self, inputs: Tensor, targets: Tensor | None = None) -> Tensor:
        x = self.hidden(inputs)
        if targets is None:
            return self._head(x)
        return summed_cross_entropy(self._head, x, targets, self.loss_chunk_tokens)


def _torch_linear_init(w: Tensor) -> Tensor:
    """nn.Linear.reset_parameters on the weight: kaiming_uniform_(a=sqrt(5)), i.e. U(+-1/sqrt(fan_in))."""
    return nn.init.kaiming_uniform_(w, a=math.sqrt(5))


@torch.no_grad()
def init_remix_weights(model: RemixGPT) -> None:
    """Upstream's init, drawing from the default torch RNG in upstream's construction order (see the module doc)."""
    cfg = model.cfg
    for module in model.modules():  # a model built on meta then to_empty()'d has garbage frequencies
        if isinstance(module, Rotary):
            module.reset()
    if cfg.tied:  # upstream draws the embedding, then replaces it by the head's weight
        torch.empty(cfg.vocab_size, cfg.model_dim, device=model.lm_head.weight.device).normal_()
    else:
        _fill(model.embed.weight, lambda t: t.normal_())
    d = cfg.model_dim
    bound = (3**0.5) * (0.5 * d**-0.5)
    for block in model.blocks:
        _fill(block.attn.qkv_w, lambda t: t.uniform_(-bound, bound))
        _fill(block.attn.c_proj.weight, _torch_linear_init)
        block.attn.c_proj.weight.zero_()
        _fill(block.mlp.c_fc.weight, _torch_linear_init)
        _fill(block.mlp.c_proj.weight, _torch_linear_init)
        block.mlp.c_proj.weight.zero_()
    _fill(model.lm_head.weight, _torch_linear_init)
    if not cfg.tied:
        model.lm_head.weight.zero_()
