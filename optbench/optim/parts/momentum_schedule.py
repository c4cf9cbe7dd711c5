"""Momentum warm-up and cool-down for the matrix optimizer's momentum (mu).

    mu(s) = start + (s / warmup) (peak - start)                  for s < warmup
          = peak - ((s - (H - cooldown)) / cooldown) (peak - end) for s > H - cooldown   (H = horizon, default T)
          = peak                                                  otherwise

Source: track-1 speedrun's Muon momentum warmup (0.85 -> 0.95 over 300 steps), brought to track 3 in result #30
(PR #300); the 200-step cool-down back to 0.85 is #44 (PR #321) and record #46 (``_muon_mu_at_step``).
Sets ``momentum.mu`` (chain) or ``momentum`` (zoo Muon) in the matrix groups.
"""

from __future__ import annotations

from optbench.optim.parts.base import Part


class MomentumWarmupCooldown:
    """One group's momentum schedule."""

    def __init__(self, start: float, peak: float, end: float, warmup: int, cooldown: int, horizon: int | None):
        self.start, self.peak, self.end = start, peak, end
        self.warmup, self.cooldown, self.horizon = warmup, cooldown, horizon

    def __repr__(self) -> str:
        return (f"MomentumWarmupCooldown(start={self.start!r}, peak={self.peak!r}, end={self.end!r}, "
                f"warmup={self.warmup!r}, cooldown={self.cooldown!r}, horizon={self.horizon!r})")

    def value(self, step: int, train_steps: int) -> float:
        horizon = train_steps if self.horizon is None else self.horizon
        cd_start = horizon - self.cooldown
        if step < self.warmup:
            return self.start + step / max(self.warmup, 1) * (self.peak - self.start)
        if self.cooldown > 0 and step > cd_start:
            return self.peak - (step - cd_start) / max(self.cooldown, 1) * (self.peak - self.end)
        return self.peak

    def set(self, group: dict, step: int, train_steps: int) -> None:
        key = "momentum.mu" if "momentum.mu" in group else "momentum"
        group[key] = self.value(step, train_steps)


class MomentumSchedule(Part):
    """Schedule part: mu warm-up from `start` to `peak`, cool-down to `end` over the last `cooldown` steps."""

    name = "momentum_schedule"
    stage = "schedule"
    knobs = {"start": 0.85, "peak": 0.95, "end": 0.85, "warmup": 300, "cooldown": 200, "horizon": None}

    def for_role(self, role: str) -> list:
        if role != "matrix":
            return []
        v = self.values
        return [MomentumWarmupCooldown(v["start"], v["peak"], v["end"], v["warmup"], v["cooldown"], v["horizon"])]
