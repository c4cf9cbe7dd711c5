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
from pydantic_core import PydanticCustomError

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

#: Every number in a record is finite: a diverged loss is null, never NaN/Infinity (which JSON does not have).
#: The rule for every model below (declared float fields refuse NaN/inf, also as strings) plus _refuse_non_finite
#: for the free-form parts (key_hparams, recipe config, fields of other tools).
_FINITE = ConfigDict(extra="allow", allow_inf_nan=False)
NON_FINITE_HINT = "numbers must be finite; a diverged loss is written as null"


def finite_or_none(x: float | None) -> float | None:
    """A measured loss as a record stores it: a non-finite value (a diverged eval) becomes None."""
    return None if x is None or not math.isfinite(x) else float(x)


def _non_finite(data: Any, path: str = "") -> Optional[tuple[str, float]]:
    """The first non-finite float inside decoded JSON data, as (field path, value); None when all are finite."""
    if isinstance(data, float) and not math.isfinite(data):
        return path or "(value)", data
    if isinstance(data, dict):
        items = ((f"{path}.{k}" if path else str(k), v) for k, v in data.items())
    elif isinstance(data, (list, tuple)):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(data))
    else:
        return None
    for p, v in items:
        bad = _non_finite(v, p)
        if bad is not None:
            return bad
    return None


def _refuse_non_finite(data: Any) -> Any:
    bad = _non_finite(data)
    if bad is not None:
        raise PydanticCustomError(
            "non_finite", "{where}: {value} is not allowed ({hint})",
            {"where": bad[0], "value": json.dumps(bad[1]), "hint": NON_FINITE_HINT},
        )
    return data


class _FiniteModel(BaseModel):
    """A record whose numbers are all finite, its free-form parts included (the rule above)."""

    model_config = _FINITE

    @model_validator(mode="before")
    @classmethod
    def _finite(cls, data: Any) -> Any:
        return _refuse_non_finite(data)


class CurvePoint(_FiniteModel):
    """One evaluation: step, val loss (None: it was NaN/inf, the run diverged), training time so far."""

    step: int = Field(strict=True, ge=0)
    val_loss: Optional[float] = None
    train_time_s: Optional[float] = None

    @classmethod
    def measured(cls, step: int, val_loss: float | None, train_time_s: float | None = None, **extra: Any) -> "CurvePoint":
        """A point from a measurement (a log line, a live eval): a non-finite loss is stored as None (diverged)."""
        return cls(step=step, val_loss=finite_or_none(val_loss), train_time_s=finite_or_none(train_time_s), **extra)


class RunRecord(_FiniteModel):
    """One seed's run."""

    seed: Optional[int] = Field(default=None, strict=True)
    final_val_loss: Optional[float] = None  # the run's last eval; None if it diverged
    steps_to_target: Optional[int] = Field(default=None, strict=True, ge=0)  # first eval step with loss < target
    curve: list[CurvePoint] = Field(default_factory=list)
    diverged: bool = False
    extra_passes: int = Field(default=0, strict=True, ge=0)  # forward/backward passes beyond one per step
    log_path: Optional[str] = None

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

        final_val_loss = the last eval's loss (None once the run diverged, even if a later loss is finite);
        steps_to_target = the first eval step with loss < target before any divergence;
        diverged = any non-finite loss (stored as None; see stats.curve_map for what a divergence means).
        """
        points: list[CurvePoint] = []
        for p in curve:
            if isinstance(p, CurvePoint):
                points.append(p)
            elif isinstance(p, dict):
                points.append(CurvePoint.measured(**p))
            else:
                t = tuple(p)
                points.append(CurvePoint.measured(int(t[0]), float(t[1]), None if len(t) < 3 else t[2]))
        points.sort(key=lambda q: q.step)
        diverged = any(q.val_loss is None for q in points)
        losses = stats.curve_map(points)  # after a divergence every loss counts as NaN (stats.curve_map)
        last = finite_or_none(losses[points[-1].step]) if points else None
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


class Results(_FiniteModel):
    """A results.json record. The step field is stored as `steps_to_target` and read/written as
    steps_field(target) (`steps_to_3_28` for target 3.28). `target` is required; a file without it is read as
    a legacy 3.28 file by schema.files.parse_results, the one place that assumes a target.
    Every number is finite (NaN/Infinity are refused; a diverged loss is null)."""

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

    def loss_summary(self) -> str:
        """The record's losses in words, each named by its field: the top-level final_val_loss is the mean val
        loss AT THE REPORTED STEP (steps_to_<target>, or the last common eval when the target was not reached),
        which differs from each run's last eval (runs[].final_val_loss) when the runs went on past that step."""
        def fmt(x: float | None) -> str:
            return "null" if x is None else f"{x:.5f}"

        where = f"step {self.steps_to_target}" if self.steps_to_target is not None else "the last common eval"
        text = f"final_val_loss {fmt(self.final_val_loss)} (mean val loss at {where}, n={self.n})"
        if self.runs:
            last = ", ".join("diverged" if r.diverged and r.final_val_loss is None else fmt(r.final_val_loss)
                             for r in self.runs)
            text += f"; last eval of each run (runs[].final_val_loss): {last}"
        return text

    def uses_part(self, part: str) -> bool:
        """The recipe uses this part (in its chain, its aux chain as aux.PART, or as a global part)."""
        return part in self.parts or f"aux.{part}" in self.parts

    def to_json(self) -> str:
        """Indented JSON; each curve point on one line (a 10-seed record stays readable)."""
        text = json.dumps(self.model_dump(mode="json", exclude_none=False), indent=2, allow_nan=False)
        return _CURVE_POINT.sub(lambda m: "{" + re.sub(r",\n\s*", ", ", m.group(1)) + "}", text) + "\n"
