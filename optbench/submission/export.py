"""`optbench export`: one self-contained train_gpt_simple.py in the upstream layout for a recipe and a track.

The script is templates/train_gpt_simple.py.template (the docstring, upstream's section banners and the glue
between the functions) filled with module sources, inlined verbatim, and hard-coded values:

- Dataloader: optbench/standalone/data.py
- Architecture: optbench/model/gpt.py (without its init functions)
- Optimizer: the zoo module(s) of the recipe's optimizers and the modules of the parts it uses
  (optbench/optim/parts), plus the helper modules they import, dependency order, ``from optbench...`` imports and
  ``register(...)`` calls removed
- Setup: optbench/standalone/logformat.py, then the track's fixed fields and the test-only switch
- Init & Optim Hyperparams: the recipe's init function (gpt.py), optbench/standalone/groups.py and schedule.py,
  then train_steps, the init parts, the optimizer construction lines, the global parts (schedules, look-ahead,
  readout) and the schedule's settings
- Training and Validation: optbench/standalone/training.py, then the step loop

The loop (optbench.train) calls the same functions in the same order, so on one CPU process the script and
`optbench run` give the same val losses. The script imports only torch, numpy and the standard library and
writes the upstream log (its own source, 100 '=', the version line, 100 '=', one eval line per evaluation) to
logs/<uuid>.txt on rank 0.

Test-only switch: a block between TEST_BEGIN and TEST_END markers, guarded by ``OPTBENCH_TEST_TRACK``, that swaps
in a CPU track (nano or cpu) and reads OPTBENCH_TEST_DATA / OPTBENCH_TEST_STEPS. It is not part of the official
path; `optbench check` allows exactly this block and nothing else from the environment (besides torchrun's RANK,
WORLD_SIZE, LOCAL_RANK).
"""

from __future__ import annotations

import ast
import importlib
import os
import re
from importlib.resources import files
from pathlib import Path
from string import Template

from optbench.errors import OptbenchError
from optbench.optim.groups import check_scope, with_track_hparams
from optbench.optim.recipe import Recipe, load_recipe
from optbench.submission import parts_source, render
from optbench.submission.inline import (Inlined, bound_names, check_collisions, inline_function, inline_module,
                                       merged_imports, module_closure)
from optbench.tracks import GPT_INIT_FUNCTIONS, Track, get_track

TEST_BEGIN = "# >>> optbench test-only switch: NOT part of the official path (CPU tests of this script) >>>"
TEST_END = "# <<< optbench test-only switch <<<"
TEST_ENV_TRACK = "OPTBENCH_TEST_TRACK"
TEST_ENV_DATA = "OPTBENCH_TEST_DATA"
TEST_ENV_STEPS = "OPTBENCH_TEST_STEPS"
TEST_TRACKS = ("nano", "cpu")  # CPU tracks the switch can swap in
#: torchrun's variables: the only environment the official path may read
TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
TEST_VAL_PREFIX = "test_val_loss:"  # console line (test mode only) with the full-precision val loss

TEMPLATE = "train_gpt_simple.py.template"
IN_TRIAL = "    "  # the last two sections are inside `for trial in range(num_trials):`
#: the import-free modules of each section, in order (the init function and the optimizers are the recipe's)
SECTION_MODULES = {
    "dataloader": ("optbench.standalone.data",),
    "setup": ("optbench.standalone.logformat",),
    "init_modules": ("optbench.standalone.groups", "optbench.standalone.schedule"),
    "training_modules": ("optbench.standalone.training",),
}
_GPT = "optbench.model.gpt"


def template_text() -> str:
    """The script's fixed text (package data), with ${name} placeholders."""
    return files("optbench.submission").joinpath("templates", TEMPLATE).read_text()


def template_names(text: str) -> set[str]:
    """Names the template's own code binds (blocks left empty, values as 0): inlined code must not define them."""
    blocks = set(re.findall(r"^\$\{(\w+)\}$", text, flags=re.M))
    values = {n: "" if n in blocks else "0" for n in re.findall(r"\$\{(\w+)\}", text)}
    tree = ast.parse(Template(text).substitute(values))
    return {n for node in tree.body for n in bound_names(node)}


def optimizer_binding(info) -> tuple[str | None, str]:
    """(module to inline, the class's name in the script) for a registered optimizer, found from the class itself:
    torch's own classes are not inlined but named by their public path (torch.optim.AdamW); any other class is
    inlined with its module and named as it is there."""
    cls, modname = info.cls, info.cls.__module__
    if modname.split(".")[0] == "torch":
        parts = modname.split(".")
        for i in range(1, len(parts) + 1):
            public = ".".join(parts[:i])
            if getattr(importlib.import_module(public), cls.__name__, None) is cls:
                return None, f"{public}.{cls.__name__}"
    mod = importlib.import_module(modname)
    if getattr(mod, cls.__name__, None) is cls:
        return modname, cls.__name__
    for k, v in vars(mod).items():
        if v is cls and not k.startswith("_"):
            return modname, k
    raise OptbenchError(f"export: optimizer {info.name}: class {cls.__name__} is not a top-level name of {modname}")


