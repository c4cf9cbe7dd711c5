"""Synthetic logs in each upstream format (written here; no upstream log or code is copied into the tests).

    log_text(trials, version="short", pre=["Using seed=3"], fields={...})

A trial is (T, {step: val_loss}); `fields` adds `key:value` tokens to every eval line (a callable gets the step
and loss). Formats: version "long" (`... on <device> with world_size N`), "short" (`... compiled for CUDA 12.8`),
None (no version line: the console output follows the code section), timings in "s" or "ms", and per-step
training lines between evals.
"""

from __future__ import annotations

from typing import Callable, Iterable

SEP = "=" * 100
CODE = "import torch\n\ntrain_steps = 3250\nprint0('=' * 100)\n"

LONG = "Running PyTorch 2.10.0+cu128 compiled for CUDA 12.8 on NVIDIA H100 80GB HBM3 with world_size 8"
SHORT = "Running PyTorch 2.10.0+cu128 compiled for CUDA 12.8"


def trial_lines(T: int, curve: dict[int, float], unit: str = "s", fields: dict | None = None,
                train_lines: bool = False) -> list[str]:
    out = []
    for step in sorted(curve):
        loss = curve[step]
        t = step * 0.15
        time = f"{t:.3f}s" if unit == "s" else f"{round(t * 1000)}ms"
        extra = ""
        for k, v in (fields or {}).items():
            val = v(step, loss) if callable(v) else v
            extra += f" {k}:{val}"
        if train_lines and step:
            out.append(f"step:{step}/{T} train_time:{time} step_avg:150.00ms")
        out.append(f"step:{step}/{T} val_loss:{loss:.5f} train_time:{time} step_avg:150.00ms{extra}")
    return out


def log_text(trials: Iterable[tuple[int, dict[int, float]]], *, version: str | None = "long", code: str = CODE,
             pre: list[str] | None = None, per_trial: Callable[[int], list[str]] | None = None, unit: str = "s",
             fields: dict | None = None, train_lines: bool = False) -> str:
    """An upstream-format log: code, '=' line, version line (if any), '=' line, then each trial's lines."""
    lines = code.rstrip("\n").splitlines() + [SEP]
    if version == "long":
        lines += [LONG, SEP]
    elif version == "short":
        lines += [SHORT, SEP]
    elif version is not None:
        lines += [version, SEP]
    else:
        lines += ["logs/0b7c9b2e-1111-4222-8333-944445555666.txt"]
    lines += pre or []
    for i, (T, curve) in enumerate(trials):
        lines += per_trial(i) if per_trial else []
        lines += trial_lines(T, curve, unit, fields, train_lines)
    return "\n".join(lines) + "\n"


def curve(T: int, final: float, every: int = 125, late: int = 25) -> dict[int, float]:
    """A plausible curve: 10.82584 at 0, falling to `final` at T; evals every 125, every 25 over the last 10 %."""
    steps = sorted({s for s in range(0, T, every)} | {s for s in range(T - T // 10, T, late)} | {T})
    out = {}
    for s in steps:
        out[s] = round(10.82584 if s == 0 else final + 0.0001 * (T - s) / 25 + 0.5 * (1 - s / T) ** 3, 5)
    return out
