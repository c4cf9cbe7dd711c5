"""PowerCool learning-rate schedule: flat, then a power-law cooldown that reaches 0 at `end`.

    lr(s) = min(lr0, c (end - s)^power)        (c per parameter role, in lr units; (x)^p with x = max(0, end - s))

The flat phase ends where c (end - s)^power = lr0, i.e. at s = end - (lr0 / c)^(1 / power).
Source: Yash Pande, track-3 result #20 (PR #291); with per-group constants in #25 (PR #293) and the record
#44-#46 (``_lr``: power 1.2, end 2900; Muon flat until ~514, Adam until ~1487).
"""

from __future__ import annotations

from optbench.optim.parts.base import Part

ROLES = ("matrix", "embed", "head", "scalar")


class PowerCoolLR:
    """One group's PowerCool schedule: sets ``group["lr"]``."""

    def __init__(self, c: float, power: float, end: int | None):
        self.c, self.power, self.end = c, power, end

    def __repr__(self) -> str:
        return f"PowerCoolLR(c={self.c!r}, power={self.power!r}, end={self.end!r})"

    def set(self, group: dict, step: int, train_steps: int) -> None:
        end = train_steps if self.end is None else self.end
        group["lr"] = min(group["initial_lr"], self.c * max(0.0, end - step) ** self.power)


class PowerCool(Part):
    """Schedule part: PowerCool for every role with a coefficient (``<role>_c``; 0 keeps the recipe schedule)."""

    name = "powercool"
    stage = "schedule"
    knobs = {"power": 1.2, "end": None, "matrix_c": 0.0, "embed_c": 0.0, "head_c": 0.0, "scalar_c": 0.0}

    def for_role(self, role: str) -> list:
        c = self.values.get(f"{role}_c", 0.0)
        if not c:
            return []
        if not (isinstance(c, (int, float)) and c > 0):
            raise ValueError(f"powercool.{role}_c: must be a number >= 0, got {c!r}")
        return [PowerCoolLR(float(c), float(self.values["power"]), self.values["end"])]
