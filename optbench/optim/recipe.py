"""Recipes: the only thing a researcher changes. An optimizer + hyperparameters + param-group policy + schedule,
kept as TOML data files (optbench/optim/recipes/*.toml) that cite the published result they reproduce."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from optbench.assignments import parse_assignment
from optbench.errors import OptbenchError
from optbench.tuning import TuningBudget

RECIPE_DIR = Path(__file__).resolve().parent / "recipes"

# [parts.NAME] tables: part name -> knob values (optbench.optim.parts.catalog); `NAME = true` is the part with its
# defaults, `NAME = false` leaves it out (how `--set parts.NAME=false` ablates a part).
PartsSpec = dict[str, dict[str, Any]]


def _normalize_parts(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    out = {}
    for name, knobs in value.items():
        if knobs is False:
            continue
        out[name] = {} if knobs is True else knobs
    return out


class GroupOverride(BaseModel):
    """Hyperparameter overrides for the hidden matrices whose names contain `match` (e.g. 2x wd on MLP); under
    [aux], for the aux parameters whose names contain it (e.g. per-bias betas)."""

    model_config = ConfigDict(extra="forbid")
    match: str
    hparams: dict[str, Any]


def check_hparams(optimizer: str, hparams: dict[str, Any], where: str) -> None:
    """ValueError naming the first hyperparameter the optimizer does not take, or whose value is outside the range
    its registry entry declares (the message gives the range), or of another type than its default."""
    import inspect
    import math

    from optbench import optim

    info = optim.info(optimizer)
    if info.name == "chain":  # a chain's hyperparameters are its parts' knobs, checked by parts.catalog.check_spec
        return
    params = inspect.signature(info.cls.__init__).parameters
    open_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    defaults = info.defaults()
    for key, value in hparams.items():
        what = f"{where}{key} = {value!r}"
        if key not in params and key != "lr" and not open_kwargs:
            raise ValueError(f"{where}{key}: {info.name} has no such hyperparameter; it takes "
                             f"{', '.join(sorted(defaults))}")
        rng, default = info.ranges.get(key), defaults.get(key)
        if rng is not None:
            if not (value is None and default is None) and not rng.allows(value):
                raise ValueError(f"{what} is not allowed for {info.name}; allowed: {rng}")
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ValueError(f"{what}: {info.name} wants true or false")
        elif isinstance(default, (int, float)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{what}: {info.name} wants a finite number")


class AuxSpec(BaseModel):
    """Auxiliary optimizer for the embedding, LM head and vectors/scalars (upstream: AdamW)."""

    model_config = ConfigDict(extra="forbid")
    optimizer: str = "adamw"
    embed_lr: float = Field(gt=0, allow_inf_nan=False)
    head_lr: float = Field(gt=0, allow_inf_nan=False)
    scalar_lr: float = Field(gt=0, allow_inf_nan=False)
    hparams: dict[str, Any] = Field(default_factory=dict)
    parts: PartsSpec = Field(default_factory=dict)  # the aux Chain's parts (optimizer = "chain")
    overrides: list[GroupOverride] = Field(default_factory=list)  # name-matched aux subgroups (e.g. per-bias betas)

    @model_validator(mode="after")
    def _check(self) -> "AuxSpec":
        check_hparams(self.optimizer, self.hparams, "aux.")
        for ov in self.overrides:
            check_hparams(self.optimizer, ov.hparams, f"aux.overrides[{ov.match!r}].")
        return self

    @field_validator("parts", mode="before")
    @classmethod
    def _parts(cls, v: Any) -> Any:
        return _normalize_parts(v)


class MomentumWarmup(BaseModel):
    """The main optimizer's momentum goes linearly from `start` to its `momentum` hparam over `steps` steps."""

    model_config = ConfigDict(extra="forbid")
    start: float = Field(ge=0, lt=1)
    steps: int = Field(gt=0)


