"""The zoo's ``compiled`` setting, one source for every optimizer that has it (the Muon family's Newton-Schulz,
schedule-free AdamW's and AdEMAMix's whole update): None = compiled on CUDA, eager elsewhere; each function is
compiled once."""

from __future__ import annotations

from typing import Callable, Sequence

import torch

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
