"""The upstream parameter split: hidden matrices to the optimizer under test (with optional per-name override
groups); embedding, LM head and vectors/scalars to an auxiliary optimizer, each with its own learning rate."""

from __future__ import annotations


def split_params(model, *, scope: str = "matrices", lr: float | None = None, overrides=(),
                 embed_lr: float | None = None, head_lr: float | None = None, scalar_lr: float | None = None):
    """(aux groups, main groups) for a model with `param_roles()` (embed | head | scalar | matrix).

    scope "all": every parameter in one main group and no aux groups. scope "matrices": the main groups are the
    remaining hidden matrices, then one group per (match, hparams) override (matrices whose name contains match,
    not taken by an earlier override); the aux groups are embed, head and scalars with their lrs (empty ones
    left out). Main groups without an lr get `lr`."""
    named = dict(model.named_parameters())
    if scope == "all":
        groups, aux = [{"params": list(named.values())}], []
    else:
        roles = model.param_roles()
        matrices = [n for n in named if roles[n] == "matrix"]
        groups, taken = [], set()
        for match, hparams in overrides:
            names = [n for n in matrices if match in n and n not in taken]
            if not names:
                raise ValueError(f"override match {match!r} selects no hidden matrix")
            taken.update(names)
            groups.append({"params": [named[n] for n in names], **hparams})
        rest = [named[n] for n in matrices if n not in taken]
        if rest:
            groups.insert(0, {"params": rest})
        aux = [{"params": [named[n] for n in named if roles[n] == role], "lr": role_lr}
               for role, role_lr in (("embed", embed_lr), ("head", head_lr), ("scalar", scalar_lr))]
        aux = [g for g in aux if g["params"]]
    if lr is not None:
        for g in groups:
            g.setdefault("lr", lr)
    return aux, groups


def split_by_name(groups: list[dict], model, overrides=()) -> list[dict]:
    """Split groups by (match, hparams) overrides on parameter names (first match wins), in place: each group
    becomes its overrides' subgroups (in override order, keeping the group's lr and other entries, plus the
    override's hparams) followed by its unmatched rest. The aux groups' per-family hyperparameters (the record's
    per-bias beta2). ValueError for an override that selects no parameter."""
    if not overrides:
        return groups
    names = {id(p): n for n, p in model.named_parameters()}
    taken: set[int] = set()
    hits = [False] * len(overrides)
    out = []
    for g in groups:
        base = {k: v for k, v in g.items() if k != "params"}
        for i, (match, hparams) in enumerate(overrides):
            sel = [p for p in g["params"] if match in names[id(p)] and id(p) not in taken]
            if sel:
                hits[i] = True
                taken.update(id(p) for p in sel)
                out.append({**base, **hparams, "params": sel})
        rest = [p for p in g["params"] if id(p) not in taken]
        if rest:
            out.append({**base, "params": rest})
    for (match, _), hit in zip(overrides, hits):
        if not hit:
            raise ValueError(f"override match {match!r} selects no parameter")
    return out


def covers_exactly(optimizers, model) -> bool:
    """Whether the optimizers' groups hold every parameter of the model exactly once."""
    covered = [p for opt in optimizers for group in opt.param_groups for p in group["params"]]
    params = list(model.parameters())
    return len(covered) == len(params) and {id(p) for p in covered} == {id(p) for p in params}


def set_initial_lr(optimizers) -> None:
    """Remember every group's lr as its initial_lr (the schedule scales from it)."""
    for opt in optimizers:
        for group in opt.param_groups:
            group["initial_lr"] = group["lr"]
