"""The learning-rate schedule and the evaluation cadence of a run."""

from __future__ import annotations


def lr_multiplier(step: int, train_steps: int, cooldown_frac: float = 0.7, warmup_steps: int = 0,
                  lr_floor: float = 0.0) -> float:
    """Upstream schedule: flat, then linear to lr_floor over the last cooldown_frac of the run (track 3: to 0; the
    remixed baselines: to 0.1, as w + (1 - w) * floor); optional linear warmup min(1, (s+1)/warmup) as in result #2."""
    x = step / train_steps
    eta = 1.0 if x < 1 - cooldown_frac else (1 - x) / cooldown_frac
    if lr_floor:
        eta = eta + (1 - eta) * lr_floor
    if warmup_steps > 0:
        eta *= min(1.0, (step + 1) / warmup_steps)
    return eta


def momentum_warmup(step: int, start: float, end: float, steps: int) -> float:
    """Muon momentum warmup of the remixed M (and the medium record): linear from start to end over `steps`."""
    frac = min(step / steps, 1)
    return (1 - frac) * start + frac * end


def set_lr(optimizers, eta: float) -> None:
    """Every group's lr = its initial_lr * eta."""
    for opt in optimizers:
        for group in opt.param_groups:
            group["lr"] = group["initial_lr"] * eta


def apply_schedules(optimizers, step: int, train_steps: int) -> None:
    """Per-group schedules of recipe parts, after set_lr: ``opt.part_schedules`` maps a group index to objects
    whose ``set(group, step, train_steps)`` sets that group's lr or momentum (PowerCool, split cooldowns, momentum
    warm-up/cool-down; optbench.optim.parts). Optimizers without it are left as set_lr left them."""
    for opt in optimizers:
        for i, scheds in getattr(opt, "part_schedules", {}).items():
            for s in scheds:
                s.set(opt.param_groups[i], step, train_steps)


def is_eval_step(step: int, train_steps: int, eval_every: int, eval_every_late: int, late_frac: float) -> bool:
    """Evaluate every eval_every steps while step/train_steps < late_frac, every eval_every_late after, and at the
    end."""
    if step == train_steps:
        return True
    return step % (eval_every if step / train_steps < late_frac else eval_every_late) == 0
