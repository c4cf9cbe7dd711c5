"""A recipe's parts -> optimizers for a model: the Chain's part instances, aux subgroups by name, then the global
parts (per-group schedules, the EMA-Nesterov outer loop, the tail-EMA readout) on top of the built optimizers;
and the init parts, run on the model before optimizers are built (``apply_init_parts``).

Called by ``optbench.optim.groups.build_optimizers``; the loop drives the result through
``optbench.optim.protocol`` (``apply_schedules``, ``before_forward``, ``set_eval_mode``/``set_train_mode``).
"""

from __future__ import annotations

import torch
from torch import nn

from optbench.errors import OptbenchError
from optbench.optim.parts import catalog
from optbench.optim.parts.ema_nesterov import EMANesterovPart
from optbench.optim.parts.tail_ema import TailEMAPart


def chain_kwargs(optimizer: str, parts: dict, where: str) -> dict:
    """``{"parts": [Part, ...]}`` for the "chain" optimizer, else ``{}``."""
    if optimizer.lower() != "chain":
        return {}
    try:
        return {"parts": catalog.chain_parts(parts)}
    except ValueError as e:
        raise OptbenchError(f"recipe {where}: {e}") from None


def _group_role(group: dict, role_of: dict[int, str], main: bool) -> str:
    return "matrix" if main else role_of[id(group["params"][0])]


def attach_parts(optimizers: list[torch.optim.Optimizer], recipe, model: nn.Module) -> list[torch.optim.Optimizer]:
    """Add the recipe's global parts to optimizers built by build_optimizers (the last one is the main optimizer).

    Schedules go to ``opt.part_schedules`` ({group index: [schedule, ...]}, read by protocol.apply_schedules);
    the outer and readout parts are appended as optimizers (the loop steps them after the others, in this order).
    """
    try:
        parts = catalog.global_parts(recipe.parts)
    except ValueError as e:
        raise OptbenchError(f"recipe {recipe.name}: {e}") from None
    parts = [p for p in parts if p.stage != "init"]
    if not parts:
        return optimizers
    lr_scheds = [p.name for p in parts if p.name in ("powercool", "split_cooldown")]
    if len(lr_scheds) > 1:
        raise OptbenchError(f"recipe {recipe.name}: parts {' and '.join(lr_scheds)} both set the learning rate; "
                            f"keep one")
    named = dict(model.named_parameters())
    roles = model.param_roles()
    role_of = {id(p): roles[n] for n, p in named.items()}
    out = list(optimizers)
    for k, opt in enumerate(optimizers):
        sched: dict[int, list] = {}
        for i, g in enumerate(opt.param_groups):
            role = _group_role(g, role_of, main=k == len(optimizers) - 1)
            try:
                found = [s for p in parts if p.stage == "schedule" for s in p.for_role(role)]
            except ValueError as e:
                raise OptbenchError(f"recipe {recipe.name}: {e}") from None
            if found:
                sched[i] = found
        if sched:
            opt.part_schedules = sched
    for p in parts:
        try:
            if isinstance(p, EMANesterovPart):
                out.append(p.build(list(named.values()), follow=optimizers[0]))
            elif isinstance(p, TailEMAPart):
                keep = [q for n, q in named.items() if not (p.values["exclude_embed"] and roles[n] == "embed")]
                out.append(p.build(keep))
        except ValueError as e:
            raise OptbenchError(f"recipe {recipe.name}: {e}") from None
    return out


def apply_init_parts(model: nn.Module, recipe) -> None:
    """Run the recipe's init parts on a freshly initialised model (after the track's init, before optimizers)."""
    try:
        for p in catalog.global_parts(recipe.parts):
            if p.stage == "init":
                p.init_model(model)
    except (ValueError, AttributeError, KeyError) as e:
        raise OptbenchError(f"recipe {recipe.name}: init part: {e}") from None


def part_modules(recipe) -> list[str]:
    """Module names of every part the recipe uses (for the run log's code section)."""
    names = list(recipe.parts) + (list(recipe.aux.parts) if recipe.aux is not None else [])
    return sorted({catalog.info(n).module for n in names})