class Published(BaseModel):
    """The published result the recipe reproduces (for checking, not used by the run)."""

    model_config = ConfigDict(extra="allow")
    steps: int | None = None
    mean_val_loss: float | None = None
    n: int | None = None


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    source: str = ""  # where the numbers come from (log, README row, PR)
    track: str | None = None  # the track it was tuned on
    optimizer: str  # the optimizer under test
    hparams: dict[str, Any] = Field(default_factory=dict)
    scope: Literal["matrices", "all"] = "matrices"  # matrices: hidden matrices only, the rest to `aux`
    aux: AuxSpec | None = None
    overrides: list[GroupOverride] = Field(default_factory=list)
    train_steps: int | None = Field(default=None, gt=0)
    cooldown_frac: float = Field(default=0.7, ge=0, le=1, allow_inf_nan=False)
    warmup_steps: int = Field(default=0, ge=0)
    lr_floor: float = Field(default=0.0, ge=0, le=1, allow_inf_nan=False)  # the cooldown ends at this fraction of the lr (remix: 0.1)
    momentum_warmup: MomentumWarmup | None = None
    # "track3": the #36 init (proj weights zero, embedding N(0,1), others N(0, sqrt(0.33/fan_in)));
    # "torch-default": torch's default Linear/Embedding init, then proj weights zeroed (result #2's era)
    init: Literal["track3", "torch-default"] = "track3"
    published: Published | None = None
    tuning_budget: TuningBudget | None = None  # set by `optbench sweep export`: the sweep behind these numbers
    parts: PartsSpec = Field(default_factory=dict)  # composable parts: chain stages for optimizer "chain", and
    #                                                 schedule / outer / readout parts for any optimizer

    @field_validator("parts", mode="before")
    @classmethod
    def _parts(cls, v: Any) -> Any:
        return _normalize_parts(v)

    @model_validator(mode="after")
    def _check(self) -> "Recipe":
        if self.scope == "matrices" and self.aux is None:
            raise ValueError("scope 'matrices' needs an [aux] table for the embedding, head and scalars")
        if self.scope == "all" and self.aux is not None:
            raise ValueError("scope 'all' sends every parameter to the optimizer; remove [aux]")
        check_hparams(self.optimizer, self.hparams, "hparams.")
        for ov in self.overrides:
            check_hparams(self.optimizer, ov.hparams, f"overrides[{ov.match!r}].")
        if self.momentum_warmup is not None and "momentum" not in self.hparams:
            raise ValueError("momentum_warmup needs the end value as hparams.momentum")
        if self.parts or self.optimizer == "chain" or (self.aux is not None and (self.aux.parts
                                                                                   or self.aux.optimizer == "chain")):
            from optbench.optim.parts.catalog import check_spec

            check_spec(self.parts, chain=self.optimizer == "chain", allow_global=True, where="parts")
            if self.aux is not None:
                check_spec(self.aux.parts, chain=self.aux.optimizer == "chain", allow_global=False,
                           where="aux.parts")
        return self

    def summary(self) -> str:
        """One-line hyperparameter summary for logs and leaderboards."""
        hp = ", ".join(f"{k}={v}" for k, v in sorted(self.hparams.items()))
        s = f"{self.optimizer}({hp})"
        if self.warmup_steps:
            s += f", warmup {self.warmup_steps}"
        s += f", cooldown {self.cooldown_frac:g}"
        if self.lr_floor:
            s += f" to {self.lr_floor:g}"
        if self.momentum_warmup:
            s += f", momentum {self.momentum_warmup.start:g} -> {self.hparams['momentum']:g} over " \
                 f"{self.momentum_warmup.steps} steps"
        if self.aux:
            s += f"; aux {self.aux.optimizer} embed {self.aux.embed_lr:g} head {self.aux.head_lr:g} " \
                 f"scalars {self.aux.scalar_lr:g}"
        if self.part_names():
            s += "; parts " + ", ".join(self.part_names())
        return s

    def part_names(self) -> list[str]:
        """The recipe's parts in canonical order, the aux chain's prefixed "aux." (what results and boards show)."""
        from optbench.optim.parts.catalog import names

        order = {n: i for i, n in enumerate(names())}
        out = sorted(self.parts, key=lambda n: order.get(n, len(order)))
        if self.aux is not None:
            out += ["aux." + n for n in sorted(self.aux.parts, key=lambda n: order.get(n, len(order)))]
        return out

    def uses_part(self, part: str) -> bool:
        """The recipe uses this part (in its chain, its aux chain, or as a global part)."""
        return part in self.parts or (self.aux is not None and part in self.aux.parts)


# The upstream #36 auxiliary AdamW (embedding 0.7, head 0.004, vectors 0.015; betas (0.8, 0.95), eps 1e-10, wd 1e-3).
UPSTREAM_AUX = AuxSpec(optimizer="adamw", embed_lr=0.7, head_lr=0.004, scalar_lr=0.015,
                       hparams={"betas": [0.8, 0.95], "eps": 1e-10, "weight_decay": 0.001})


def parse_recipe(text: str, origin: str) -> Recipe:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise OptbenchError(f"recipe {origin}: not valid TOML ({e})") from None
    try:
        return Recipe.model_validate(data)
    except ValidationError as e:
        raise OptbenchError(f"recipe {origin}: {_problems(e)}") from None


def _problems(e: ValidationError) -> str:
    """A pydantic error as one line: `field: what is wrong; ...`."""
    def one(err) -> str:
        msg = err["msg"].removeprefix("Value error, ")
        loc = ".".join(map(str, err["loc"]))
        return f"{loc}: {msg}" if loc else msg

    return "; ".join(one(err) for err in e.errors())


def recipe_names() -> list[str]:
    return sorted(p.stem for p in RECIPE_DIR.glob("*.toml"))


def _file_text(p: Path) -> str:
    """A recipe file's text; OptbenchError for a file that is not UTF-8 text or cannot be read."""
    try:
        return p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise OptbenchError(f"recipe {p}: not a UTF-8 text file (byte {e.start})") from None
    except OSError as e:
        raise OptbenchError(f"recipe {p}: cannot read it ({e.strerror})") from None


