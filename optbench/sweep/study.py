"""A sweep = one Optuna study whose definition (track, base recipe, space, objective, sampler, budget) is stored in
the study itself, so a worker on any machine needs only the sweep's name and the storage URL.

    sweep = create_sweep("nano-lrwd", track="nano", recipe="nano-adamw", space="space.toml", max_trials=24)
    sweep = open_sweep("nano-lrwd")             # in a worker, a report, a notebook
    sweep.trial_dir(7)                          # runs_dir/trial-0007: that trial's run folder
"""

from __future__ import annotations

import random
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

import optuna
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from optbench.errors import OptbenchError
from optbench.optim.recipe import Recipe
from optbench.sweep import storage as storage_mod
from optbench.sweep.settings import setting_names
from optbench.sweep.space import Space, load_space, space_from_dict

SPEC_ATTR = "optbench_sweep"
SAMPLERS = ("tpe", "random", "qmc", "grid", "cmaes")
OBJECTIVES = ("loss", "steps")
PRUNERS = ("none", "median", "halving")


class SweepSpec(BaseModel):
    """Everything a worker needs to run a trial, stored as a user attribute of the study."""

    model_config = ConfigDict(extra="forbid")
    name: str
    track: str
    recipe: dict  # the base Recipe as data
    recipe_text: str  # the base recipe as written (the trial logs' recipe section)
    space: dict  # Space.to_dict()
    objective: Literal["loss", "steps"] = "loss"
    sampler: Literal["tpe", "random", "qmc", "grid", "cmaes"] = "tpe"
    sampler_seed: int = 0  # shared by every worker of a qmc/grid sweep
    seeds: int = Field(default=1, ge=1)  # seeds per trial
    first_seed: int = 0
    max_trials: Optional[int] = Field(default=None, ge=1)
    max_device_hours: Optional[float] = Field(default=None, gt=0)
    pruner: Literal["none", "median", "halving"] = "none"
    runs_dir: str  # where trial run folders go (a worker may pass its own)
    data_dir: Optional[str] = None  # the track's bundled data when None
    stage: Optional[int] = None  # shortcut stage (1 or 2)
    parent: Optional[str] = None  # shortcut name


@dataclass
class Sweep:
    spec: SweepSpec
    study: optuna.Study
    storage_url: str
    runs_dir: Path

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def track(self):
        from optbench.tracks import get_track

        return get_track(self.spec.track)

    @property
    def recipe(self) -> Recipe:
        return Recipe.model_validate(self.spec.recipe)

    @property
    def space(self) -> Space:
        return space_from_dict(self.spec.space, f"sweep {self.name} space")

    @property
    def seeds(self) -> list[int]:
        return list(range(self.spec.first_seed, self.spec.first_seed + self.spec.seeds))

    def trial_dir(self, number: int) -> Path:
        """The run folder of trial `number` (train_log.txt, results.json, trial.json)."""
        return trial_dir(self.runs_dir, number)


def trial_dir(runs_dir: str | Path, number: int) -> Path:
    return Path(runs_dir) / f"trial-{number:04d}"


def base_recipe(track: str, optimizer: str | None, recipe: str | None) -> tuple[Recipe, str]:
    """(Recipe, its text) from --recipe or --optimizer, as `optbench run` picks them."""
    import json

    from optbench.optim.recipe import default_recipe, load_recipe, recipe_source_text

    if (optimizer is None) == (recipe is None):
        raise OptbenchError("give one of --optimizer NAME or --recipe NAME_OR_FILE")
    if recipe is not None:
        return load_recipe(recipe), recipe_source_text(recipe)
    r = default_recipe(optimizer, track)
    return r, f"# default recipe for --optimizer {optimizer}\n" + json.dumps(r.model_dump(), indent=2)


