"""results.json: the one canonical record of an experiment's result (pydantic v2).

The record is the workspace format (spec/workspace.md) plus optbench's fields:

    workspace (required)   agent_id, experiment, optimizer, steps_to_<target>, final_val_loss
    workspace (optional)   timestamp, num_runs, mean_val_loss, std_val_loss, key_hparams, notes
    optbench               track, target, rule, reached_target, passes_rule, seeds, runs (per seed),
                           claimed_step, compliant, compliance_notes, unofficial, recipe, parts, provenance,
                           train_steps, wallclock_s, tuning_budget (from a recipe exported by a sweep)
    anything else          kept as is (other tools' fields survive a load/save round trip)

The step field follows the target: `steps_to_3_28` for 3.28, `steps_to_2_92` for 2.92 (steps_field()).
A file without `target` is a 3.28 file (legacy workspace files load unchanged).

What steps_to_<target> means (decided here, used by results_from_runs):
  * the run set's claimed step (stats.evaluate_runs) when the mean over ALL runs passes the rule at some
    common eval step: `passes_rule: true`, `claimed_step` = the same number;
  * else the earliest common eval step at which the mean is below the target (the upstream README lists
    such results with a cross: "5625 steps, 3.2790 n=1 ✗"): `passes_rule: false`, `claimed_step: null`;
  * else null, with `reached_target: false` (the workspace format wants an integer; null is the honest
    value for a run set that never got below the target, and optbench's readers accept it).
num_runs / mean_val_loss / std_val_loss / final_val_loss describe the runs at that step (the last common
eval step when the target was never reached); std is the sample std (ddof=1, 0.0 for one run).
final_val_loss equals mean_val_loss: the mean val loss of the set at the reported step.
Per-seed `runs[i].final_val_loss` is that run's last eval.
"""

from __future__ import annotations

import json
import math
import re
import os
import platform
import socket
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_serializer, model_validator

from optbench.errors import OptbenchError
from optbench.fsutil import atomic_write_text
from optbench.results import stats

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
        target: float = stats.DEFAULT_TARGET,
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


class Recipe(BaseModel):
    """The recipe a run used: its name and the full recipe as data."""

    model_config = ConfigDict(extra="allow")

    name: str
    config: dict[str, Any] = Field(default_factory=dict)