def load_recipe(name_or_path: str) -> Recipe:
    """A bundled recipe by name, or a .toml file path."""
    p = Path(name_or_path)
    if p.suffix == ".toml" and p.is_file():
        return parse_recipe(_file_text(p), str(p))
    bundled = RECIPE_DIR / f"{name_or_path}.toml"
    if bundled.is_file():
        return parse_recipe(bundled.read_text(), name_or_path)
    raise OptbenchError(f"--recipe: no recipe named {name_or_path!r} and no such .toml file; "
                        f"known: {', '.join(recipe_names())}")


def recipe_source_text(name_or_path: str) -> str:
    p = Path(name_or_path)
    return _file_text(p) if (p.suffix == ".toml" and p.is_file()) else (RECIPE_DIR / f"{name_or_path}.toml").read_text()


def default_recipe(optimizer: str, track: str) -> Recipe:
    """The recipe used for `--optimizer X` alone: the bundled `{track}-{X}` recipe if there is one, else X with its
    official defaults on the hidden matrices and the upstream auxiliary AdamW."""
    from optbench import optim

    info = optim.info(optimizer)
    name = f"{track}-{info.name}"
    if (RECIPE_DIR / f"{name}.toml").is_file():
        return load_recipe(name)
    return Recipe(name=f"{info.name}-defaults", description=f"{info.name} with its official defaults",
                  optimizer=info.name, aux=UPSTREAM_AUX)


SCHEDULE_FIELDS = ("train_steps", "warmup_steps", "cooldown_frac", "lr_floor")
AUX_FIELDS = ("embed_lr", "head_lr", "scalar_lr", "optimizer")


def apply_settings(recipe: Recipe, settings: list[str]) -> tuple[Recipe, str]:
    """`--set KEY=VALUE`s applied to a recipe: hparams (lr=0.02), schedule fields (train_steps, warmup_steps,
    cooldown_frac, lr_floor), aux.FIELD, or parts (parts.NAME=false ablates a part, parts.NAME.KNOB=V sets a
    knob; aux.parts.* likewise). Returns the new recipe (named `NAME+set`) and the lines that record the settings
    in the run log's code section."""
    from optbench.optim.parts.settings import set_part

    if not settings:
        return recipe, ""
    data = recipe.model_dump()
    for s in settings:
        key, value = parse_assignment(s, "--set")
        if key in SCHEDULE_FIELDS:
            data[key] = value
        elif key.startswith("parts."):
            set_part(data["parts"], key[len("parts."):], value)
        elif key.startswith("aux."):
            if data.get("aux") is None:
                raise OptbenchError(f"--set {key}: recipe {recipe.name} has no aux optimizer")
            sub = key[4:]
            if sub.startswith("parts."):
                set_part(data["aux"]["parts"], sub[len("parts."):], value, where="aux.parts")
            elif sub in AUX_FIELDS:
                data["aux"][sub] = value
            else:
                data["aux"]["hparams"][sub] = value
        else:
            data["hparams"][key] = value
    data["name"] = recipe.name + "+set"
    try:
        new = Recipe.model_validate(data)
    except ValidationError as e:
        raise OptbenchError(f"--set: {_problems(e)}") from None
    return new, "".join(f"# --set {s}\n" for s in settings)


def resolve_recipe(recipe: str | None, optimizer: str | None, track,
                   settings: list[str] = ()) -> tuple[Recipe, str]:
    """The recipe of a run from `--recipe` and/or `--optimizer` (and `--set`s), with the text the run log
    records: the recipe file, or the default recipe as JSON, then the settings. `track` (a name or a Track):
    a recipe tuned on a full-size track and run on its CPU size gets its step counts scaled first
    (`tracks.fit_recipe`; the text notes it)."""
    import json

    from optbench.tracks import fit_recipe, get_track

    track = get_track(track) if isinstance(track, str) else track

    if recipe is None and optimizer is None:
        raise OptbenchError("give --optimizer NAME or --recipe NAME_OR_FILE (see `optbench recipes`)")
    if recipe is not None:
        r = load_recipe(recipe)
        text = recipe_source_text(recipe)
        if optimizer is not None:
            from optbench import optim

            if optim.info(optimizer).name != optim.info(r.optimizer).name:
                raise OptbenchError(f"--optimizer {optimizer} disagrees with recipe {r.name} "
                                    f"(optimizer {r.optimizer}); drop one of them")
    else:
        r = default_recipe(optimizer, track.name)
        text = f"# default recipe for --optimizer {optimizer}\n" + json.dumps(r.model_dump(), indent=2)
    r, fit_note = fit_recipe(r, track)
    r, set_text = apply_settings(r, list(settings))
    return r, text.rstrip() + "\n" + (f"# {fit_note}\n" if fit_note else "") + set_text
