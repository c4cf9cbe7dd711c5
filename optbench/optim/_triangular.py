"""Matrix products with triangular operands that skip the zero blocks (what BLAS's trmm does; torch lacks it).

``tri_mm(A, B, "U", "F")`` is ``A @ B`` for an upper-triangular A: the triangular operand is split into 2 x 2
blocks, the zero block is never multiplied and the triangular blocks recurse, down to ``min_block``. An upper x
upper product costs about a third of a dense one at two levels, upper x full about five eighths. The result
equals ``A @ B`` up to floating-point rounding (the sums skip exact zeros, in another order); entries that are
zero by structure are exact zeros. Kinds: "U" upper triangular, "L" lower triangular, "F" full; a triangular
operand is square and its other triangle must hold zeros (the dense products near the diagonal read it).
"""

from __future__ import annotations

import torch

__all__ = ["tri_mm", "MIN_BLOCK"]

MIN_BLOCK = 256  # CPU: triangular operands at most this size are multiplied densely (measured: bench/tri_mm.py)

# the 2 x 2 blocks of each kind: (row block, column block) -> kind of that block; "0" = zero block
_BLOCKS = {
    "U": {(0, 0): "U", (0, 1): "F", (1, 0): "0", (1, 1): "U"},
    "L": {(0, 0): "L", (0, 1): "0", (1, 0): "F", (1, 1): "L"},
    "F": {(0, 0): "F", (0, 1): "F", (1, 0): "F", (1, 1): "F"},
}


def tri_mm(A: torch.Tensor, B: torch.Tensor, a_kind: str = "F", b_kind: str = "F", *,
           min_block: int | None = None) -> torch.Tensor:
    """``A @ B`` (2-D) where A and/or B is triangular ("U" / "L"); a new tensor.

    ``min_block`` None: MIN_BLOCK for float32 / float64 on CPU; otherwise one dense product. Blocks accumulate
    in the output's dtype, which in bf16 / fp16 adds roundings a dense product (fp32 accumulator) does not; and the
    blocking is measured on CPU only, where many small kernels may cost a GPU more than the skipped flops.
    """
    for kind, M, name in ((a_kind, A, "A"), (b_kind, B, "B")):
        if kind not in _BLOCKS:
            raise ValueError(f"tri_mm: kind of {name} must be 'U', 'L' or 'F', got {kind!r}")
        if kind != "F" and (M.dim() != 2 or M.size(0) != M.size(1)):
            raise ValueError(f"tri_mm: a triangular {name} must be a square matrix, got shape {tuple(M.shape)}")
    if A.dim() != 2 or B.dim() != 2 or A.size(1) != B.size(0):
        raise ValueError(f"tri_mm: shapes {tuple(A.shape)} and {tuple(B.shape)} cannot be multiplied")
    if min_block is None:
        blocked = A.device.type == "cpu" and A.dtype in (torch.float32, torch.float64)
        min_block = MIN_BLOCK if blocked else max(A.size(0), B.size(0))
    out = A.new_empty(A.size(0), B.size(1))
    _into(out, A, B, a_kind, b_kind, False, max(min_block, 1))
    return out


def _into(out, A, B, ka: str, kb: str, acc: bool, min_block: int) -> None:
    """out (+)= A @ B, splitting along the triangular operands' dims."""
    n = A.size(0) if ka != "F" else B.size(0) if kb != "F" else 0
    if n <= min_block:  # dense
        if acc:
            torch.addmm(out, A, B, out=out)
        else:
            torch.mm(A, B, out=out)
        return
    h = n // 2
    k_cut = [slice(0, h), slice(h, None)]  # the inner dim is always a triangular operand's dim
    rows = k_cut if ka != "F" else [slice(None)]
    cols = k_cut if kb != "F" else [slice(None)]
    a_blocks = _BLOCKS[ka] if ka != "F" else {(0, k): "F" for k in (0, 1)}
    b_blocks = _BLOCKS[kb] if kb != "F" else {(k, 0): "F" for k in (0, 1)}
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            o = out[r, c]
            first = not acc
            for k, kc in enumerate(k_cut):
                bka, bkb = a_blocks[(i, k)], b_blocks[(k, j)]
                if bka == "0" or bkb == "0":
                    continue
                _into(o, A[r, kc], B[kc, c], bka, bkb, not first, min_block)
                first = False
            if first:  # every term was a zero block
                o.zero_()