class TuningBudget(BaseModel):
    """The tuning behind a configuration (a sweep's best): the sweep, its sampler, the trials run, the
    device-hours they took (wall time x devices) and the search space. Carried by exported recipes and by the
    results of runs made from them, so that "better tuned" is visible next to "better optimizer"."""

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
    steps_field(target) (`steps_to_3_28` for the default target)."""

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
    target: float = Field(default=stats.DEFAULT_TARGET, gt=0, strict=True)
    rule: Optional[str] = None
    reached_target: Optional[bool] = None
    passes_rule: Optional[bool] = None
    claimed_step: Optional[int] = Field(default=None, strict=True, ge=0)
    seeds: list[Optional[int]] = Field(default_factory=list)
    runs: list[RunRecord] = Field(default_factory=list)
    compliant: Optional[bool] = None
    compliance_notes: list[str] = Field(default_factory=list)
    unofficial: bool = False
    recipe: Optional[Recipe] = None
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
        target = data.get("target", stats.DEFAULT_TARGET)
        try:
            name = stats.steps_field(target)
        except (OptbenchError, TypeError):
            return data  # the target's own validation reports it
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

    def to_json(self) -> str:
        """Indented JSON; each curve point on one line (a 10-seed record stays readable)."""
        text = json.dumps(self.model_dump(mode="json", exclude_none=False), indent=2, allow_nan=False)
        return _CURVE_POINT.sub(lambda m: "{" + re.sub(r",\n\s*", ", ", m.group(1)) + "}", text) + "\n"


# ----------------------------------------------------------------------------- validation


def parse_timestamp(ts: str | None) -> datetime | None:
    """A results timestamp as a naive UTC datetime: ISO 8601 (`2026-04-30T14:30:00Z`, offsets converted) or the
    message-board form `2026-04-30 14:30 UTC`. None when it is neither."""
    if not ts:
        return None
    text = ts.strip()
    if text.endswith(" UTC"):
        text = text[:-4] + "+00:00"
    try:
        d = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if d.tzinfo is not None:
        d = d.astimezone(timezone.utc).replace(tzinfo=None)
    return d


def _loc_name(loc: tuple, target_field: str) -> str:
    parts = []
    for p in loc:
        if p == "steps_to_target" and not parts:
            p = target_field
        if isinstance(p, int):
            parts.append(f"[{p}]")
        else:
            parts.append(("." if parts else "") + str(p))
    return "".join(parts) or "(record)"


def _describe(err: dict) -> str:
    msg = err["msg"]
    typ = err["type"]
    if typ == "missing":
        return "required field is missing"
    if typ.startswith("int") or typ == "int_type":
        msg = "value is not an integer"
    elif typ.startswith("float"):
        msg = "value is not a number"
    elif typ.startswith("string"):
        msg = "value is not a string"
    elif typ.startswith("bool"):
        msg = "value is not true/false"
    else:
        msg = msg[0].lower() + msg[1:] if msg else msg
    if typ != "missing" and "input" in err:
        msg += f" (got {json.dumps(err['input'], default=str)[:60]})"
    return msg


def consistency_problems(r: Results) -> list[str]:
    """Checks across fields (a record that parses but contradicts itself). Each problem names its field."""
    out: list[str] = []
    f = r.steps_field
    for k in ("final_val_loss", "mean_val_loss"):
        v = getattr(r, k)
        if v is not None and not (0 < v < 100):
            out.append(f"{k}: {v} is not a plausible val loss (expected 0 < loss < 100)")
    if r.timestamp is not None and parse_timestamp(r.timestamp) is None:
        out.append(f"timestamp: {r.timestamp!r} is not an ISO 8601 time (e.g. 2026-04-30T14:30:00Z)")
    if r.rule is not None and r.rule not in stats.RULES:
        out.append(f"rule: unknown stats rule {r.rule!r}; known: {', '.join(stats.rule_names())}")
    if r.runs:
        if r.num_runs is not None and r.num_runs != len(r.runs):
            out.append(f"num_runs: {r.num_runs} but runs lists {len(r.runs)} run(s)")
        if r.seeds and r.seeds != [x.seed for x in r.runs]:
            out.append(f"seeds: {r.seeds} does not match runs[].seed {[x.seed for x in r.runs]}")
        for i, run in enumerate(r.runs):
            steps = [p.step for p in run.curve]
            if steps != sorted(set(steps)):
                out.append(f"runs[{i}].curve: eval steps must be strictly increasing")
        if all(run.curve for run in r.runs):
            v = stats.evaluate_runs(r.runs, r.rule or stats.DEFAULT_RULE, r.target)
            if r.steps_to_target != v.reported_step:
                out.append(
                    f"{f}: {r.steps_to_target} does not match the runs (rule {v.rule.name}: "
                    f"{v.reported_step} — claimed step if the set passes, else first common step with mean < {r.target})"
                )
            if r.claimed_step is not None and r.claimed_step != v.claimed_step:
                out.append(f"claimed_step: {r.claimed_step} does not match the runs' claimed step {v.claimed_step}")
    if r.seeds and r.num_runs is not None and len(r.seeds) != r.num_runs:
        out.append(f"seeds: {len(r.seeds)} seed(s) but num_runs is {r.num_runs}")
    if r.claimed_step is not None and r.steps_to_target is not None and r.claimed_step != r.steps_to_target:
        out.append(f"claimed_step: {r.claimed_step} differs from {f} {r.steps_to_target}")
    if r.train_steps is not None and r.steps_to_target is not None and r.steps_to_target > r.train_steps:
        out.append(f"{f}: {r.steps_to_target} is beyond train_steps {r.train_steps}")
    return out


def parse_results(data: Any, source: str = "results") -> Results:
    """Validate a decoded JSON object; OptbenchError listing every problem, each with its field."""
    if not isinstance(data, dict):
        raise OptbenchError(f"{source}: expected a JSON object, got {type(data).__name__}")
    target = data.get("target", stats.DEFAULT_TARGET)
    try:
        target_field = stats.steps_field(target)
    except (OptbenchError, TypeError):
        target_field = "steps_to_3_28"
    try:
        r = Results.model_validate(data)
    except ValidationError as e:
        problems = [f"{_loc_name(err['loc'], target_field)}: {_describe(err)}" for err in e.errors()]
        raise OptbenchError(f"{source}: {len(problems)} problem(s):\n  " + "\n  ".join(problems)) from None
    problems = consistency_problems(r)
    if problems:
        raise OptbenchError(f"{source}: {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    return r


def load_results(path_or_str: str | os.PathLike) -> Results:
    """Read a results.json (a path, or the JSON text itself) and validate it.

    Raises OptbenchError naming the file and every problem with its field, e.g.
    `steps_to_3_28: value is not an integer (got "3400")`.
    """
    text: str
    source: str
    if isinstance(path_or_str, str) and path_or_str.lstrip().startswith("{"):
        text, source = path_or_str, "results"
    else:
        p = Path(path_or_str)
        if p.is_dir():
            p = p / "results.json"
        source = str(p)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise OptbenchError(f"{source}: no such file") from None
        except OSError as e:
            raise OptbenchError(f"{source}: cannot read ({e.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise OptbenchError(f"{source}: not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    return parse_results(data, source)


def save_results(results: Results, path: str | os.PathLike) -> Path:
    """Write results as indented JSON atomically (temp file + rename).

    A folder, or any path not ending in .json (a run dir that may not exist yet), gets <path>/results.json.
    """
    p = Path(path)
    if p.is_dir() or p.suffix.lower() != ".json":
        p = p / "results.json"
    return atomic_write_text(p, results.to_json())


# ----------------------------------------------------------------------------- builders


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def collect_provenance(device: str | None = None, world_size: int | None = None) -> Provenance:
    """Where and with what a run ran: git commit of the optbench checkout (if any), torch, python, host."""
    import optbench

    commit = None
    try:
        here = Path(optbench.__file__).resolve().parent
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if out.returncode == 0:
            commit = out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        import torch

        tv = torch.__version__
    except ImportError:  # pragma: no cover
        tv = None
    return Provenance(
        git_commit=commit,
        torch_version=tv,
        device=device,
        world_size=world_size,
        optbench_version=getattr(optbench, "__version__", None),
        python=platform.python_version(),
        hostname=socket.gethostname(),
    )


def results_from_runs(
    runs: Sequence[RunRecord],
    *,
    agent_id: str,
    experiment: str,
    optimizer: str,
    target: float = stats.DEFAULT_TARGET,
    rule: str = stats.DEFAULT_RULE,
    track: str | None = None,
    key_hparams: dict[str, Any] | None = None,
    notes: str | None = None,
    recipe: Recipe | dict[str, Any] | None = None,
    provenance: Provenance | dict[str, Any] | None = None,
    train_steps: int | None = None,
    wallclock_s: float | None = None,
    compliant: bool = True,
    compliance_notes: Sequence[str] = (),
    unofficial: bool = False,
    timestamp: str | None = None,
    **extra: Any,
) -> Results:
    """The results record of a run set, with the statistics computed by stats.evaluate_runs.

    steps_to_<target>: claimed step if the set passes `rule`, else the first common eval step with mean
    below target, else None (see the module docstring). compliant is False when `compliant` is False, when
    any run made extra forward/backward passes, or when the run is unofficial; the reasons go to
    compliance_notes.
    """
    if not runs:
        raise OptbenchError("runs: results need at least one run")
    runs = [r if isinstance(r, RunRecord) else RunRecord.model_validate(r) for r in runs]
    v = stats.evaluate_runs(runs, rule, target)
    at = v.reported
    if at is None:
        raise OptbenchError("runs: the runs share no eval step; cannot compute a result")
    notes_out = list(compliance_notes)
    for r in runs:
        if r.extra_passes:
            notes_out.append(
                f"seed {r.seed}: {r.extra_passes} extra forward/backward pass(es) (the rule allows one per step)"
            )
    if unofficial:
        notes_out.append("unofficial: fixed benchmark fields were changed")
    is_compliant = bool(compliant) and not unofficial and not any(r.extra_passes for r in runs)

    def clean(x: float) -> float | None:
        return x if math.isfinite(x) else None

    if isinstance(recipe, dict):
        recipe = Recipe.model_validate(recipe)
    if isinstance(provenance, dict):
        provenance = Provenance.model_validate(provenance)
    return Results(
        agent_id=agent_id,
        timestamp=timestamp or utc_now(),
        experiment=experiment,
        optimizer=optimizer,
        steps_to_target=v.reported_step,
        final_val_loss=clean(at.mean),
        num_runs=len(runs),
        mean_val_loss=clean(at.mean),
        std_val_loss=clean(at.std),
        key_hparams=dict(key_hparams or {}),
        notes=notes,
        track=track,
        target=target,
        rule=v.rule.name,
        reached_target=v.first_below_target is not None,
        passes_rule=v.passed,
        claimed_step=v.claimed_step,
        seeds=[r.seed for r in runs],
        runs=list(runs),
        compliant=is_compliant,
        compliance_notes=notes_out,
        unofficial=unofficial,
        recipe=recipe,
        provenance=provenance,
        train_steps=train_steps,
        wallclock_s=wallclock_s,
        **extra,
    )


def verdict_of(results: Results, rule: str | None = None, target: float | None = None) -> stats.Verdict | None:
    """Re-judge a record from its per-seed curves (None when it has none, e.g. a plain workspace file)."""
    if not results.runs or not all(r.curve for r in results.runs):
        return None
    return stats.evaluate_runs(results.runs, rule or results.rule or stats.DEFAULT_RULE, target or results.target)
