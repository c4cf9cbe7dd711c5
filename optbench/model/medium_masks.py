"""The NanoGPT-Medium record's attention masking: document-causal, block-granular sliding windows, as a dense
boolean mask for SDPA (CPU, the reference) or a FlexAttention BlockMask built as upstream builds it (CUDA); see
the "Attention masking" paragraph of optbench/model/medium.py. Also used by the remixed models (model/remix.py)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def document_ids(inputs: Tensor, bos_id: int) -> Tensor:
    """(rows, T) document index of each token; a document starts at (and includes) its BOS token."""
    return (inputs == bos_id).cumsum(dim=-1)


def block_candidates(docs: Tensor, window_blocks: Tensor | int, block_size: int):
    """Upstream's block-level rule (its `create_blockmasks`), for each (row, query block q) with window W blocks.

    Candidates: "full" kv blocks j < q with low[q] == high[j] and high[q] == low[j] (both blocks inside one single
    document); "partial" kv blocks j <= q whose document range overlaps q's, minus the full ones (always includes
    j = q). Kept: the most recent min(#full, W - 1) full and min(#partial, max(W - #full, 1)) partial candidates.
    Returns (full, partial) candidates as (rows, QB, KB) bool and the kept counts (rows, QB) int32. Tensor ops
    only, so a compiled graph does not specialise on the window."""
    B, T = docs.shape
    nb = -(-T // block_size)
    idx = torch.arange(nb, device=docs.device)
    low = docs[:, idx * block_size]
    high = docs[:, ((idx + 1) * block_size - 1).clamp_max(T - 1)]
    causal_any = idx[:, None] >= idx[None, :]
    causal_all = idx[:, None] > idx[None, :]
    doc_any = (low[:, :, None] <= high[:, None, :]) & (high[:, :, None] >= low[:, None, :])
    doc_all = (low[:, :, None] == high[:, None, :]) & (high[:, :, None] == low[:, None, :])
    full = causal_all & doc_all
    partial = causal_any & doc_any & ~full
    count_full = full.sum(dim=-1, dtype=torch.int32)
    count_partial = partial.sum(dim=-1, dtype=torch.int32)
    w = torch.as_tensor(window_blocks, dtype=torch.int32, device=docs.device)
    # upstream: clamp_max(full, W - 1) (negative when W = 0, which the CUDA kernel reads as no block but the CPU
    # kernel rejects) and clamp_max(partial, clamp_min(W - full, 1)); clamping at 0 gives the same mask
    n_full = torch.minimum(count_full, w - 1).clamp_min(0)
    n_partial = torch.minimum(count_partial, (w - count_full).clamp_min(1))
    return full, partial, n_full, n_partial


def dense_attention_mask(docs: Tensor, window_blocks: Tensor | int, block_size: int) -> Tensor:
    """(rows, 1, T, T) boolean mask (True = may attend): kept blocks, then document-causal inside them."""
    T = docs.size(1)
    full, partial, n_full, n_partial = block_candidates(docs, window_blocks, block_size)

    def most_recent(cand: Tensor, n: Tensor) -> Tensor:
        rank = cand.flip(-1).int().cumsum(-1).flip(-1)  # 1 for the most recent candidate, 2 for the next, ...
        return cand & (rank <= n[..., None])

    blocks = most_recent(full, n_full) | most_recent(partial, n_partial)
    tok_block = torch.arange(T, device=docs.device) // block_size
    pos = torch.arange(T, device=docs.device)
    keep = blocks[:, tok_block][:, :, tok_block]
    keep &= pos[:, None] >= pos[None, :]
    keep &= docs[:, :, None] == docs[:, None, :]
    return keep[:, None]


def flex_block_mask(docs: Tensor, window_blocks: Tensor | int, block_size: int):
    """FlexAttention BlockMask built as upstream builds it, over the rows laid end to end (batch 1, rows * T
    tokens; documents renumbered so that none spans two rows). T must be a multiple of block_size.

    As upstream, mask_mod is document-causal only and the window lives in the block sparsity, which only the
    compiled kernel honours: eager flex_attention evaluates mask_mod densely and would ignore the window."""
    from torch.nn.attention.flex_attention import BlockMask

    T = docs.size(1)
    if T % block_size:
        raise ValueError(f"flex attention needs a sequence length that is a multiple of {block_size}, got {T}")
    # a new document at every document change and at every row start; a cumsum, like upstream's document ids
    # (the CPU kernel needs mask_mod's captured tensor to be a materialised buffer, not a fused pointwise op)
    starts = torch.ones_like(docs, dtype=torch.bool)
    starts[:, 1:] = docs[:, 1:] != docs[:, :-1]
    flat = starts.flatten().cumsum(0)
    full, partial, n_full, n_partial = block_candidates(flat[None], window_blocks, block_size)

    def ordered(cand: Tensor) -> Tensor:  # candidates first, most recent first (upstream's dense_to_ordered)
        return cand.int().argsort(dim=-1, descending=False, stable=True).flip(-1).to(torch.int32)

    def document_causal(b, h, q_idx, kv_idx):
        return (q_idx >= kv_idx) & (flat[q_idx] == flat[kv_idx])

    return BlockMask.from_kv_blocks(
        n_partial[None].contiguous(),
        ordered(partial)[None].contiguous(),
        n_full[None].contiguous(),
        ordered(full)[None].contiguous(),
        BLOCK_SIZE=block_size,
        mask_mod=document_causal,
    )


_compiled_flex = None


def attend(q: Tensor, k: Tensor, v: Tensor, mask, scale: float) -> Tensor:
    """Attention over (rows, H, T, D) inputs with either a dense boolean mask (SDPA) or a `flex_block_mask`
    BlockMask (FlexAttention, always compiled: eager flex would ignore the window; no backward on CPU)."""
    if isinstance(mask, Tensor):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    from torch.nn.attention.flex_attention import flex_attention

    global _compiled_flex
    B, H, T, D = q.shape
    if B > 1:  # rows end to end, as the BlockMask lays them out
        q, k, v = (t.transpose(0, 1).reshape(1, H, B * T, D) for t in (q, k, v))
    if torch.compiler.is_compiling():  # inside a compiled model: dynamo traces flex_attention itself
        y = flex_attention(q, k, v, block_mask=mask, scale=scale)
    else:
        if _compiled_flex is None:
            _compiled_flex = torch.compile(flex_attention, dynamic=False)
        y = _compiled_flex(q, k, v, block_mask=mask, scale=scale)
    return y.reshape(H, B, T, D).transpose(0, 1) if B > 1 else y


# -----------------------------------------------------------------------------
# Modules
