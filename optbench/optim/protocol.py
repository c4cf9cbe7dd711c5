"""The small protocol between the training loop and any optimizer that needs a loop hook.

The loop calls these functions for *every* optimizer; they are no-ops unless the optimizer defines the
matching method:

- ``opt.train()`` / ``opt.eval()`` (schedule-free API): called before training steps and before evaluation
  or checkpointing, so the parameter tensors hold the point that should be trained on / evaluated.
- ``opt.hessian_update_due(step) -> bool`` and ``opt.update_hessian()`` (Sophia): when due after a step, the
  loop computes the estimator's gradient with ONE extra forward+backward pass on labels sampled from the
  model (Gauss-Newton-Bartlett), leaves it in ``p.grad``, calls ``update_hessian()`` and counts the extra
  pass. A run with any extra pass breaks the benchmark's one-pass rule and is marked non-compliant.
- ``opt.part_schedules`` ({group index: [schedule, ...]}, set by recipe schedule parts): after the loop has set
  every group's lr from the recipe's schedule, each listed schedule sets its group's value for this step
  (``schedule.set(group, step, train_steps)``: PowerCool, split cooldowns, momentum warm-up/cool-down).
- ``opt.before_forward()`` (EMA-Nesterov's look-ahead): called right before each step's forward-backward.
"""

from __future__ import annotations

from typing import Iterable

import torch


def set_train_mode(optimizers: Iterable[torch.optim.Optimizer]) -> None:
    for opt in optimizers:
        fn = getattr(opt, "train", None)
        if callable(fn):
            fn()


def set_eval_mode(optimizers: Iterable[torch.optim.Optimizer]) -> None:
    for opt in optimizers:
        fn = getattr(opt, "eval", None)
        if callable(fn):
            fn()


def hessian_due(optimizers: Iterable[torch.optim.Optimizer], step: int) -> list[torch.optim.Optimizer]:
    """The optimizers that want a Hessian-estimator gradient after this step."""
    out = []
    for opt in optimizers:
        fn = getattr(opt, "hessian_update_due", None)
        if callable(fn) and fn(step):
            out.append(opt)
    return out


def apply_schedules(optimizers: Iterable[torch.optim.Optimizer], step: int, train_steps: int) -> None:
    """Per-group schedules of recipe parts (after the loop set lr = initial_lr * eta for every group)."""
    for opt in optimizers:
        for i, scheds in getattr(opt, "part_schedules", {}).items():
            for s in scheds:
                s.set(opt.param_groups[i], step, train_steps)


def before_forward(optimizers: Iterable[torch.optim.Optimizer]) -> None:
    for opt in optimizers:
        fn = getattr(opt, "before_forward", None)
        if callable(fn):
            fn()