def _sampler(spec: SweepSpec, space: Space, seed: int | None):
    if spec.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)  # liar: parallel workers spread out
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if spec.sampler == "qmc":
        # scrambled: unscrambled, the trials after Optuna's random first one are the low corner, then the centre
        # (docs/proxy.md's pilot);
        # every worker of the sweep shares sampler_seed, so they draw from one sequence
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.QMCSampler(seed=spec.sampler_seed, scramble=True, warn_independent_sampling=False)
    if spec.sampler == "grid":
        return optuna.samplers.GridSampler(space.grid(), seed=spec.sampler_seed)
    try:
        import cmaes  # noqa: F401
    except ImportError:
        raise OptbenchError("--sampler cmaes needs the cmaes package (pip install 'optbench[cmaes]')") from None
    return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)


def _pruner(name: str):
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    return optuna.pruners.NopPruner()


def _check_choice(flag: str, value: str, allowed: tuple) -> None:
    if value not in allowed:
        raise OptbenchError(f"{flag}: {value!r} is not one of {', '.join(allowed)}")


def create_sweep(name: str, *, track: str, space: str | Path | Space | dict, optimizer: str | None = None,
                 recipe: str | None = None, storage: str | None = None, sampler: str = "tpe", seeds: int = 1,
                 first_seed: int = 0, objective: str = "loss", max_trials: int | None = None,
                 max_device_hours: float | None = None, pruner: str = "none", runs_dir: str | Path | None = None,
                 data_dir: str | Path | None = None, resume: bool = False, settings: list[str] = (),
                 stage: int | None = None, parent: str | None = None) -> Sweep:
    """Create a sweep (or, with resume=True, open the existing one of that name). `settings` are fixed --set
    values applied to the base recipe (the shortcut's stage lengths)."""
    from optbench.sweep.settings import trial_recipe
    from optbench.tracks import get_track

    _check_choice("--sampler", sampler, SAMPLERS)
    _check_choice("--objective", objective, OBJECTIVES)
    _check_choice("--pruner", pruner, PRUNERS)
    t = get_track(track)
    base, text = base_recipe(t.name, optimizer, recipe)
    if settings:
        from optbench.optim.recipe import apply_settings

        base, set_text = apply_settings(base, list(settings))
        text = text.rstrip() + "\n" + set_text
    sp = space if isinstance(space, Space) else space_from_dict(space, "space") if isinstance(space, dict) \
        else load_space(space)
    sp.check_names(setting_names(base, t), f"{base.optimizer} (recipe {base.name}) on track {t.name}")
    if sampler == "grid":
        sp.grid()  # every key must have grid points
    trial_recipe(base, text, {})  # the base recipe must validate as --set makes it
    if objective == "steps" and not t.exchange_rate > 0:
        raise OptbenchError(f"--objective steps: track {t.name} has no exchange rate (val loss per step)")
    url = storage_mod.resolve_url(storage)
    if runs_dir is None:
        runs_dir = Path("sweeps") / name
    spec = SweepSpec(name=name, track=t.name, recipe=base.model_dump(mode="json"), recipe_text=text,
                     space=sp.to_dict(), objective=objective, sampler=sampler, sampler_seed=random.randrange(2**31),
                     seeds=seeds, first_seed=first_seed, max_trials=max_trials, max_device_hours=max_device_hours,
                     pruner=pruner, runs_dir=str(Path(runs_dir).resolve()),
                     data_dir=str(Path(data_dir).resolve()) if data_dir else None, stage=stage, parent=parent)
    rdb = storage_mod.open_storage(url, heartbeat_interval=None)
    try:
        study = optuna.create_study(study_name=name, storage=rdb, direction="minimize")
    except optuna.exceptions.DuplicatedStudyError:
        if not resume:
            n = len(optuna.load_study(study_name=name, storage=rdb).trials)
            raise OptbenchError(f"sweep {name!r} already exists in {storage_mod.redact(url)} ({n} trials); pass "
                                f"--resume to continue it, or choose another name") from None
        existing = open_sweep(name, url, heartbeat_interval=None)
        _check_same(existing.spec, spec)
        if (max_trials, max_device_hours) != (None, None):  # a budget given again may extend (or cut) the old one
            existing = set_budget(existing, max_trials=max_trials, max_device_hours=max_device_hours)
        return existing
    study.set_user_attr(SPEC_ATTR, spec.model_dump(mode="json"))
    return Sweep(spec, study, url, Path(spec.runs_dir))


