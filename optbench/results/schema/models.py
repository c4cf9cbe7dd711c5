"""The results.json models (pydantic v2): CurvePoint, RunRecord, RecipeRecord, Provenance and Results.

The record is the workspace format (spec/workspace.md) plus optbench's fields:

    workspace (required)   agent_id, experiment, optimizer, steps_to_<target>, final_val_loss
    workspace (optional)   timestamp, num_runs, mean_val_loss, std_val_loss, key_hparams, notes
    optbench               track, target, rule, reached_target, passes_rule, seeds, runs (per seed),
                           claimed_step, compliant, compliance_notes, unofficial, recipe, parts, provenance,
                           train_steps, wallclock_s, tuning_budget (from a recipe exported by a sweep)
    anything else          kept as is (other tools' fields survive a load/save round trip)

The step field follows the target: `steps_to_3_28` for 3.28, `steps_to_2_92` for 2.92 (stats.steps_field()).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Optional, Sequence

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

from optbench.errors import OptbenchError
from optbench.results import stats
from optbench.tuning import TuningBudget

# workspace fields first, in the workspace example's order, then optbench's
_FIELD_ORDER = [
    "agent_id",
    "timestamp",
    "experiment",
    "optimizer",
    "steps_to_target",
    "final_val_loss",
    "num_runs",
    "mean_val_loss",
    "std_val_loss",
    "key_hparams",
    "notes",
    "track",
    "target",
    "rule",
    "reached_target",
    "passes_rule",
    "claimed_step",
    "seeds",
    "runs",
    "compliant",
    "compliance_notes",
    "unofficial",
    "recipe",
    "parts",
    "provenance",
    "train_steps",
    "wallclock_s",
    "tuning_budget",
]
# a curve point as json.dumps(indent=2) writes it: {"step": N, "val_loss": x, "train_time_s": t} over 5 lines
_CURVE_POINT = re.compile(r'\{\n\s*("step": [-\d]+(?:,\n\s*"[a-z_]+": (?:[-+\d.eE]+|null|true|false))*)\n\s*\}')

_ALWAYS_WRITTEN = {"agent_id", "experiment", "optimizer", "steps_to_target", "final_val_loss", "target", "unofficial"}


class CurvePoint(BaseModel):
    """One evaluation: step, val loss (None when it was NaN/inf: diverged), training time so far."""

    model_config = ConfigDict(extra="allow")

    step: int = Field(strict=True, ge=0)
    val_loss: Optional[float] = None
    train_time_s: Optional[float] = None

    @model_validator(mode="before")
    @classmethod
    def _nan_to_none(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("val_loss"), float) and not math.isfinite(data["val_loss"]):
            data = {**data, "val_loss": None}
        return data


class RunRecord(BaseModel):
    """One seed's run."""

    model_config = ConfigDict(extra="allow")

    seed: Optional[int] = Field(default=None, strict=True)
    final_val_loss: Optional[float] = None  # the run's last eval; None if it diverged
    steps_to_target: Optional[int] = Field(default=None, strict=True, ge=0)  # first eval step with loss < target
    curve: list[CurvePoint] = Field(default_factory=list)
    diverged: bool = False
    extra_passes: int = Field(default=0, strict=True, ge=0)  # forward/backward passes beyond one per step
    log_path: Optional[str] = None

    @model_validator(mode="before")
    @classmethod
    def _nan_to_none(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("final_val_loss"), float) and not math.isfinite(
            data["final_val_loss"]
        ):
            data = {**data, "final_val_loss": None, "diverged": True}
        return data

    @classmethod
    def from_curve(
        cls,
        curve: Sequence[Any],
        *,
        target: float,
        seed: int | None = None,
        extra_passes: int = 0,
        log_path: str | None = None,
        **extra: Any,
    ) -> "RunRecord":
        """A RunRecord from eval points: dicts {step, val_loss, train_time_s?}, CurvePoints or (step, loss[, time]).

        final_val_loss = the last eval's loss; steps_to_target = the first eval step with loss < target;
        diverged = any non-finite loss.
        """
        points: list[CurvePoint] = []
        for p in curve:
            if isinstance(p, CurvePoint):
                points.append(p)
            elif isinstance(p, dict):
                points.append(CurvePoint(**p))
            else:
                t = tuple(p)
                points.append(
                    CurvePoint(step=int(t[0]), val_loss=float(t[1]), train_time_s=(None if len(t) < 3 else t[2]))
                )
        points.sort(key=lambda q: q.step)
        diverged = any(q.val_loss is None for q in points)
        last = points[-1].val_loss if points else None
        return cls(
            seed=seed,
            final_val_loss=last,
            steps_to_target=stats.first_step_below(points, target),
            curve=points,
            diverged=diverged,
            extra_passes=extra_passes,
            log_path=log_path,
            **extra,
        )


