"""The tuning budget behind a configuration (a sweep's best): carried by the recipes a sweep exports and by the
results of runs made from them, so that "better tuned" is visible next to "better optimizer". A leaf module
(pydantic only) so both the recipe (optim) and the record (results) use the one model."""

from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field


class TuningBudget(BaseModel):
    """The tuning behind a configuration (a sweep's best): the sweep, its sampler, the trials run, the
    device-hours they took (wall time x devices) and the search space."""

    model_config = ConfigDict(extra="allow")

    sweep: str
    sampler: str
    trials: int = Field(strict=True, ge=0)
    device_hours: float = Field(ge=0)
    space: dict[str, Any] = Field(default_factory=dict)
    stages: Optional[list[dict[str, Any]]] = None  # a two-stage (shortcut) sweep: each stage's share

    def summary(self) -> str:
        """`24 trials, 0.12 device-h (tpe)` for tables."""
        return f"{self.trials} trials, {self.device_hours:.3g} device-h ({self.sampler})"


__all__ = ["TuningBudget"]
