"""The NanoGPT-Medium model: the GPT of the medium speedrun record of 04/22/25 (@jadenj3o), which is the fixed
architecture of the "NanoGPT-Medium Optimizer Leaderboard" (target val loss 2.92).

Source read: KellerJordan/modded-nanogpt, `records/track_2_medium/OptimizationLeaderboard/old_train_gpt_medium.py`
@ f0a1b449 (the record script, bf16 block weights) and `records/061525_GPT2MediumOptimizationLeaderboard/
train_gpt_medium.py` @ 8887ab17 / 194130d7 (the leaderboard's fp32-weight variant: same model code).

Architecture (16 x 1024 at full size):
- token embedding (50,257 rows = GPT-2 vocab, as upstream; N(0,1)), output RMS-normed: x = x0 = norm(embed(t));
- 3 value embeddings (50,257 rows each), used by layers (0,1,2, None x 10, 0,1,2);
- block i: x <- lambdas[i,0] * x + lambdas[i,1] * x0 (x0-mixing, init (1, 0));
  x <- x + attn(x) (NO pre-norm: q, k and v are RMS-normed after projection); x <- x + mlp(norm(x));
- layer 7 has no attention at all (upstream "skip attention of blocks.7"): its block is x0-mix + MLP;
- attention: merged weight `qkvo_w` of shape (4, 1024, 1024) (q, k, v, out), 8 heads x 128, QK-RMSNorm, v-RMSNorm,
  v <- sa[0] * v + sa[1] * ve (sa init (0.5, 0.5); layers without a value embedding: v <- sa[0] * v),
  half-truncated RoPE (positions 0..T-1 of the packed row), fixed scale 0.12;
- MLP 1024 -> 4096 -> 1024, ReLU^2; RMSNorm everywhere without gains (F.rms_norm, default eps); no biases;
- U-net skips: before block 9 add w[6] * out(block 6), before 10 add w[4] * out(4), before 11 add w[2] * out(2)
  (out(j) = residual stream after block j; w = skip weights, init 1; only 3 of the 16 are used, as upstream);
- all scalars in ONE tensor `scalars` (5 x 16 = 80): skip weights [0:16], block lambdas [16:48], SA lambdas [48:80];
- final norm, untied LM head `lm_head_w` (50,304 = 50,257 padded to a multiple of 128 rows, zero init), fp32 logits,
  ISRU soft-cap z <- 15 z / sqrt(z^2 + 15^2).

Attention masking: each row of `inputs` is one packed token stream (upstream: one 65,536-token row per GPU).
Documents start at BOS/EOT 50256; a token sees only earlier tokens of its own document within a block-granular
sliding window built exactly like upstream's FlexAttention BlockMask (block size 128): for query block q with window
W blocks, keep the most recent min(#full, W-1) "full" kv blocks (earlier blocks lying, like q, inside one single
document) and the most recent min(#partial, max(W - #full, 1)) "partial" kv blocks (causal, document-overlapping,
not full; always includes q itself); inside kept blocks apply document-causal masking. For one long document this is
"the current block plus the W-1 previous blocks". Layers 0, 4, 11, 15 use the long window W; all others W // 2.
W follows training progress x = step / num_iterations (set by `set_progress`): W = next_multiple(3456 * (4x^3 - 6x^2
+ 3x), 128) // 128, i.e. 1 block at x = 0 up to 27 blocks (3,456 tokens) at x = 1 (short layers: 0..13).
On CUDA the mask is a FlexAttention BlockMask built as upstream builds it, rows laid end to end (flex_attention is
always compiled: eager flex evaluates mask_mod densely and would ignore the window); elsewhere (and as the
reference) the same mask is materialised as a (rows, 1, T, T) boolean tensor for F.scaled_dot_product_attention
(short sequences only). The window lives in a buffer tensor, so a compiled model does not recompile when it grows.
Checked on CPU: compiled flex_attention with upstream's own BlockMask construction, and with ours, equals the SDPA
path (36 cases, T = 1024, windows 0..8 blocks, max abs diff 2.4e-7).

Loss: forward(inputs, targets) returns the SUMMED cross entropy over all tokens (reduction="sum"), like the track-3
model. The medium track (`loss_reduction = "mean"`) scales it before backward so that the gradient is the record's:
mean CE per GPU, averaged over GPUs (Track.backward_scale; all factors are powers of two, so the gradient is bit for
bit the record's, and Adam's eps sees the record's gradient scale). Without grad, the loss is computed in chunks of
`loss_chunk_tokens` tokens (upstream chunks its eval loss in 4 too). Validation rows are 262,144 tokens
(`val_seq_len = 4*64*1024` in the record; Track.val_row_tokens), evaluated with the attention window of the step
being evaluated.

Precision: parameters are fp32 except the embeddings (`embed_dtype`; upstream: bf16 embeddings, so activations
are bf16 end-to-end); matrices are cast to the activation dtype at use; RoPE, logits, soft-cap and CE in fp32.
(The record stores block matrices in bf16 with a 16-bit mantissa side-state in its Muon; the leaderboard's variant
keeps them fp32, as here.)

Parameter count at full size: 454,496,336 =
  embed 50,257*1024 = 51,463,168; value embeds 3 * 51,463,168 = 154,389,504;
  attention 15 layers * 4*1024*1024 = 62,914,560; MLP 16 * 2*4096*1024 = 134,217,728;
  LM head 50,304*1024 = 51,511,296; scalars 80.
Optimizer split (upstream): `matrix` = 47 tensors / 197,132,288 params (15 qkvo_w of shape (4,1024,1024): an
optimizer must treat each as 4 separate 1024x1024 matrices, as upstream's batched Newton-Schulz does; 16 fc_w,
16 proj_w) -> Muon lr 0.025, momentum 0.95 (warmed up 0.85 -> 0.95 over 300 steps), wd 0.01 x `wd_multipliers()`
(2 for MLP); AdamW(betas (0.8, 0.95), eps 1e-10, wd 0): `head` lr 1/320, `embed` lr 0.3, `scalar` lr 0.015.

This module imports only torch, the track-3 GPT module (for the shared RoPE), model/medium_masks.py (the attention
masks) and model/common.py (the summed loss, fp32 init draws).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from optbench.model.common import draw_fp32 as _draw
from optbench.model.common import summed_cross_entropy
from optbench.model.gpt import Rotary as GPTRotary
from optbench.model.medium_masks import (attend, block_candidates, dense_attention_mask,  # noqa: F401 (re-exported)
                                        document_ids, flex_block_mask)


@dataclass(frozen=True)
class MediumConfig:
    vocab_size: int = 50257  # embedding rows (GPT-2 vocab, as upstream); the LM head is padded (padded_vocab_size)
    num_layers: int = 16
    model_dim: int = 1024
    head_dim: int = 128
    mlp_ratio: int = 4
    # value embedding used by each layer (None: no value embedding); upstream 012 ... 012 pattern
    value_embed_layers: tuple[int | None, ...] = (0, 1, 2) + (None,) * 10 + (0, 1, 2)
    skip_map: tuple[tuple[int, int], ...] = ((9, 6), (10, 4), (11, 2))  # (layer, source block whose output it adds)
    no_attn_layers: tuple[int, ...] = (7,)
    long_window_layers: tuple[int, ...] = (0, 4, 11, 15)  # the others use the short window (long // 2)
    attn_scale: float = 0.12
    softcap: float = 15.0
    rope_base_inv: float = 1 / 1024  # angular frequencies (1/1024)^linspace(0, 1, head_dim/4)
    bos_id: int = 50256  # a document starts at this token
    block_size: int = 128  # attention mask block size (tokens)
    max_window: int = 3456  # sliding-window size (tokens) at the end of training
    head_pad_multiple: int = 128

    def __post_init__(self) -> None:
        L = self.num_layers
        problems = []
        if self.model_dim % self.head_dim:
            problems.append(f"model_dim {self.model_dim} is not a multiple of head_dim {self.head_dim}")
        if self.head_dim % 4:
            problems.append(f"head_dim {self.head_dim} is not a multiple of 4 (half-truncated RoPE)")
        if len(self.value_embed_layers) != L:
            problems.append(f"value_embed_layers has {len(self.value_embed_layers)} entries, num_layers is {L}")
        for dst, src in self.skip_map:
            if not 0 <= src < dst < L:
                problems.append(f"skip ({dst} <- {src}) needs 0 <= source < layer < {L}")
        for name in ("no_attn_layers", "long_window_layers"):
            if any(not 0 <= i < L for i in getattr(self, name)):
                problems.append(f"{name} {getattr(self, name)} has a layer outside 0..{L - 1}")
        if not 0 <= self.bos_id < self.vocab_size:
            problems.append(f"bos_id {self.bos_id} is outside the vocabulary 0..{self.vocab_size - 1}")
        if self.block_size < 1 or self.max_window < 1:
            problems.append("block_size and max_window must be positive")
        if problems:
            raise ValueError("invalid MediumConfig: " + "; ".join(problems))

    @property
    def num_heads(self) -> int:
        return self.model_dim // self.head_dim

    @property
    def num_value_embeds(self) -> int:
        return 1 + max((j for j in self.value_embed_layers if j is not None), default=-1)

    @property
    def padded_vocab_size(self) -> int:
        """LM head rows: vocab_size rounded up to a multiple of head_pad_multiple (50,304 at full size)."""
        return next_multiple_of_n(self.vocab_size, self.head_pad_multiple)


def next_multiple_of_n(v: float, n: int) -> int:
    """Smallest multiple of n that is >= v, and at least n (upstream's `next_multiple_of_n`)."""
    m = n
    while m < v:
        m += n
    return m


def window_num_blocks(frac: float, cfg: MediumConfig) -> int:
    """Long sliding-window size in blocks at training progress frac = step / num_iterations (upstream schedule);
    the short window is this // 2."""
    if not 0.0 <= frac <= 1.0:
        raise ValueError(f"training progress must be in [0, 1], got {frac!r}")
    x = frac
    factor = 4 * x**3 - 6 * x**2 + 3 * x  # cubic schedule (@jadenj3o), 0 -> 1, flat at x = 1/2
    return next_multiple_of_n(cfg.max_window * factor, cfg.block_size) // cfg.block_size


# -----------------------------------------------------------------------------
# Attention masks: document-causal + block-granular sliding window (upstream's BlockMask, in two renderings)


def norm(x: Tensor) -> Tensor:
    return F.rms_norm(x, (x.size(-1),))


class Rotary(GPTRotary):
    """The track-3 half-truncated RoPE, with frequencies that can be recomputed after `to_empty` (meta init)."""

    def __init__(self, head_dim: int, base_inv: float = 1 / 1024):
        nn.Module.__init__(self)
        self.head_dim, self.base_inv = head_dim, base_inv
        self.register_buffer("angular_freq", torch.empty(head_dim // 2), persistent=False)
        self.reset()

    @torch.no_grad()
    def reset(self) -> None:
        """(Re)compute the frequencies on the CPU, as upstream does, then copy them (to_empty leaves garbage)."""
        if self.angular_freq.is_meta:
            return
        freq = self.base_inv ** torch.linspace(0, 1, steps=self.head_dim // 4, dtype=torch.float32)
        self.angular_freq.copy_(torch.cat([freq, freq.new_zeros(self.head_dim // 4)]))


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: MediumConfig):
        super().__init__()
        self.num_heads, self.head_dim, self.scale = cfg.num_heads, cfg.head_dim, cfg.attn_scale
        hdim = self.num_heads * self.head_dim
        self.qkvo_w = nn.Parameter(torch.empty(4, hdim, cfg.model_dim))  # q, k, v, out (out zero-init)
        self.rotary = Rotary(cfg.head_dim, cfg.rope_base_inv)

    def forward(self, x: Tensor, ve: Tensor | None, sa_lambdas: Tensor, mask) -> Tensor:
        B, T = x.size(0), x.size(1)
        w = self.qkvo_w.type_as(x)
        qkv = F.linear(x, w[:3].flatten(end_dim=1)).view(B, T, 3 * self.num_heads, self.head_dim)
        q, k, v = qkv.chunk(3, dim=-2)
        q, k = norm(q), norm(k)
        q, k = self.rotary(q), self.rotary(k)
        v = norm(v)
        v = sa_lambdas[0] * v + sa_lambdas[1] * ve.view_as(v) if ve is not None else sa_lambdas[0] * v
        y = attend(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), mask, self.scale).transpose(1, 2)
        return F.linear(y.contiguous().view(B, T, self.num_heads * self.head_dim), w[3])


class MLP(nn.Module):
    def __init__(self, cfg: MediumConfig):
        super().__init__()
        hdim = cfg.mlp_ratio * cfg.model_dim
        self.fc_w = nn.Parameter(torch.empty(hdim, cfg.model_dim))
        self.proj_w = nn.Parameter(torch.empty(cfg.model_dim, hdim))

    def forward(self, x: Tensor) -> Tensor:
        x = F.linear(x, self.fc_w.type_as(x)).relu().square()
        return F.linear(x, self.proj_w.type_as(x))


class Block(nn.Module):
    def __init__(self, cfg: MediumConfig, layer_idx: int):
        super().__init__()
        self.attn = CausalSelfAttention(cfg) if layer_idx not in cfg.no_attn_layers else None
        self.mlp = MLP(cfg)

    def forward(self, x: Tensor, ve: Tensor | None, x0: Tensor, lambdas: Tensor, sa_lambdas: Tensor, mask) -> Tensor:
        x = lambdas[0] * x + lambdas[1] * x0
        if self.attn is not None:
            x = x + self.attn(x, ve, sa_lambdas, mask)
        return x + self.mlp(norm(x))


class MediumGPT(nn.Module):
    """forward(inputs, targets) -> summed CE loss (fp32 scalar); forward(inputs) -> soft-capped fp32 logits of
    shape (rows, T, padded_vocab_size). Call set_progress(step / num_iterations) before every step.

    attn_backend: "auto" (FlexAttention on CUDA, SDPA with a dense mask elsewhere), "flex" or "sdpa"."""

    loss_chunk_tokens: int = 65536  # tokens per CE chunk when grad is disabled (evaluation)

    def __init__(self, cfg: MediumConfig, embed_dtype: torch.dtype = torch.float32, *, attn_backend: str = "auto"):
        super().__init__()
        if attn_backend not in ("auto", "flex", "sdpa"):
            raise ValueError(f"attn_backend must be 'auto', 'flex' or 'sdpa', got {attn_backend!r}")
        self.cfg = cfg
        self.attn_backend = attn_backend
        V, D = cfg.vocab_size, cfg.model_dim
        self.embed = nn.Embedding(V, D, _weight=torch.empty(V, D, dtype=embed_dtype))
        self.value_embeds = nn.ModuleList(
            [nn.Embedding(V, D, _weight=torch.empty(V, D, dtype=embed_dtype)) for _ in range(cfg.num_value_embeds)]
        )
        self.blocks = nn.ModuleList([Block(cfg, i) for i in range(cfg.num_layers)])
        self.lm_head_w = nn.Parameter(torch.empty(cfg.padded_vocab_size, D))
        self.scalars = nn.Parameter(torch.empty(5 * cfg.num_layers))
        self.register_buffer("window_blocks_t", torch.tensor(1, dtype=torch.int32), persistent=False)
        self.progress = 0.0
        if not self.lm_head_w.is_meta:
            init_medium_weights(self)

    # --- training progress -> sliding window

    def set_progress(self, frac: float) -> None:
        """Set training progress (step / num_iterations, in [0, 1]); derives the sliding-window size."""
        n = window_num_blocks(frac, self.cfg)
        self.progress = float(frac)
        if not self.window_blocks_t.is_meta:
            self.window_blocks_t.fill_(n)

    @property
    def window_blocks(self) -> tuple[int, int]:
        """(long, short) window sizes in blocks of cfg.block_size tokens."""
        n = int(self.window_blocks_t.item())
        return n, n // 2

    # --- parameter metadata for the optimizer split

    def param_roles(self) -> dict[str, str]:
        """Role of each parameter for the upstream optimizer split: embed | head | scalar | matrix."""
        roles = {}
        for name, p in self.named_parameters():
            if name == "embed.weight" or name.startswith("value_embeds."):
                roles[name] = "embed"
            elif name == "lm_head_w":
                roles[name] = "head"
            elif p.ndim < 2:
                roles[name] = "scalar"
            else:
                roles[name] = "matrix"
        return roles

    def wd_multipliers(self) -> dict[str, float]:
        """Upstream's per-parameter `wd_mul`: 2 for the MLP matrices (the record's "double wd for MLP"), else 1."""
        return {name: 2.0 if name.endswith(("mlp.fc_w", "mlp.proj_w")) else 1.0 for name, _ in self.named_parameters()}

    # --- forward

    def _masks(self, inputs: Tensor):
        docs = document_ids(inputs, self.cfg.bos_id)
        backend = self.attn_backend
        if backend == "auto":
            backend = "flex" if inputs.is_cuda else "sdpa"
        build = flex_block_mask if backend == "flex" else dense_attention_mask
        w = self.window_blocks_t
        return build(docs, w, self.cfg.block_size), build(docs, w // 2, self.cfg.block_size)

    def hidden(self, inputs: Tensor) -> Tensor:
        """Final RMS-normed hidden states (rows, T, model_dim)."""
        cfg, L = self.cfg, self.cfg.num_layers
        ve_all = [value_embed(inputs) for value_embed in self.value_embeds]
        ve = [None if j is None else ve_all[j] for j in cfg.value_embed_layers]
        long_mask, short_mask = self._masks(inputs)
        skip_weights = self.scalars[:L]
        lambdas = self.scalars[L : 3 * L].view(-1, 2)
        sa_lambdas = self.scalars[3 * L : 5 * L].view(-1, 2)
        skip_map = dict(cfg.skip_map)
        x = x0 = norm(self.embed(inputs))
        outputs = []
        for i, block in enumerate(self.blocks):
            if i in skip_map:
                x = x + skip_weights[skip_map[i]] * outputs[skip_map[i]]
            mask = long_mask if i in cfg.long_window_layers else short_mask
            x = block(x, ve[i], x0, lambdas[i], sa_lambdas[i], mask)
            outputs.append(x)
        return norm(x)

    def _head(self, x: Tensor) -> Tensor:
        z = F.linear(x, self.lm_head_w.type_as(x)).float()
        c = self.cfg.softcap
        return c * z * (z.square() + c**2).rsqrt()

    def logits(self, inputs: Tensor) -> Tensor:
        return self._head(self.hidden(inputs))

    def forward(self, inputs: Tensor, targets: Tensor | None = None) -> Tensor:
        x = self.hidden(inputs)
        if targets is None:
            return self._head(x)
        return summed_cross_entropy(self._head, x, targets, self.loss_chunk_tokens)


@torch.no_grad()
def _init_linear(w: Tensor) -> None:
    std = 0.5 * (w.size(-1) ** -0.5)  # upstream: 0.5 / sqrt(fan_in), uniform with that std
    bound = (3**0.5) * std
    _draw(w, lambda t: t.uniform_(-bound, bound))


def init_medium_weights(model: MediumGPT) -> None:
    """Upstream init, drawing from the default torch RNG in parameter order (= upstream construction order):
    embed and value embeds N(0,1); qkvo_w and mlp.fc_w uniform with std 0.5/sqrt(fan_in) (the whole (4, h, d)
    qkvo_w is drawn, then its out slice [3] zeroed); mlp.proj_w and the LM head zero; scalars: skip weights 1,
    block lambdas (1, 0), SA lambdas (0.5, 0.5). Also recomputes the RoPE frequencies and the window buffer."""
    L = model.cfg.num_layers
    with torch.no_grad():
        for module in model.modules():  # derived buffers too: a model built on meta then to_empty()'d has garbage
            if isinstance(module, Rotary):
                module.reset()
        model.set_progress(model.progress)
        for name, p in model.named_parameters():
            if name == "embed.weight" or name.startswith("value_embeds."):
                _draw(p, lambda t: t.normal_())
            elif name.endswith("attn.qkvo_w"):
                _init_linear(p)
                p[3].zero_()
            elif name.endswith("mlp.fc_w"):
                _init_linear(p)
            elif name.endswith("mlp.proj_w") or name == "lm_head_w":
                p.zero_()
            elif name == "scalars":
                p[:L] = 1.0  # skip weights
                p[L : 3 * L : 2] = 1.0  # block lambdas: weight of x
                p[L + 1 : 3 * L : 2] = 0.0  # block lambdas: weight of x0
                p[3 * L :] = 0.5  # SA lambdas
            else:
                raise ValueError(f"uninitialized parameter: {name}")


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
