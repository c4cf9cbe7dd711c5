"""Recipe and track values as Python source for the exported script: literals, the optimizer construction lines
and the test-only switch's CPU tracks. Only data is rendered here; the code around it is the template's and
optbench.standalone's."""

from __future__ import annotations

import ast
import dataclasses

import torch

from optbench.errors import OptbenchError
from optbench.optim.groups import FUSED_ON_CUDA, constructor_kwargs, split_kwargs
from optbench.optim.recipe import Recipe
from optbench.tracks import Track

LINE_WIDTH = 116


def py(value) -> str:
    """A Python literal for a recipe value (TOML data: numbers, strings, bools, lists, tables; torch dtypes)."""
    if isinstance(value, torch.dtype):
        return str(value)  # torch.float32
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        inner = ", ".join(py(v) for v in value)
        if isinstance(value, list):
            return f"[{inner}]"
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, dict):
        if all(isinstance(k, str) and k.isidentifier() for k in value):
            return "dict(" + ", ".join(f"{k}={py(v)}" for k, v in value.items()) + ")"
        return "{" + ", ".join(f"{k!r}: {py(v)}" for k, v in value.items()) + "}"
    r = repr(value)
    try:
        ast.literal_eval(r)
    except (ValueError, SyntaxError):
        raise OptbenchError(f"export: recipe value {value!r} has no Python literal form") from None
    return r


def call(head: str, args: list[str], indent: str) -> str:
    """`indent + head(args)` as one line, or wrapped at argument boundaries under the opening parenthesis."""
    lines, cont = [indent + head + "("], " " * (len(indent) + len(head) + 1)
    for i, a in enumerate(args):
        piece = a + (", " if i < len(args) - 1 else ")")
        if len(lines[-1]) + len(piece.rstrip()) > LINE_WIDTH and lines[-1].strip() and not lines[-1].endswith("("):
            lines[-1] = lines[-1].rstrip()
            lines.append(cont)
        lines[-1] += piece
    if not args:
        lines[-1] += ")"
    return "\n".join(lines) + "\n"


def constructor_args(name: str, hparams: dict) -> list[str]:
    """Constructor keywords exactly as optbench.optim.groups builds them (fused AdamW/Adam)."""
    kw = constructor_kwargs(name, hparams)
    args = [f"{k}={py(v)}" for k, v in kw.items()]
    if name in FUSED_ON_CUDA and "fused" not in kw:
        args.append("fused=True")  # as upstream; and build_optimizers' choice for the script's float32 params off CUDA
    return args


def optimizer_lines(recipe: Recipe, main: tuple[str, str], aux: tuple[str, str] | None, indent: str = "    ") -> str:
    """The split_params call with the recipe's groups, then one constructor line per optimizer (aux first, as
    build_optimizers); `main` / `aux` are (registry name, class name in the script)."""
    split = split_kwargs(recipe)
    args = ["model"]
    if split["scope"] != "matrices":
        args.append(f"scope={py(split['scope'])}")
    if split["lr"] is not None:
        args.append(f"lr={py(split['lr'])}")
    if split["overrides"] and split["scope"] == "matrices":
        args.append(f"overrides={py(split['overrides'])}")
    if "embed_lr" in split:  # one unit: the three aux learning rates stay on one line
        args.append(", ".join(f"{k}={py(split[k])}" for k in ("embed_lr", "head_lr", "scalar_lr")))
    out = call("aux_groups, groups = split_params", args, indent)
    names = []
    if aux is not None:
        from optbench.optim.groups import aux_overrides

        if recipe.aux.overrides:  # per-family aux hyperparameters (the record's per-bias beta2)
            out += call("aux_groups = split_by_name", ["aux_groups", "model", py(aux_overrides(recipe))], indent)
        pre, arg = _parts_arg(aux[0], recipe.aux.parts, "aux_parts", indent)
        out += pre + call(f"optimizer1 = {aux[1]}", ["aux_groups"] + arg + constructor_args(aux[0], recipe.aux.hparams),
                          indent)
        names.append("optimizer1")
    hparams = {k: v for k, v in recipe.hparams.items() if k != "lr"}
    pre, arg = _parts_arg(main[0], recipe.parts, "matrix_parts", indent)
    out += pre + call(f"optimizer2 = {main[1]}", ["groups"] + arg + constructor_args(main[0], hparams), indent)
    names.append("optimizer2")
    return out + f"{indent}optimizers = [{', '.join(names)}]\n"


def _parts_arg(name: str, spec: dict, var: str, indent: str) -> tuple[str, list[str]]:
    """For a Chain: the lines that build its part list (optbench.optim.parts) into `var`, and [var] as its second
    argument; nothing for other optimizers."""
    if name != "chain":
        return "", []
    from optbench.submission.parts_source import part_calls

    lines = [f"{indent}{var} = ["] + [f"{indent}    {c}," for c in part_calls(spec)] + [f"{indent}]"]
    return "\n".join(lines) + "\n", [var]


def config_args(config) -> str:
    """A model config dataclass as keyword arguments."""
    return ", ".join(f"{f.name}={py(getattr(config, f.name))}" for f in dataclasses.fields(config))


def test_track_entries(tracks: list[Track], indent: str = "        ") -> str:
    """The test-only switch's table: each CPU track's fixed fields, as dict entries."""
    out = []
    for t in tracks:
        out.append(f"{indent}{t.name!r}: dict(config=GPTConfig({config_args(t.model_config)}),\n"
                   f"{indent}             batch_tokens={t.batch_tokens}, seq_len={t.seq_len}, "
                   f"mbs={t.micro_batch_rows}, val_tokens={t.val_tokens},\n"
                   f"{indent}             eval_every={t.eval_every}, eval_every_late={t.eval_every_late}, "
                   f"late_frac={t.late_frac!r}),")
    return "\n".join(out)


def schedule_note(recipe: Recipe) -> str:
    warm = f"linear warmup over {recipe.warmup_steps} steps, " if recipe.warmup_steps else ""
    return f"{warm}stable, then linear cooldown over the last {recipe.cooldown_frac:g} of the run"
