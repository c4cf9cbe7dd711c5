"""`optbench sweep export`: the sweep's best configuration as a recipe file that cites the sweep and carries its
tuning_budget (so results of runs made from it carry it too)."""

from __future__ import annotations

from pathlib import Path

import tomli_w

from optbench.errors import OptbenchError
from optbench.fsutil import atomic_write_text
from optbench.sweep.space import decode_params
from optbench.sweep.stages import load_stages
from optbench.sweep.status import best_trial, tuning_budget
from optbench.sweep.storage import redact
from optbench.sweep.settings import trial_recipe


def best_recipe(name: str, storage: str | None = None, recipe_name: str | None = None):
    """(Recipe of the last stage's best trial with tuning_budget and source set, that trial)."""
    stages = load_stages(name, storage)
    last = stages[-1]
    best = best_trial(last.study.get_trials(deepcopy=False))
    if best is None:
        raise OptbenchError(f"sweep {name!r} has no complete trial yet: nothing to export")
    params = decode_params(best.params)
    recipe, _ = trial_recipe(last.recipe, last.spec.recipe_text, params)
    budget = tuning_budget(stages)
    settings = ", ".join(f"{k}={v}" for k, v in params.items())
    source = (f"optbench sweep {name} ({redact(last.storage_url)}): best of {budget.trials} trials, trial "
              f"{best.number} of {last.name}, objective {last.spec.objective} = {best.value:.6g}")
    recipe = recipe.model_copy(update={
        "name": recipe_name or f"{last.recipe.name}-{name}",
        "description": f"{last.recipe.name} tuned by sweep {name}: {settings}",
        "source": source, "track": last.spec.track, "tuning_budget": budget, "published": None})
    return recipe, best


def export_recipe(name: str, out: str | Path, storage: str | None = None) -> Path:
    """Write the best configuration as a recipe TOML (atomic); returns the path."""
    out = Path(out)
    if out.suffix != ".toml":
        raise OptbenchError(f"--out {out}: a recipe file name ends in .toml")
    recipe, _ = best_recipe(name, storage, recipe_name=out.stem)
    data = recipe.model_dump(mode="json", exclude_none=True)
    text = f"# exported by `optbench sweep export {name}`; run it with `optbench run --recipe {out}`\n" + tomli_w.dumps(data)
    from optbench.optim.recipe import parse_recipe

    parse_recipe(text, str(out))  # what we write must load back
    atomic_write_text(out, text)
    return out
