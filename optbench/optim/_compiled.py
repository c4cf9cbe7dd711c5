"""The zoo's ``compiled`` setting, one source for every optimizer that has it (the Muon family's Newton-Schulz,
schedule-free AdamW's and AdEMAMix's whole update): None = compiled on CUDA, and on CPU for large elementwise
updates; each function is compiled once."""

from __future__ import annotations

import functools
import shutil
import warnings
from typing import Callable, Sequence

import torch

_COMPILED: dict[Callable, Callable] = {}
_FAILED: set[Callable] = set()

#: from this many elements in a group on, ``compiled=None`` compiles the elementwise updates (schedule-free AdamW,
#: AdEMAMix) on CPU too: one compiled pass is about 2x faster than the eager cache-sized pieces there (measured at
#: 17.7M elements: 28 vs 56 ms a step), which repays a first compile (~10 s; about 1 s from inductor's cache) within
#: a few hundred steps. Below it (the cpu track's 0.8M hidden elements) the pieces are within ~10 % of a compiled
#: kernel and a run would not earn its compile back.
CPU_AUTO_MIN_NUMEL = 1 << 22


def compile_once(fn: Callable) -> Callable:
    """``torch.compile(fn)``, built once per function (static shapes: recompiled for a new set of shapes)."""
    if fn not in _COMPILED:
        _COMPILED[fn] = torch.compile(fn, dynamic=False)
    return _COMPILED[fn]


@functools.cache
def cpp_compiler() -> str | None:
    """A C++ compiler for inductor's CPU backend on the PATH (g++, c++ or clang++), None without one. (Not ``$CXX``:
    this module is inlined into exported submissions, where reading the environment is against the rules.)"""
    return shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")


def use_compiled(flag: bool | None, params: Sequence[torch.Tensor], cpu_min_numel: int | None = None) -> bool:
    """An optimizer's ``compiled`` setting: True / False as given; None = compiled on CUDA, and on CPU when
    ``cpu_min_numel`` is given (the elementwise updates: ``CPU_AUTO_MIN_NUMEL``), the group holds at least that many
    elements and there is a C++ compiler; eager elsewhere."""
    if flag is not None:
        return flag
    if not params:
        return False
    device = params[0].device.type
    if device == "cuda":
        return True
    return (cpu_min_numel is not None and device == "cpu" and sum(p.numel() for p in params) >= cpu_min_numel
            and cpp_compiler() is not None)


def call_compiled(fn: Callable, flag: bool | None, *args) -> bool:
    """Run ``compile_once(fn)(*args)``; True when it ran. Where the choice was automatic (``flag`` None), a failure
    to compile warns once and returns False, then and from then on, so that the caller runs its eager path (the
    same update); an explicit ``compiled=True`` raises instead."""
    if flag is None and fn in _FAILED:
        return False
    try:
        compile_once(fn)(*args)
    except Exception as e:  # torch.compile's failures (no working C++ toolchain, an inductor error) come in many types
        if flag is not None:
            raise
        _FAILED.add(fn)
        warnings.warn(f"{fn.__name__}: torch.compile failed ({type(e).__name__}: {str(e)[:200]}); running the "
                      "eager update instead (pass compiled=False to skip compiling)", RuntimeWarning, stacklevel=2)
        return False
    return True


def check_compiled(flag) -> None:
    """ValueError unless ``compiled`` is None, True or False."""
    if not (flag is None or isinstance(flag, bool)):
        raise ValueError(f"compiled: must be None (automatic), True or False, got {flag!r}")


def scalars(like: torch.Tensor, *values: float) -> list[torch.Tensor]:
    """0-d tensors of ``like``'s dtype and device: step-dependent numbers passed to a compiled update as tensors,
    so that a new value does not recompile it."""
    return [torch.tensor(v, dtype=like.dtype, device=like.device) for v in values]
