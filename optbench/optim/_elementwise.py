"""How the zoo's multi-pass elementwise updates (schedule-free AdamW, AdEMAMix) run fast: cache-sized pieces in
eager mode, one compiled graph for all tensors with ``compiled=True``.

On a CPU a multi-tensor (foreach) pass over every parameter evicts the first tensors from cache before the next
pass reads them, so a 9-pass update streams all its state from memory 9 times. ``pieces`` cuts aligned tensors
into flat pieces of at most ``PIECE`` elements, and the update runs all its passes on one piece while that piece
is in cache (measured: 2.5x faster than foreach at 6 x 768x768 + 6 x 3072x768, 1.4x at the cpu track's shapes).
"""

from __future__ import annotations

from typing import Callable, Iterator, Sequence

import torch

#: elements per piece: 64 Ki float32 = 256 KiB per tensor, five or six tensors stay within a core's L2 cache
PIECE = 1 << 16


def pieces(*lists: Sequence[torch.Tensor], size: int | None = None) -> Iterator[tuple[torch.Tensor, ...]]:
    """For each position i, tensor i of every list cut into aligned flat views of at most ``size`` (default
    ``PIECE``) elements (the whole tensors when they are small or not all contiguous). Writing into a piece writes
    into its tensor."""
    size = size or PIECE
    for ts in zip(*lists):
        n = ts[0].numel()
        if n <= size or not all(t.is_contiguous() for t in ts):
            yield ts
            continue
        flats = [t.view(-1) for t in ts]
        for s in range(0, n, size):
            yield tuple(f[s : s + size] for f in flats)


_COMPILED: dict[Callable, Callable] = {}


def compile_once(fn: Callable) -> Callable:
    """``torch.compile(fn)``, built once per function (static shapes: recompiled for a new set of shapes)."""
    if fn not in _COMPILED:
        _COMPILED[fn] = torch.compile(fn, dynamic=False)
    return _COMPILED[fn]


def use_compiled(flag: bool | None, params: Sequence[torch.Tensor]) -> bool:
    """An optimizer's ``compiled`` setting: None = compiled on CUDA, eager elsewhere (as the Muon family)."""
    if flag is None:
        return bool(params) and params[0].device.type == "cuda"
    return flag


def check_compiled(flag) -> None:
    """ValueError unless ``compiled`` is None, True or False."""
    if not (flag is None or isinstance(flag, bool)):
        raise ValueError(f"compiled: must be None (compiled on CUDA only), True or False, got {flag!r}")


def scalars(like: torch.Tensor, *values: float) -> list[torch.Tensor]:
    """0-d tensors of ``like``'s dtype and device: step-dependent numbers passed to a compiled update as tensors,
    so that a new value does not recompile it."""
    return [torch.tensor(v, dtype=like.dtype, device=like.device) for v in values]
