"""A recipe's optimizers for a model: optbench.standalone.groups' parameter split (the submission script's own),
constructed with the recipe's hyperparameters."""

from __future__ import annotations

import inspect

import torch
from torch import nn

from optbench import optim
from optbench.errors import OptbenchError
from optbench.optim.adamw import fused_is_same_update
from optbench.optim.parts.build import attach_parts, chain_kwargs
from optbench.optim.recipe import Recipe
from optbench.standalone.groups import covers_exactly, set_initial_lr, split_by_name, split_params

#: optimizers that get fused=True on CUDA and wherever it is the same update (optim.adamw.fused_is_same_update);
#: the exported script says fused=True (its parameters are float32 off CUDA)
FUSED_ON_CUDA = ("adamw", "adam")


def constructor_kwargs(name: str, hparams: dict) -> dict:
    """Recipe hparams as constructor keywords: betas a tuple, dtype names (TOML has no dtypes) torch dtypes."""
    kwargs = dict(hparams)
    if "betas" in kwargs:
        kwargs["betas"] = tuple(kwargs["betas"])
    for k, v in kwargs.items():  # ns_dtype = "float32" -> torch.float32
        if k.endswith("dtype") and isinstance(v, str):
            dt = getattr(torch, v, None)
            if not isinstance(dt, torch.dtype):
                raise OptbenchError(f"recipe hparams for {name}: {k} = {v!r} is not a torch dtype")
            kwargs[k] = dt
    return kwargs


def _construct(name: str, groups: list[dict], hparams: dict, *, fused_ok: bool) -> torch.optim.Optimizer:
    kwargs = constructor_kwargs(name, hparams)
    if optim.info(name).name in FUSED_ON_CUDA and (fused_ok or fused_is_same_update(groups)):
        kwargs.setdefault("fused", True)
    try:
        return optim.get(name)(groups, **kwargs)
    except (TypeError, ValueError) as e:
        raise OptbenchError(f"recipe hparams for {name}: {e}") from None


def with_track_hparams(recipe: Recipe, track) -> Recipe:
    """Fill hparams an optimizer takes from the track (Sophia's batch_size = tokens per step)."""
    params = inspect.signature(optim.get(recipe.optimizer).__init__).parameters
    if "batch_size" in params and "batch_size" not in recipe.hparams:
        return recipe.model_copy(update={"hparams": {**recipe.hparams, "batch_size": track.batch_tokens}})
    return recipe


def check_scope(recipe: Recipe) -> None:
    """A matrix-only optimizer (Muon, ...) cannot take every parameter."""
    info = optim.info(recipe.optimizer)
    if info.matrix_only and recipe.scope == "all":
        raise OptbenchError(f"recipe {recipe.name}: {info.name} only handles >=2-D matrices; use scope 'matrices'")


def aux_overrides(recipe: Recipe) -> list[tuple[str, dict]]:
    """The recipe's [[aux.overrides]] as (match, hparams) pairs for optbench.standalone.groups.split_by_name."""
    return [(ov.match, dict(ov.hparams)) for ov in recipe.aux.overrides] if recipe.aux is not None else []


def split_kwargs(recipe: Recipe) -> dict:
    """The recipe's keywords for optbench.standalone.groups.split_params."""
    kw = {"scope": recipe.scope, "lr": recipe.hparams.get("lr"),
          "overrides": [(ov.match, dict(ov.hparams)) for ov in recipe.overrides]}
    if recipe.aux is not None and recipe.scope != "all":
        kw.update(embed_lr=recipe.aux.embed_lr, head_lr=recipe.aux.head_lr, scalar_lr=recipe.aux.scalar_lr)
    return kw


def build_optimizers(model: nn.Module, recipe: Recipe, *, fused_ok: bool = False) -> list[torch.optim.Optimizer]:
    """Optimizers for a model with `param_roles()`, as the recipe says: the aux optimizer first (when the scope is
    'matrices'), then the optimizer under test. Each group gets `initial_lr`."""
    check_scope(recipe)
    try:
        aux_groups, groups = split_params(model, **split_kwargs(recipe))
    except ValueError as e:
        raise OptbenchError(f"recipe {recipe.name}: {e}") from None
    opts = []
    if recipe.scope != "all":
        try:
            aux_groups = split_by_name(aux_groups, model, aux_overrides(recipe))
        except ValueError as e:
            raise OptbenchError(f"recipe {recipe.name} [aux]: {e}") from None
        opts.append(_construct(recipe.aux.optimizer, aux_groups,
                               {**recipe.aux.hparams, **chain_kwargs(recipe.aux.optimizer, recipe.aux.parts, "aux")},
                               fused_ok=fused_ok))
    hparams = {k: v for k, v in recipe.hparams.items() if k != "lr"}
    opts.append(_construct(optim.info(recipe.optimizer).name, groups,
                           {**hparams, **chain_kwargs(recipe.optimizer, recipe.parts, recipe.name)}, fused_ok=fused_ok))
    if not covers_exactly(opts, model):
        raise OptbenchError(f"recipe {recipe.name}: optimizer groups do not cover every parameter exactly once")
    set_initial_lr(opts)
    return attach_parts(opts, recipe, model)  # schedules, outer look-ahead and readout parts (none: opts as is)