def export_script(recipe: Recipe, track: Track | str = "small", *, recipe_origin: str | None = None) -> str:
    """The text of a self-contained train_gpt_simple.py for `recipe` on `track`."""
    import optbench
    from optbench import optim

    track = get_track(track) if isinstance(track, str) else track
    if track.model != "gpt":
        raise OptbenchError(f"--track: export supports the track-3 GPT tracks (small, cpu, nano); "
                            f"{track.name} uses the {track.model} model")
    if track.unofficial:
        raise OptbenchError("--track: an unofficial (overridden) track cannot be exported as a submission")
    if recipe.lr_floor or recipe.momentum_warmup is not None:
        raise OptbenchError(f"recipe {recipe.name}: lr_floor and momentum_warmup are not exportable yet "
                            f"(the exported script's schedule decays to 0 and keeps momentum fixed)")
    recipe = with_track_hparams(recipe, track)
    check_scope(recipe)
    init_fn = GPT_INIT_FUNCTIONS.get(recipe.init)
    if init_fn is None:
        raise OptbenchError(f"recipe {recipe.name}: init scheme {recipe.init!r} has no exportable init function")

    main_info = optim.info(recipe.optimizer)
    aux_info = optim.info(recipe.aux.optimizer) if recipe.aux is not None else None
    main_mod, main_cls = optimizer_binding(main_info)
    aux_mod, aux_cls = optimizer_binding(aux_info) if aux_info is not None else (None, None)
    opt_mods = module_closure([m for m in (aux_mod, main_mod) if m is not None] + parts_source.modules(recipe))
    gpt = inline_module(_GPT, drop=tuple(GPT_INIT_FUNCTIONS.values()) + ("count_params",))
    sections = {key: [inline_module(m) for m in mods] for key, mods in SECTION_MODULES.items()}
    sections["init_modules"].insert(0, inline_function(_GPT, init_fn))

    text = template_text()
    everything = [gpt] + opt_mods + [m for mods in sections.values() for m in mods]
    check_collisions(everything, template_names(text))

    def blocks(mods: list[Inlined], indent: str = "") -> str:
        return "\n\n".join(m.block(indent).rstrip("\n") for m in mods)

    T = recipe.train_steps or track.train_steps
    if track.data == "fineweb":
        data_dir, data_note = "data/fineweb10B", "python data/cached_fineweb10B.py 20 (or optbench data fineweb)"
    else:
        data_dir = f"data/{track.data}-v{track.vocab_size}"
        data_note = f"the bundled corpus: link the folder `optbench data default --track {track.name}` prints"
    values = dict(
        version=optbench.__version__, recipe_name=recipe.name,
        recipe_description=f" ({recipe.description})" if recipe.description else "",
        recipe_source=recipe.source or "n/a", track_name=track.name, track_description=track.description,
        imports=merged_imports(everything, text),
        dataloader=blocks(sections["dataloader"]), architecture=gpt.block().rstrip("\n"),
        optimizer=blocks(opt_mods) or f"# (torch's own: {', '.join(sorted({main_cls, aux_cls} - {None}))})", setup=blocks(sections["setup"]),
        track_literal=repr(track.name), model_config=render.config_args(track.model_config),
        batch_tokens=track.batch_tokens, seq_len=track.seq_len, mbs=track.micro_batch_rows,
        val_tokens=track.val_tokens, eval_every=track.eval_every, eval_every_late=track.eval_every_late,
        late_frac=repr(track.late_frac), data_dir=repr(data_dir), data_note=data_note,
        test_begin=TEST_BEGIN, test_end=TEST_END, test_env_track=TEST_ENV_TRACK, test_env_data=TEST_ENV_DATA,
        test_env_steps=TEST_ENV_STEPS, test_tracks=render.test_track_entries([get_track(n) for n in TEST_TRACKS]),
        init_modules=blocks(sections["init_modules"], IN_TRIAL), train_steps=T, init_function=init_fn,
        init_parts=parts_source.init_lines(recipe, IN_TRIAL).rstrip("\n"),
        global_parts=parts_source.global_lines(recipe, track, IN_TRIAL).rstrip("\n"),
        init_scheme=repr(recipe.init),
        optimizers=render.optimizer_lines(recipe, (main_info.name, main_cls),
                                          (aux_info.name, aux_cls) if aux_info else None, IN_TRIAL).rstrip("\n"),
        schedule_note=render.schedule_note(recipe), cooldown_frac=repr(recipe.cooldown_frac),
        warmup_steps=recipe.warmup_steps, training_modules=blocks(sections["training_modules"], IN_TRIAL),
        test_val_prefix=TEST_VAL_PREFIX, loss_reduction=repr(track.loss_reduction),
    )
    script = Template(text).substitute(values)
    try:
        ast.parse(script)
    except SyntaxError as e:  # a bug in the exporter or the template, not a user error
        raise RuntimeError(f"exported script does not parse: {e}") from e
    return script


def export_recipe(recipe_name: str, track: str = "small", out: str | os.PathLike | None = None, *,
                  force: bool = False, train_steps: int | None = None) -> str:
    """Export a bundled recipe (or a .toml path); write it to `out` when given (never over an existing file
    unless force). Returns the script text."""
    from optbench.fsutil import atomic_write_text

    recipe = load_recipe(recipe_name)
    if train_steps is not None:
        recipe = recipe.model_copy(update={"train_steps": train_steps})
    text = export_script(recipe, track)
    if out is not None:
        p = Path(out)
        if p.exists() and not force:
            raise OptbenchError(f"--out: {p} exists; choose a new file name (or pass --force to replace it)")
        atomic_write_text(p, text)
    return text


__all__ = ["export_script", "export_recipe", "template_text", "SECTION_MODULES", "TEST_BEGIN", "TEST_END",
           "TEST_ENV_TRACK", "TEST_ENV_DATA", "TEST_ENV_STEPS", "TORCHRUN_ENV", "TEST_VAL_PREFIX"]
