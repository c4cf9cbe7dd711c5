"""A trial's hyperparameters as `--set KEY=VALUE` settings: the valid names, and the recipe they make.

The recipe goes through the same function as `optbench run --set` (apply_settings), so a trial is exactly the run
`optbench run --recipe R --set k=v ...` would make, and its log records the settings as `# --set` lines.
"""

from __future__ import annotations

import json
import math

from optbench import optim
from optbench.optim.recipe import apply_settings
from optbench.optim.groups import with_track_hparams
from optbench.optim.recipe import Recipe

SCHEDULE_FIELDS = ("train_steps", "warmup_steps", "cooldown_frac")
AUX_FIELDS = ("embed_lr", "head_lr", "scalar_lr")
IMPLEMENTATION_FLAGS = frozenset({"foreach", "fused", "maximize", "capturable", "differentiable"})


def _hparam_names(optimizer: str, recipe_hparams: dict) -> set[str]:
    return (set(optim.info(optimizer).defaults()) | set(recipe_hparams)) - IMPLEMENTATION_FLAGS


def setting_names(recipe: Recipe, track) -> list[str]:
    """Every name a space may tune for this recipe's optimizer on this track (hparams the track fixes, such as
    Sophia's batch_size, are left out), and the recipe's parts: ``parts.NAME`` (true/false: an ablation) and
    ``parts.NAME.KNOB`` (``aux.parts...`` for the aux chain's)."""
    from_track = set(with_track_hparams(recipe, track).hparams) - set(recipe.hparams)
    names = sorted(_hparam_names(recipe.optimizer, recipe.hparams) - from_track) + list(SCHEDULE_FIELDS)
    if recipe.aux is not None:
        names += [f"aux.{f}" for f in AUX_FIELDS]
        aux = _hparam_names(recipe.aux.optimizer, recipe.aux.hparams) - {"lr"}  # its lrs are the three above
        names += [f"aux.{k}" for k in sorted(aux)]
        names += _part_names("aux.parts", recipe.aux.parts)
    return names + _part_names("parts", recipe.parts)


def _part_names(prefix: str, parts: dict) -> list[str]:
    from optbench.optim.parts import catalog

    return [n for name in parts for n in (f"{prefix}.{name}",
                                          *(f"{prefix}.{name}.{k}" for k in catalog.info(name).knobs))]


def toml_literal(v) -> str:
    """A value as `--set` parses it (TOML)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"not a finite number: {v}")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_literal(x) for x in v) + "]"
    raise TypeError(f"no TOML form for {v!r}")


def settings_of(params: dict) -> list[str]:
    return [f"{k}={toml_literal(v)}" for k, v in params.items()]


def trial_recipe(recipe: Recipe, recipe_text: str, params: dict) -> tuple[Recipe, str]:
    """(recipe with the params applied, the log's recipe text with one `# --set` line per param)."""
    new, set_text = apply_settings(recipe, settings_of(params))
    return new, recipe_text.rstrip() + "\n" + set_text
