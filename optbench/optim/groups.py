"""The upstream parameter split: hidden matrices to the optimizer under test; embedding, LM head and
vectors/scalars to an auxiliary AdamW with their own learning rates (track-3 train_gpt_simple.py)."""

from __future__ import annotations

import torch
from torch import nn

from optbench import optim
from optbench.errors import OptbenchError
from optbench.optim.parts.build import attach_parts, chain_kwargs, split_by_name
from optbench.optim.recipe import Recipe


def _construct(name: str, groups: list[dict], hparams: dict, *, fused_ok: bool) -> torch.optim.Optimizer:
    cls = optim.get(name)
    kwargs = dict(hparams)
    if "betas" in kwargs:
        kwargs["betas"] = tuple(kwargs["betas"])
    for k, v in kwargs.items():  # TOML has no dtypes: ns_dtype = "float32" -> torch.float32
        if k.endswith("dtype") and isinstance(v, str):
            dt = getattr(torch, v, None)
            if not isinstance(dt, torch.dtype):
                raise OptbenchError(f"recipe hparams for {name}: {k} = {v!r} is not a torch dtype")
            kwargs[k] = dt
    if fused_ok and optim.info(name).name in ("adamw", "adam"):
        kwargs.setdefault("fused", True)
    try:
        return cls(groups, **kwargs)
    except TypeError as e:
        raise OptbenchError(f"recipe hparams for {name}: {e}") from None
    except ValueError as e:
        raise OptbenchError(f"recipe hparams for {name}: {e}") from None


def with_track_hparams(recipe: Recipe, track) -> Recipe:
    """Fill hparams an optimizer takes from the track (Sophia's batch_size = tokens per step)."""
    import inspect

    params = inspect.signature(optim.get(recipe.optimizer).__init__).parameters
    if "batch_size" in params and "batch_size" not in recipe.hparams:
        return recipe.model_copy(update={"hparams": {**recipe.hparams, "batch_size": track.batch_tokens}})
    return recipe


def build_optimizers(model: nn.Module, recipe: Recipe, *, fused_ok: bool = False) -> list[torch.optim.Optimizer]:
    """Optimizers for a model with `param_roles()`, as the recipe says. Each group gets `initial_lr`."""
    roles = model.param_roles()
    named = dict(model.named_parameters())
    info = optim.info(recipe.optimizer)
    if info.matrix_only and recipe.scope == "all":
        raise OptbenchError(f"recipe {recipe.name}: {info.name} only handles >=2-D matrices; use scope 'matrices'")
    main_lr = recipe.hparams.get("lr")
    hp = {k: v for k, v in recipe.hparams.items() if k != "lr"}
    opts = []
    if recipe.scope == "all":
        groups = [{"params": list(named.values())}]
    else:
        matrices = [n for n in named if roles[n] == "matrix"]
        groups, taken = [], set()
        for ov in recipe.overrides:
            names = [n for n in matrices if ov.match in n and n not in taken]
            if not names:
                raise OptbenchError(f"recipe {recipe.name}: override match {ov.match!r} selects no hidden matrix")
            taken.update(names)
            groups.append({"params": [named[n] for n in names], **ov.hparams})
        rest = [named[n] for n in matrices if n not in taken]
        if rest:
            groups.insert(0, {"params": rest})
        a = recipe.aux
        aux_groups = [
            {"params": [named[n] for n in named if roles[n] == "embed"], "lr": a.embed_lr},
            {"params": [named[n] for n in named if roles[n] == "head"], "lr": a.head_lr},
            {"params": [named[n] for n in named if roles[n] == "scalar"], "lr": a.scalar_lr},
        ]
        aux_groups = split_by_name([g for g in aux_groups if g["params"]], {id(p): n for n, p in named.items()},
                                   a.overrides, f"{recipe.name} [aux]")
        opts.append(_construct(a.optimizer, aux_groups, {**a.hparams, **chain_kwargs(a.optimizer, a.parts, "aux")},
                               fused_ok=fused_ok))
    if main_lr is not None:
        for g in groups:
            g.setdefault("lr", main_lr)
    opts.append(_construct(info.name, groups, {**hp, **chain_kwargs(info.name, recipe.parts, recipe.name)},
                           fused_ok=fused_ok))
    covered = [p for o in opts for g in o.param_groups for p in g["params"]]
    if len(covered) != len(named) or {id(p) for p in covered} != {id(p) for p in named.values()}:
        raise OptbenchError(f"recipe {recipe.name}: optimizer groups do not cover every parameter exactly once")
    for o in opts:
        for g in o.param_groups:
            g["initial_lr"] = g["lr"]
    return attach_parts(opts, recipe, model)  # schedules, outer look-ahead and readout parts (none: opts as is)