def set_budget(sweep: Sweep, *, max_trials: int | None = None, max_device_hours: float | None = None) -> Sweep:
    """The sweep with a new budget (None keeps that part), stored: raising it lets workers started from now on run
    where the sweep stopped, its finished trials kept (a worker already running keeps the budget it read)."""
    update = {k: v for k, v in (("max_trials", max_trials), ("max_device_hours", max_device_hours)) if v is not None}
    if not update:
        raise OptbenchError("give --max-trials and/or --max-device-hours")
    try:  # SweepSpec's own field rules decide what a budget may be
        spec = SweepSpec.model_validate({**sweep.spec.model_dump(), **update})
    except ValidationError:
        raise OptbenchError(f"sweep {sweep.name}: a budget must be positive, got "
                            + ", ".join(f"{k}={v}" for k, v in update.items())) from None
    if spec != sweep.spec:
        sweep.study.set_user_attr(SPEC_ATTR, spec.model_dump(mode="json"))
    return Sweep(spec, sweep.study, sweep.storage_url, sweep.runs_dir)


def _check_same(old: SweepSpec, new: SweepSpec) -> None:
    keys = ("track", "recipe", "space", "objective", "sampler", "seeds", "first_seed", "pruner")

    def value(spec: SweepSpec, key: str):
        if key == "recipe":  # as today's Recipe reads it: a field added since the sweep was made takes its default
            return Recipe.model_validate(spec.recipe).model_dump(mode="json")
        return getattr(spec, key)

    differ = [k for k in keys if value(old, k) != value(new, k)]
    if differ:
        raise OptbenchError(f"--resume: sweep {old.name!r} exists with a different {', '.join(differ)}; "
                            f"resume it with `optbench sweep worker {old.name}` or choose another name")


def sweep_names(storage: str | None = None) -> list[str]:
    rdb = storage_mod.open_storage(storage, heartbeat_interval=None)
    return sorted(s.study_name for s in optuna.get_all_study_summaries(rdb, include_best_trial=False))


def open_sweep(name: str, storage: str | None = None, *, heartbeat_interval: int | None = None,
               grace_period: int | None = None, max_retry: int = storage_mod.MAX_RETRY,
               sampler_seed: int | None = None, runs_dir: str | Path | None = None) -> Sweep:
    """Load a sweep. Workers pass heartbeat_interval (and may pass their own runs_dir)."""
    url = storage_mod.resolve_url(storage)
    rdb = storage_mod.open_storage(url, heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                                   max_retry=max_retry)
    try:
        probe = optuna.load_study(study_name=name, storage=rdb)
    except KeyError:
        known = sorted(s.study_name for s in optuna.get_all_study_summaries(rdb, include_best_trial=False))
        raise OptbenchError(f"no sweep {name!r} in {storage_mod.redact(url)}"
                            + (f"; sweeps there: {', '.join(known)}" if known else " (it holds no sweeps)")) from None
    raw = probe.user_attrs.get(SPEC_ATTR)
    if raw is None:
        raise OptbenchError(f"study {name!r} in {storage_mod.redact(url)} was not made by `optbench sweep create`")
    spec = SweepSpec.model_validate(raw)
    space = space_from_dict(spec.space, f"sweep {name} space")
    study = optuna.load_study(study_name=name, storage=rdb, sampler=_sampler(spec, space, sampler_seed),
                              pruner=_pruner(spec.pruner))
    return Sweep(spec, study, url, Path(runs_dir).resolve() if runs_dir else Path(spec.runs_dir))
