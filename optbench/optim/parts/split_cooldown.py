"""Split cooldown: the warmup-stable-decay schedule with its own cooldown (and warmup) for the matrix and the aux
parameter groups.

    x = s / T;   eta = 1 if x < 1 - cooldown_frac else (1 - x) / cooldown_frac;   eta <- floor + (1 - floor) eta
    warmup (w steps): "multiply" eta <- eta min(1, (s + offset) / w)   or   "replace" eta <- (s + offset) / w for s < w
    lr = lr0 eta

Source: track-3 result #24 (PR #292, aux cooldown 0.4, matrix 0.8); the H entries #4/#5/#8 (matrix cooldown 1.0,
aux 0.4; AdamH's matrix warmup s/250 "replace"); #33 (aux to a floor of 0.1 over the last half).
"""

from __future__ import annotations

from optbench.optim.parts.base import Part


class WSD:
    """One group's warmup-stable-decay schedule: sets ``group["lr"]``."""

    def __init__(self, cooldown_frac: float, warmup_steps: int = 0, warmup_form: str = "multiply",
                 warmup_offset: int = 1, floor: float = 0.0):
        if not 0 <= cooldown_frac <= 1:
            raise ValueError(f"split_cooldown: cooldown_frac must be in [0, 1], got {cooldown_frac!r}")
        if warmup_form not in ("multiply", "replace"):
            raise ValueError(f"split_cooldown.warmup_form: must be 'multiply' or 'replace', got {warmup_form!r}")
        self.cooldown_frac, self.warmup_steps, self.warmup_form = cooldown_frac, warmup_steps, warmup_form
        self.warmup_offset, self.floor = warmup_offset, floor

    def __repr__(self) -> str:
        return (f"WSD(cooldown_frac={self.cooldown_frac!r}, warmup_steps={self.warmup_steps!r}, "
                f"warmup_form={self.warmup_form!r}, warmup_offset={self.warmup_offset!r}, floor={self.floor!r})")

    def multiplier(self, step: int, train_steps: int) -> float:
        if self.warmup_form == "replace" and step < self.warmup_steps:
            return (step + self.warmup_offset) / self.warmup_steps
        x = step / train_steps
        eta = 1.0 if x < 1 - self.cooldown_frac else (1 - x) / self.cooldown_frac
        if self.floor:
            eta = self.floor + (1 - self.floor) * eta
        if self.warmup_form == "multiply" and self.warmup_steps > 0:
            eta *= min(1.0, (step + self.warmup_offset) / self.warmup_steps)
        return eta

    def set(self, group: dict, step: int, train_steps: int) -> None:
        group["lr"] = group["initial_lr"] * self.multiplier(step, train_steps)


class SplitCooldown(Part):
    """Schedule part: one WSD schedule for the matrix groups, another for the aux (embed, head, scalar) groups."""

    name = "split_cooldown"
    stage = "schedule"
    knobs = {"matrix_cooldown_frac": 0.7, "aux_cooldown_frac": 0.4, "matrix_warmup_steps": 0,
             "aux_warmup_steps": 0, "warmup_form": "multiply", "warmup_offset": 1, "matrix_floor": 0.0,
             "aux_floor": 0.0}

    def for_role(self, role: str) -> list:
        side = "matrix" if role == "matrix" else "aux"
        v = self.values
        return [WSD(v[f"{side}_cooldown_frac"], v[f"{side}_warmup_steps"], v["warmup_form"], v["warmup_offset"],
                    v[f"{side}_floor"])]