class RecipeRecord(BaseModel):
    """The recipe a run used, as results.json records it: its name and the full recipe as data
    (the recipe itself is optbench.optim.recipe.Recipe)."""

    model_config = ConfigDict(extra="allow")

    name: str
    config: dict[str, Any] = Field(default_factory=dict)


class Provenance(BaseModel):
    model_config = ConfigDict(extra="allow")

    git_commit: Optional[str] = None
    torch_version: Optional[str] = None
    device: Optional[str] = None
    world_size: Optional[int] = Field(default=None, strict=True, ge=1)
    optbench_version: Optional[str] = None
    python: Optional[str] = None
    hostname: Optional[str] = None


class Results(BaseModel):
    """A results.json record. The step field is stored as `steps_to_target` and read/written as
    steps_field(target) (`steps_to_3_28` for target 3.28). `target` is required; a file without it is read as
    a legacy 3.28 file by schema.files.parse_results, the one place that assumes a target."""

    model_config = ConfigDict(extra="allow")

    # workspace: required
    agent_id: str = Field(min_length=1)
    experiment: str
    optimizer: str = Field(min_length=1)
    steps_to_target: Optional[int] = Field(strict=True, ge=0)
    final_val_loss: Optional[float]
    # workspace: recommended
    timestamp: Optional[str] = None
    num_runs: Optional[int] = Field(default=None, strict=True, ge=1)
    mean_val_loss: Optional[float] = None
    std_val_loss: Optional[float] = Field(default=None, ge=0)
    key_hparams: dict[str, Any] = Field(default_factory=dict)
    notes: Optional[str] = None
    # optbench
    track: Optional[str] = None
    target: float = Field(gt=0, strict=True)
    rule: Optional[str] = None
    reached_target: Optional[bool] = None
    passes_rule: Optional[bool] = None
    claimed_step: Optional[int] = Field(default=None, strict=True, ge=0)
    seeds: list[Optional[int]] = Field(default_factory=list)
    runs: list[RunRecord] = Field(default_factory=list)
    compliant: Optional[bool] = None
    compliance_notes: list[str] = Field(default_factory=list)
    unofficial: bool = False
    recipe: Optional[RecipeRecord] = None
    parts: list[str] = Field(default_factory=list)  # the recipe's composable parts (aux chain's as "aux.NAME")
    provenance: Optional[Provenance] = None
    train_steps: Optional[int] = Field(default=None, strict=True, ge=0)
    wallclock_s: Optional[float] = Field(default=None, ge=0)
    tuning_budget: Optional[TuningBudget] = None

    @model_validator(mode="after")
    def _budget_from_recipe(self) -> "Results":
        """A run of a recipe exported from a sweep carries the recipe's tuning_budget."""
        tb = self.recipe.config.get("tuning_budget") if self.recipe is not None else None
        if self.tuning_budget is None and isinstance(tb, dict):
            self.tuning_budget = TuningBudget.model_validate(tb)
        return self

    @model_validator(mode="before")
    @classmethod
    def _steps_field_in(cls, data: Any) -> Any:
        """Map the file's steps_to_<target> onto steps_to_target (missing -> 'field required' on it)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        try:
            name = stats.steps_field(data.get("target"))
        except (OptbenchError, TypeError):
            return data  # the target's own validation reports it (missing or invalid)
        if name in data and "steps_to_target" not in data:
            data["steps_to_target"] = data.pop(name)
        for k in ("final_val_loss", "mean_val_loss", "std_val_loss"):
            v = data.get(k)
            if isinstance(v, float) and not math.isfinite(v):
                data[k] = None
        return data

    @model_serializer(mode="wrap")
    def _ordered(self, handler: Any) -> dict[str, Any]:
        d = handler(self)
        out: dict[str, Any] = {}
        step_name = stats.steps_field(self.target)
        for k in _FIELD_ORDER:
            if k not in d:
                continue
            v = d[k]
            if k not in _ALWAYS_WRITTEN and (v is None or v == []):
                continue  # unset optional fields stay out: a workspace-only record stays workspace-shaped
            out[step_name if k == "steps_to_target" else k] = v
        for k, v in d.items():  # extras (other tools' fields) after ours, in their original order
            if k not in _FIELD_ORDER:
                out[k] = v
        return out

    @property
    def steps_field(self) -> str:
        return stats.steps_field(self.target)

    @property
    def n(self) -> int:
        return self.num_runs or (len(self.runs) or 1)

    def uses_part(self, part: str) -> bool:
        """The recipe uses this part (in its chain, its aux chain as aux.PART, or as a global part)."""
        return part in self.parts or f"aux.{part}" in self.parts

    def to_json(self) -> str:
        """Indented JSON; each curve point on one line (a 10-seed record stays readable)."""
        text = json.dumps(self.model_dump(mode="json", exclude_none=False), indent=2, allow_nan=False)
        return _CURVE_POINT.sub(lambda m: "{" + re.sub(r",\n\s*", ", ", m.group(1)) + "}", text) + "\n"
