"""A rank study's definition: the optimizers, their base recipes and one knob each, the full benchmark's figure for
each, and the equal tuning budget; and the one rule that makes every entry's search space.

Read from a TOML file (studies/proxy/study.toml); paths in it are relative to that file. Every entry's space has
the same shape: lr and weight_decay log-uniform over [value / f, value x f] around the entry's base recipe
(f = `range_factor`), train_steps log-uniform over the study's `steps` range, and at most one optimizer-specific
knob. The first trial of each sweep is the centre (`Study.centre`).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from optbench.errors import OptbenchError


class Entry(BaseModel):
    """One optimizer of the study."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")  # the sweep is STUDY-NAME
    label: str  # as the table shows it
    recipe: str  # the base recipe (bundled name or a path relative to the study file)
    full_steps: int = Field(gt=0)  # the full benchmark's published steps to 3.28
    full_source: str  # where that figure is published
    full_note: str = ""  # how the published entry differs from the zoo's optimizer (e.g. "with the hyperball")
    knob: dict = Field(default_factory=dict)  # {name: range} in the sweep space syntax; at most one

    @model_validator(mode="after")
    def _one_knob(self) -> Entry:
        if len(self.knob) > 1:
            raise ValueError(f"entry {self.name}: at most one optimizer-specific knob, got {', '.join(self.knob)}")
        if set(self.knob) & {"lr", "weight_decay", "train_steps"}:
            raise ValueError(f"entry {self.name}: lr, weight_decay and train_steps are tuned for every entry; "
                             f"the knob must be another hyperparameter")
        return self


class Study(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    track: str
    trials: int = Field(gt=0)  # per entry: the equal budget
    sampler: Literal["tpe", "random", "qmc"] = "qmc"
    range_factor: float = Field(gt=1)  # lr and wd: [value / f, value * f], log-uniform
    steps: tuple[int, int]  # train_steps range (log-uniform integers), the same for every entry
    final_seeds: list[int] = Field(min_length=1)  # seeds of each entry's best configuration (fresh: not the sweep's)
    sweep_seed: int = 0  # the seed every trial runs with
    storage: str = "sweeps.db"  # SQLite file, relative to the study file
    runs: str = "runs"  # trial folders (not committed), relative to the study file
    finals: str = "finals"  # the final runs' folders (their results.json are committed)
    report: str = "../../docs/proxy_study.md"
    figure: str = "../../docs/proxy_study.png"
    reference: str  # the entry whose transposed published recipe defines the track's target (docs/proxy.md)
    ratio: tuple[str, str] = ("muon", "adamw")  # proxy steps of the first over the second ...
    full_ratio: float = 0.66  # ... against this full-benchmark figure
    entries: list[Entry] = Field(min_length=3)
    path: Path = Field(default=Path("."), exclude=True)

    @model_validator(mode="after")
    def _check(self) -> Study:
        names = [e.name for e in self.entries]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate entry name(s): {', '.join(dup)}")
        for n in (self.reference, *self.ratio):
            if n not in names:
                raise ValueError(f"{n!r} is not an entry (entries: {', '.join(names)})")
        lo, hi = self.steps
        if not 0 < lo < hi:
            raise ValueError(f"steps: need 0 < low < high, got {list(self.steps)}")
        return self

    @property
    def dir(self) -> Path:
        return self.path.parent

    def entry(self, name: str) -> Entry:
        for e in self.entries:
            if e.name == name:
                return e
        raise OptbenchError(f"study {self.name}: no entry {name!r}; entries: {', '.join(self.names)}")

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    def sweep_name(self, entry: Entry) -> str:
        return f"{self.name}-{entry.name}"

    def storage_url(self) -> str:
        return f"sqlite:///{(self.dir / self.storage).resolve()}"

    def runs_dir(self, entry: Entry) -> Path:
        return self.dir / self.runs / entry.name

    def final_dir(self, entry: Entry) -> Path:
        return self.dir / self.finals / entry.name

    def recipe_ref(self, entry: Entry) -> str:
        """A bundled recipe name as is; a .toml path made absolute against the study file."""
        return str(self.dir / entry.recipe) if entry.recipe.endswith(".toml") else entry.recipe

    def space(self, entry: Entry) -> dict:
        """The entry's search space (the sweep space syntax), from its base recipe by the study's one rule."""
        from optbench.optim.recipe import load_recipe

        recipe = load_recipe(self.recipe_ref(entry))
        space: dict = {}
        for key in ("lr", "weight_decay"):
            value = recipe.hparams.get(key)
            if not isinstance(value, (int, float)) or value <= 0:
                raise OptbenchError(f"study {self.name}, entry {entry.name}: recipe {recipe.name} needs a positive "
                                    f"{key} to centre the search on (got {value!r})")
            space[key] = {"log": [_round(value / self.range_factor), _round(value * self.range_factor)]}
        space["train_steps"] = {"int": list(self.steps), "log": True}
        space.update(entry.knob)
        return space

    def centre(self, entry: Entry) -> dict:
        """The first trial of every sweep: the base recipe's lr and weight decay at the track's train_steps (the
        transposed published setting), so the best of the budget is never worse than the starting point."""
        from optbench.optim.recipe import load_recipe
        from optbench.tracks import get_track

        recipe = load_recipe(self.recipe_ref(entry))
        T = get_track(self.track).train_steps
        if not self.steps[0] <= T <= self.steps[1]:
            raise OptbenchError(f"study {self.name}: the track's train_steps {T} is outside steps {list(self.steps)}")
        return {"lr": recipe.hparams["lr"], "weight_decay": recipe.hparams["weight_decay"], "train_steps": T}


def _round(x: float) -> float:
    return float(f"{x:.6g}")


def load_study(path: str | Path) -> Study:
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except OSError as e:
        raise OptbenchError(f"study: cannot read {p} ({e.strerror or e})") from None
    except tomllib.TOMLDecodeError as e:
        raise OptbenchError(f"study {p}: not valid TOML ({e})") from None
    data["entries"] = data.pop("entry", [])  # [[entry]] tables
    try:
        study = Study.model_validate({**data, "path": p.resolve()})
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'study'}: {err['msg']}" for err in e.errors())
        raise OptbenchError(f"study {p}: {problems}") from None
    return study
