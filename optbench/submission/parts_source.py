"""A recipe's parts as Python source for the exported script: the part modules to inline (only the ones the recipe
uses), the Chain's part list, the init-part lines and the lines that add the global parts (per-group schedules,
the EMA-Nesterov look-ahead, the tail-EMA readout) to the optimizers, as optbench.optim.groups.build_optimizers
does. Only data is rendered; the parts' code is inlined verbatim from optbench/optim/parts."""

from __future__ import annotations

import torch

from optbench.optim.parts import catalog
from optbench.optim.parts.build import part_modules
from optbench.optim.parts.ema_nesterov import EMANesterov
from optbench.optim.parts.tail_ema import TailEMA
from optbench.submission.render import call, py


def modules(recipe) -> list[str]:
    """The modules to inline for the recipe's parts (their helpers come with them through module_closure)."""
    return part_modules(recipe)


def _call(part) -> str:
    """A part as its constructor call with its knob values."""
    return f"{type(part).__name__}(" + ", ".join(f"{k}={py(v)}" for k, v in part.values.items()) + ")"


def part_calls(spec: dict) -> list[str]:
    """The Chain's parts, in canonical order, as constructor calls with every knob."""
    return [_call(p) for p in catalog.chain_parts(spec)]


def init_lines(recipe, indent: str) -> str:
    """One line per init part, run on the model right after the track's init."""
    return "".join(f"{indent}{_call(p)}.init_model(model)\n"
                   for p in catalog.global_parts(recipe.parts) if p.stage == "init")


def global_lines(recipe, track, indent: str) -> str:
    """The schedule objects per optimizer and group, then the outer and readout optimizers appended, exactly as
    build_optimizers attaches them (found by building the recipe's optimizers on a meta-device model)."""
    from optbench.optim.groups import build_optimizers

    if not any(p.stage in ("schedule", "outer", "readout") for p in catalog.global_parts(recipe.parts)):
        return ""
    with torch.device("meta"):
        model = track.build_model()
    opts = build_optimizers(model, recipe)
    out = []
    for k, opt in enumerate(opts):
        sched = getattr(opt, "part_schedules", None)
        if sched:  # group index -> the schedules that set its values every step
            out.append(f"{indent}optimizers[{k}].part_schedules = {{\n")
            out += [f"{indent}    {i}: [{', '.join(repr(s) for s in ss)}],\n" for i, ss in sorted(sched.items())]
            out.append(f"{indent}}}\n")
    for opt in opts:
        g = opt.param_groups[0] if isinstance(opt, (EMANesterov, TailEMA)) else None
        if isinstance(opt, EMANesterov):
            kw = [f"{n}={py(g[n])}" for n in ("lookahead", "ema", "start", "stop", "scheduled")]
            out.append(call("optimizers.append(EMANesterov", ["list(model.parameters())", "optimizers[0]"] + kw,
                            indent).rstrip("\n") + ")\n")
        elif isinstance(opt, TailEMA):
            kw = [f"{n}={py(g[n])}" for n in ("start", "stop", "tau", "blend", "eval_from")]
            keep = len(g["params"]) != len(list(model.parameters()))
            params = ("[p for n, p in model.named_parameters() if n not in model.param_roles() or "
                      "model.param_roles()[n] != \"embed\"]" if keep else "list(model.parameters())")
            if keep:
                params = "[p for n, p in model.named_parameters() if roles[n] != \"embed\"]"
                out.append(f"{indent}roles = model.param_roles()  # the readout leaves the token embedding out\n")
            out.append(call("optimizers.append(TailEMA", [params] + kw, indent).rstrip("\n") + ")\n")
    return "".join(out)
