"""`optbench export`: one self-contained train_gpt_simple.py in the upstream layout for a recipe and a track.

The script has the upstream sections (imports; Dataloader; Architecture; Optimizer; Setup; Init & Optim
Hyperparams; Training and Validation), imports only torch, numpy and the standard library, and writes the
upstream log (its own source, a line of 100 '=', the version line, 100 '=', one eval line per evaluation) to
logs/<uuid>.txt on rank 0. Every value is hard-coded: the track's fixed fields, train_steps, every lr / beta /
weight decay, the parameter split and the schedule.

Sources are inlined, never retyped: the Architecture section is optbench/model/gpt.py, the Optimizer section the
zoo module(s) of the recipe's optimizers (plus the zoo helper modules they import, in dependency order) with the
``from optbench...`` imports and ``register(...)`` calls removed, the init is gpt.init_weights and the schedule
tracks.lr_multiplier. The training loop follows optbench/train/loop.py operation for operation (seed, build, init,
optimizer construction order, microbatch accumulation, schedule, eval cadence), so on one CPU process the script
and `optbench run` give the same val losses.

Test-only switch: a block between TEST_BEGIN and TEST_END markers, guarded by ``OPTBENCH_TEST_TRACK``, that swaps
in a CPU track (nano or cpu) and reads OPTBENCH_TEST_DATA / OPTBENCH_TEST_STEPS. It is not part of the official
path; `optbench check` allows exactly this block and nothing else from the environment (besides torchrun's RANK,
WORLD_SIZE, LOCAL_RANK).
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import os
import textwrap
from pathlib import Path

import torch

from optbench.errors import OptbenchError
from optbench.optim.groups import with_track_hparams
from optbench.optim.recipe import Recipe, load_recipe
from optbench.tracks import Track, get_track, lr_multiplier

TEST_BEGIN = "# >>> optbench test-only switch: NOT part of the official path (CPU tests of this script) >>>"
TEST_END = "# <<< optbench test-only switch <<<"
TEST_ENV_TRACK = "OPTBENCH_TEST_TRACK"
TEST_ENV_DATA = "OPTBENCH_TEST_DATA"
TEST_ENV_STEPS = "OPTBENCH_TEST_STEPS"
TEST_TRACKS = ("nano", "cpu")  # CPU tracks the switch can swap in
#: torchrun's variables: the only environment the official path may read
TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
TEST_VAL_PREFIX = "test_val_loss:"  # console line (test mode only) with the full-precision val loss

_STRIPPED_MODULES = ("optbench.optim.registry",)  # imported only for register(); dropped with the calls


def _section(title: str, indent: str = "") -> str:
    bar = "#" * 40
    return f"{indent}{bar}\n{indent}#{title.center(38)}#\n{indent}{bar}\n"


# ----------------------------------------------------------------------------- inlining module sources


@dataclasses.dataclass
class _Inlined:
    name: str  # module name
    body: str  # source without imports / register calls / __all__
    imports: list[str]  # non-optbench import statements (source text), in order
    deps: list[str]  # optbench modules it imports from
    aliases: list[str]  # "local = imported" lines for `from optbench.x import a as local`
    defined: set[str]


def _is_optbench(mod: str | None) -> bool:
    return bool(mod) and (mod == "optbench" or mod.startswith("optbench."))


def _inline_module(modname: str, drop: tuple[str, ...] = ()) -> _Inlined:
    """A module's source split into its imports and its body (optbench imports, register() calls, __all__ and
    the top-level definitions named in `drop` removed)."""
    mod = importlib.import_module(modname)
    src = inspect.getsource(mod)
    tree = ast.parse(src)
    lines = src.splitlines()
    remove: list[tuple[int, int]] = []
    imports, deps, aliases, defined = [], [], [], set()
    for node in tree.body:
        span = (node.lineno, node.end_lineno)
        if isinstance(node, ast.Import):
            if any(_is_optbench(a.name) for a in node.names):
                raise OptbenchError(f"export: {modname}: `import optbench...` is not supported for inlining; "
                                    f"use `from optbench.x import name`")
            imports.append(ast.get_source_segment(src, node))
            remove.append(span)
        elif isinstance(node, ast.ImportFrom):
            if node.module == "__future__":
                remove.append(span)
            elif node.level:
                raise OptbenchError(f"export: {modname}: relative imports are not supported for inlining")
            elif _is_optbench(node.module):
                if node.module not in _STRIPPED_MODULES:
                    deps.append(node.module)
                    for a in node.names:
                        if a.asname and a.asname != a.name:
                            aliases.append(f"{a.asname} = {a.name}")
                remove.append(span)
            else:
                imports.append(ast.get_source_segment(src, node))
                remove.append(span)
        elif (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
              and isinstance(node.value.func, ast.Name) and node.value.func.id == "register"):
            remove.append(span)
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__"
                                                  for t in node.targets):
            remove.append(span)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in drop:
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            remove.append((first, node.end_lineno))
        else:
            for t in _bound_names(node):
                defined.add(t)
    keep = [True] * len(lines)
    for a, b in remove:
        for i in range(a - 1, b):
            keep[i] = False
    body = "\n".join(ln for ln, k in zip(lines, keep) if k)
    body = _squeeze_blank(body)
    return _Inlined(modname, body, imports, deps, aliases, defined)


def _bound_names(node: ast.stmt) -> list[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    targets = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        targets = [node.target]
    out = []
    for t in targets:
        for n in ast.walk(t):
            if isinstance(n, ast.Name):
                out.append(n.id)
    return out


def _squeeze_blank(text: str) -> str:
    out, blank = [], 0
    for ln in text.strip("\n").splitlines():
        blank = blank + 1 if not ln.strip() else 0
        if blank <= 2:
            out.append(ln.rstrip())
    return "\n".join(out)


def _module_closure(roots: list[str]) -> list[_Inlined]:
    """The modules to inline for `roots`, dependencies first (depth-first post-order), each once."""
    order: list[_Inlined] = []
    seen: dict[str, str] = {}

    def visit(name: str, stack: tuple[str, ...]) -> None:
        if seen.get(name) == "done":
            return
        if name in stack:
            raise OptbenchError(f"export: circular imports between {' -> '.join(stack + (name,))}")
        m = _inline_module(name)
        for d in m.deps:
            visit(d, stack + (name,))
        seen[name] = "done"
        order.append(m)

    for r in roots:
        visit(r, ())
    return order


def _check_collisions(mods: list[_Inlined], reserved: set[str]) -> None:
    owner: dict[str, str] = {}
    for m in mods:
        for n in m.defined:
            if n in owner and owner[n] != m.name:
                raise OptbenchError(f"export: top-level name {n!r} is defined in both {owner[n]} and {m.name}; "
                                    f"the inlined script would silently use one of them")
            if n in reserved:
                raise OptbenchError(f"export: {m.name} defines {n!r}, a name the script itself uses")
            owner[n] = m.name


# ----------------------------------------------------------------------------- the optimizers of a recipe


def _optimizer_binding(info) -> tuple[str, str]:
    """(module name, attribute name in that module) of a registered optimizer class."""
    modname = f"optbench.optim.{info.family}"
    mod = importlib.import_module(modname)
    for k, v in vars(mod).items():
        if v is info.cls and not k.startswith("_"):
            return modname, k
    raise OptbenchError(f"export: optimizer {info.name}: class not found in {modname}")


def _py(value) -> str:
    """A Python literal for a recipe value (TOML data: numbers, strings, bools, lists, tables)."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_py(v) for v in value)
        return f"({inner},)" if isinstance(value, tuple) and len(value) == 1 else (
            f"({inner})" if isinstance(value, tuple) else f"[{inner}]")
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_py(v)}" for k, v in value.items()) + "}"
    r = repr(value)
    try:
        ast.literal_eval(r)
    except (ValueError, SyntaxError):
        raise OptbenchError(f"export: recipe value {value!r} has no Python literal form") from None
    return r


def _kwargs(hparams: dict, fused: bool) -> list[str]:
    """Constructor keyword arguments exactly as optbench.optim.groups._construct passes them."""
    out = []
    for k, v in hparams.items():
        if k == "betas":
            v = tuple(v)
        if k.endswith("dtype") and isinstance(v, str):  # TOML has no dtypes: "float32" -> torch.float32
            if not isinstance(getattr(torch, v, None), torch.dtype):
                raise OptbenchError(f"export: recipe hparam {k} = {v!r} is not a torch dtype")
            out.append(f"{k}=torch.{v}")
            continue
        out.append(f"{k}={_py(v)}")
    if fused and "fused" not in hparams:
        out.append("fused=on_cuda")
    return out


# ----------------------------------------------------------------------------- the script


def export_script(recipe: Recipe, track: Track | str = "small", *, recipe_origin: str | None = None) -> str:
    """The text of a self-contained train_gpt_simple.py for `recipe` on `track`."""
    from optbench import optim
    import optbench

    track = get_track(track) if isinstance(track, str) else track
    if track.model != "gpt":
        raise OptbenchError(f"--track: export supports the track-3 GPT tracks (small, cpu, nano); "
                            f"{track.name} uses the {track.model} model")
    if track.unofficial:
        raise OptbenchError("--track: an unofficial (overridden) track cannot be exported as a submission")
    if recipe.part_names() or "chain" in (recipe.optimizer, recipe.aux.optimizer if recipe.aux else None):
        raise OptbenchError(f"recipe {recipe.name}: recipes made of parts ({', '.join(recipe.part_names())}) cannot "
                            f"be exported yet; run them with `optbench run`")
    recipe = with_track_hparams(recipe, track)
    main_info = optim.info(recipe.optimizer)
    if main_info.matrix_only and recipe.scope == "all":
        raise OptbenchError(f"recipe {recipe.name}: {main_info.name} only handles >=2-D matrices; use scope 'matrices'")
    aux_info = optim.info(recipe.aux.optimizer) if recipe.aux is not None else None
    main_mod, main_cls = _optimizer_binding(main_info)
    roots = []
    if aux_info is not None:
        aux_mod, aux_cls = _optimizer_binding(aux_info)
        roots.append(aux_mod)
    roots.append(main_mod)
    opt_mods = _module_closure(roots)
    init_fns = {"track3": "init_weights", "torch-default": "init_weights_torch_default"}
    gpt_mod = importlib.import_module("optbench.model.gpt")
    init_fn = init_fns.get(getattr(recipe, "init", "track3"))
    if init_fn is None or not hasattr(gpt_mod, init_fn):
        raise OptbenchError(f"recipe {recipe.name}: init scheme {recipe.init!r} has no exportable init function")
    gpt = _inline_module("optbench.model.gpt",
                         drop=tuple(f for f in init_fns.values() if hasattr(gpt_mod, f)) + ("count_params",))
    reserved = {"model", "optimizers", "step", "device", "train_steps", "code", "print0", "GPT", "GPTConfig",
                "init_weights", "init_weights_torch_default", "set_hparams", "lr_multiplier", "mbs", "batch_tokens", "seq_len", "val_tokens"}
    _check_collisions(opt_mods, reserved | gpt.defined)

    T = recipe.train_steps or track.train_steps
    cuda_fused = {"adamw", "adam"}
    imports: list[str] = []
    for m in [gpt] + opt_mods:
        for s in m.imports:
            if s not in imports:
                imports.append(s)
    for s in ("import numpy as np", "import torch.distributed as dist"):
        if s not in imports:
            imports.append(s)

    cfg_fields = ", ".join(f"{f.name}={_py(getattr(track.model_config, f.name))}"
                           for f in dataclasses.fields(track.model_config))
    test_tracks = {}
    for name in TEST_TRACKS:
        t = get_track(name)
        test_tracks[name] = dict(
            config=", ".join(f"{f.name}={_py(getattr(t.model_config, f.name))}" for f in dataclasses.fields(t.model_config)),
            batch_tokens=t.batch_tokens, seq_len=t.seq_len, mbs=t.micro_batch_rows, val_tokens=t.val_tokens,
            eval_every=t.eval_every, eval_every_late=t.eval_every_late, late_frac=t.late_frac)

    if track.data == "fineweb":
        data_path, data_note = "data/fineweb10B", "  # python data/cached_fineweb10B.py 20 (or optbench data fineweb)"
    else:
        data_path = f"data/{track.data}-v{track.vocab_size}"
        data_note = f"  # the bundled corpus: link the folder `optbench data default --track {track.name}` prints"
    P = []  # script parts
    P.append(f'''"""
train_gpt_simple.py -- exported by optbench {optbench.__version__} (`optbench export --recipe {recipe.name} --track {track.name}`)

Recipe: {recipe.name}{f" ({recipe.description})" if recipe.description else ""}
Source: {recipe.source or "n/a"}
Track:  {track.name}: {track.description}
Run:    torchrun --standalone --nproc_per_node=N train_gpt_simple.py [NUM_TRIALS]

Single file, in the layout of KellerJordan/modded-nanogpt records/track_3_optimization/train_gpt_simple.py:
every hyperparameter is hard-coded in "Init & Optim Hyperparams"; the optimizer code is inlined in "Optimizer".
"""

from __future__ import annotations

import os
import sys
with open(sys.argv[0]) as f:
    code = f.read()  # read the code of this file ASAP, for logging
import platform
import time
import uuid
from pathlib import Path
''')
    P.append("\n".join(imports) + "\n\n")

    # ---------------- Dataloader
    P.append(_section("Dataloader"))
    P.append('''
def _load_data_shard(file: Path) -> torch.Tensor:
    """A .bin shard: 256 int32 header (magic 20240520, version 1, token count), then uint16 tokens."""
    header = np.fromfile(file, dtype="<i4", count=256)
    assert header[0] == 20240520, f"{file}: magic number mismatch in the data .bin file"
    assert header[1] == 1, f"{file}: unsupported version"
    num_tokens = int(header[2])
    assert file.stat().st_size == 256 * 4 + 2 * num_tokens, f"{file}: number of tokens does not match header"
    return torch.from_numpy(np.fromfile(file, dtype="<u2", count=num_tokens, offset=256 * 4).astype(np.uint16))


def distributed_data_generator(files: list[Path], batch_tokens: int, seq_len: int, rank: int, world_size: int):
    """Every step consumes the global window [pos, pos + batch_tokens + 1) of the current shard (the same window
    for any world size); rank r takes its contiguous share. A shard is left when pos + batch_tokens + 1 >= len."""
    assert batch_tokens % world_size == 0 and (batch_tokens // world_size) % seq_len == 0
    local = batch_tokens // world_size
    file_iter = iter(files)
    tokens, pos = _load_data_shard(next(file_iter)), 0
    while True:
        if pos + batch_tokens + 1 >= len(tokens):
            tokens, pos = _load_data_shard(next(file_iter)), 0
        buf = tokens[pos + rank * local:][:local + 1].to(torch.int64)
        pos += batch_tokens
        yield buf[:-1].view(-1, seq_len), buf[1:].view(-1, seq_len)


def load_val(file: Path, val_tokens: int, seq_len: int, rank: int, world_size: int):
    """This rank's share of the first val_tokens tokens of the val shard."""
    tokens = _load_data_shard(file)
    assert len(tokens) >= val_tokens + 1, f"{file}: val shard too short"
    local = val_tokens // world_size
    buf = tokens[rank * local:][:local + 1].to(torch.int64)
    return buf[:-1].view(-1, seq_len), buf[1:].view(-1, seq_len)


''')
    # ---------------- Architecture
    P.append(_section("Architecture"))
    P.append("\n# (optbench/model/gpt.py)\n" + gpt.body + "\n\n\n")

    # ---------------- Optimizer
    P.append(_section("Optimizer"))
    for m in opt_mods:
        rel = m.name.replace(".", "/") + ".py"
        P.append(f"\n# ---- inlined from {rel} ----\n" + m.body + "\n")
        if m.aliases:
            P.append("\n".join(m.aliases) + "\n")
    P.append("\n\n")

    # ---------------- Setup
    tt = "\n".join(
        f"        {name!r}: dict(config=GPTConfig({v['config']}),\n"
        f"                     batch_tokens={v['batch_tokens']}, seq_len={v['seq_len']}, mbs={v['mbs']}, "
        f"val_tokens={v['val_tokens']},\n"
        f"                     eval_every={v['eval_every']}, eval_every_late={v['eval_every_late']}, "
        f"late_frac={v['late_frac']!r}),"
        for name, v in test_tracks.items())
    P.append(_section("Setup"))
    P.append(f'''
TRACK = {track.name!r}  # optbench track whose fixed fields follow (the rules checker reads this)

# torchrun sets these env variables; a plain `python train_gpt_simple.py` runs as one process
rank = int(os.environ.get("RANK", "0"))
world_size = int(os.environ.get("WORLD_SIZE", "1"))
local_rank = int(os.environ.get("LOCAL_RANK", "0"))

# fixed benchmark fields of track {track.name!r} (the official path)
model_config = GPTConfig({cfg_fields})
batch_tokens = {track.batch_tokens}  # tokens per optimizer step, across all ranks
seq_len = {track.seq_len}
mbs = {track.micro_batch_rows}  # rows per forward-backward (microbatch) on one rank
val_tokens = {track.val_tokens}
eval_every, eval_every_late, late_frac = {track.eval_every}, {track.eval_every_late}, {track.late_frac!r}
data_dir = Path({data_path!r}){data_note}
on_cuda = True
test_mode = False
test_train_steps = None

{TEST_BEGIN}
if os.environ.get("{TEST_ENV_TRACK}"):
    _test_tracks = {{
{tt}
    }}
    _t = _test_tracks[os.environ["{TEST_ENV_TRACK}"]]
    model_config, batch_tokens, seq_len, mbs, val_tokens = (_t["config"], _t["batch_tokens"], _t["seq_len"],
                                                             _t["mbs"], _t["val_tokens"])
    eval_every, eval_every_late, late_frac = _t["eval_every"], _t["eval_every_late"], _t["late_frac"]
    data_dir = Path(os.environ["{TEST_ENV_DATA}"])
    test_train_steps = int(os.environ.get("{TEST_ENV_STEPS}", "0")) or None
    on_cuda = False
    test_mode = True
{TEST_END}

if on_cuda:
    device = torch.device("cuda", local_rank)
    torch.cuda.set_device(device)
else:
    device = torch.device("cpu")
distributed = world_size > 1
if distributed:
    if on_cuda:
        dist.init_process_group(backend="nccl", device_id=device)
    else:
        dist.init_process_group(backend="gloo")
    dist.barrier()
# this code can be run equivalently with any world size that divides the rows per step into whole microbatches
assert (batch_tokens // seq_len) % (mbs * world_size) == 0, f"world_size {{world_size}} does not divide the batch"
accum_steps = batch_tokens // seq_len // mbs // world_size

# logging setup
if rank == 0:
    os.makedirs("logs", exist_ok=True)
    logfile = f"logs/{{uuid.uuid4()}}.txt"
    print(logfile)


def print0(s, console=False, log=True):
    if rank == 0:
        if console:
            print(s, flush=True)
        if log:
            with open(logfile, "a") as f:
                print(s, file=f)


# we begin by logging this file itself
print0(code.rstrip("\\n"))
print0("=" * 100)
_device_name = torch.cuda.get_device_name(device) if on_cuda else \\
    f"CPU ({{platform.machine()}}, {{torch.get_num_threads()}} threads)"
print0(f"Running PyTorch {{torch.version.__version__}} compiled for CUDA {{torch.version.cuda}}"
       + f" on {{_device_name}} with world_size {{world_size}}")
print0("=" * 100)


def all_reduce_sum(t):
    if distributed:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def barrier():
    if distributed:
        dist.barrier()


def set_optimizer_mode(optimizers, mode):
    """Schedule-free style optimizers keep the point to train on / evaluate behind train() / eval()."""
    for opt in optimizers:
        fn = getattr(opt, mode, None)
        if callable(fn):
            fn()


train_files = sorted(data_dir.glob("fineweb_train_*.bin"))
val_files = sorted(data_dir.glob("fineweb_val_*.bin"))
assert train_files and val_files, f"no fineweb_train_*.bin / fineweb_val_*.bin shards in {{data_dir}}"
val_inputs, val_targets = load_val(val_files[0], val_tokens, seq_len, rank, world_size)
val_inputs, val_targets = val_inputs.to(device), val_targets.to(device)

num_trials = int(sys.argv[-1]) if len(sys.argv) > 1 else 1

for trial in range(num_trials):

''')
    # ---------------- Init & Optim Hyperparams
    ind = "    "
    P.append(_section("Init & Optim Hyperparams", ind))
    init_src = textwrap.indent(inspect.getsource(getattr(gpt_mod, init_fn)), ind)
    sched_src = textwrap.indent(inspect.getsource(lr_multiplier), ind)
    P.append(f'''
    # we want to minimize this while still reaching the target val loss
    train_steps = {T}
    train_steps = test_train_steps or train_steps  # test-only override (None on the official path)
    seed = trial  # trial i draws its init from torch.manual_seed(i)

    # build the model, then initialize its parameters (the RNG draws follow optbench's training loop)
    torch.manual_seed(seed)
    model = GPT(model_config, embed_dtype=torch.bfloat16 if on_cuda else torch.float32).to(device)

    # initialize the parameters (init scheme {getattr(recipe, "init", "track3")!r})
{init_src}
    {init_fn}(model)
    if on_cuda:
        model.compile(dynamic=False)
    for p in model.parameters():
        if distributed:
            dist.broadcast(p.detach(), 0)

    # create the optimizer(s): the recipe's parameter split
    named = dict(model.named_parameters())
    matrices = [n for n, p in named.items() if n not in ("embed.weight", "proj.weight") and p.ndim >= 2]
''')
    P.append(_optimizer_code(recipe, main_info, main_cls, aux_info, aux_cls if aux_info else None, cuda_fused))
    P.append(f'''
    optimizers = [{"optimizer1, optimizer2" if aux_info else "optimizer2"}]
    _covered = [p for opt in optimizers for group in opt.param_groups for p in group["params"]]
    assert len(_covered) == len(named) and set(map(id, _covered)) == set(map(id, model.parameters()))
    for opt in optimizers:
        for group in opt.param_groups:
            group["initial_lr"] = group["lr"]
    set_optimizer_mode(optimizers, "train")

    # learning rate schedule (optbench.tracks.lr_multiplier): {f"linear warmup over {recipe.warmup_steps} steps, " if recipe.warmup_steps else ""}stable, then linear cooldown over the last {recipe.cooldown_frac:g} of the run
{sched_src}
    def set_hparams(step):
        eta = lr_multiplier(step, train_steps, cooldown_frac={recipe.cooldown_frac!r}, warmup_steps={recipe.warmup_steps})
        for opt in optimizers:
            for group in opt.param_groups:
                group["lr"] = group["initial_lr"] * eta
        return eta

    def is_eval_step(step):
        if step == train_steps:
            return True
        return step % (eval_every if step / train_steps < late_frac else eval_every_late) == 0

''')
    hessian = callable(getattr(main_info.cls, "hessian_update_due", None))
    # ---------------- Training and Validation
    P.append(_section("Training and Validation", ind))
    P.append('''
    train_loader = distributed_data_generator(train_files, batch_tokens, seq_len, rank, world_size)
    # start the clock
    training_time = 0.0
    last_val_step = 0
    barrier()
    t0 = time.perf_counter()
    for step in range(train_steps + 1):

        # --------------- VALIDATION SECTION -----------------
        if is_eval_step(step):
            # stop the clock
            barrier()
            time_since_last_val = time.perf_counter() - t0
            training_time += time_since_last_val
            step_avg = time_since_last_val / (step - last_val_step) if step > last_val_step else float("nan")
            last_val_step = step
            set_optimizer_mode(optimizers, "eval")
            model.eval()
            val_loss = torch.zeros((), device=device, dtype=torch.float64)
            with torch.no_grad():
                for i in range(0, len(val_inputs), mbs):
                    val_loss += model(val_inputs[i:i + mbs], val_targets[i:i + mbs]).double()
            all_reduce_sum(val_loss)
            model.train()
            set_optimizer_mode(optimizers, "train")
            val_loss = float(val_loss.item() / val_tokens)
            print0(f"step:{step}/{train_steps} val_loss:{val_loss:.5f} train_time:{training_time:.3f}s"
                   + f" step_avg:{1000 * step_avg:.2f}ms", console=True)
            if test_mode:
                print0(f"''' + TEST_VAL_PREFIX + '''{step}:{val_loss!r}", console=True, log=False)
            # start the clock again
            barrier()
            t0 = time.perf_counter()

        if step == train_steps:
            break

        # --------------- TRAINING SECTION -----------------
        inputs, targets = next(train_loader)
        inputs, targets = inputs.to(device), targets.to(device)
        # one forward-backward per microbatch on its summed loss; gradients accumulate
        for i in range(accum_steps):
            model(inputs[i * mbs:(i + 1) * mbs], targets[i * mbs:(i + 1) * mbs]).backward()
        # the gradient is the SUM over all tokens of the step, on every rank
        for name, p in model.named_parameters():
            assert p.grad is not None, name
            all_reduce_sum(p.grad)
        # set optimization hyperparameters and take a step
        set_hparams(step)
        for opt in optimizers:
            opt.step()
        model.zero_grad(set_to_none=True)
''')
    if hessian:
        P.append('''        # Sophia's Hessian estimate: ONE extra forward+backward on labels sampled from the model (breaks the
        # one-pass-per-step rule; optbench marks such runs non-compliant)
        due = [opt for opt in optimizers if callable(getattr(opt, "hessian_update_due", None))
               and opt.hessian_update_due(step)]
        if due:
            logits = model(inputs[:mbs])
            sampled = torch.distributions.Categorical(logits=logits).sample()
            torch.nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), sampled.view(-1),
                                              reduction="sum").backward()
            for p in model.parameters():
                if p.grad is not None:
                    all_reduce_sum(p.grad)
            for opt in due:
                opt.update_hessian()
            model.zero_grad(set_to_none=True)
''')
    P.append('''        approx_training_time = training_time + (time.perf_counter() - t0)
        print0(f"step:{step + 1}/{train_steps} train_time:{approx_training_time:.3f}s"
               + f" step_avg:{1000 * approx_training_time / (step + 1):.2f}ms", console=True, log=False)

if distributed:
    dist.destroy_process_group()
''')
    text = "".join(P)
    try:
        ast.parse(text)
    except SyntaxError as e:  # a bug in the exporter, not a user error
        raise RuntimeError(f"exported script does not parse: {e}") from e
    return text


def _optimizer_code(recipe: Recipe, main_info, main_cls: str, aux_info, aux_cls: str | None, cuda_fused) -> str:
    """Optimizer construction, in optbench.optim.groups.build_optimizers' order: aux first (embed, head, scalars),
    then the optimizer under test (remaining matrices, then each override group)."""
    ind = "    "
    out = []
    main_lr = recipe.hparams.get("lr")
    hp = {k: v for k, v in recipe.hparams.items() if k != "lr"}
    if recipe.scope == "all":
        groups = ['dict(params=list(named.values()){})'.format(f", lr={_py(main_lr)}" if main_lr is not None else "")]
        out.append(f"{ind}# every parameter goes to {main_info.name}\n")
    else:
        a = recipe.aux
        aux_kw = _kwargs(a.hparams, fused=aux_info.name in cuda_fused)
        out.append(f"{ind}# embedding, LM head and vectors/scalars: {aux_info.name}\n")
        aux_groups = [f'dict(params=[named["embed.weight"]], lr={_py(a.embed_lr)})',
                      f'dict(params=[named["proj.weight"]], lr={_py(a.head_lr)})',
                      f'dict(params=[p for p in named.values() if p.ndim < 2], lr={_py(a.scalar_lr)})']
        close = f"{ind}], {', '.join(aux_kw)})\n" if aux_kw else f"{ind}])\n"
        out.append(f"{ind}optimizer1 = {aux_cls}([\n" + "".join(f"{ind}    {g},\n" for g in aux_groups) + close)
        out.append(f"{ind}# hidden matrices: {main_info.name}" + (" (with per-group overrides)" if recipe.overrides else "")
                   + "\n")
        groups = []
        taken = []
        for k, ov in enumerate(recipe.overrides):
            cond = f"{ov.match!r} in n" + "".join(f" and {t!r} not in n" for t in taken)
            ov_hp = dict(ov.hparams)
            if main_lr is not None:
                ov_hp.setdefault("lr", main_lr)
            extra = "".join(f", {k2}={_py(tuple(v) if k2 == 'betas' else v)}" for k2, v in ov_hp.items())
            out.append(f"{ind}override{k} = [n for n in matrices if {cond}]\n")
            out.append(f"{ind}assert override{k}, {f'override {ov.match!r} selects no hidden matrix'!r}\n")
            groups.append(f"dict(params=[named[n] for n in override{k}]{extra})")
            taken.append(ov.match)
        if taken:
            rest_cond = " and ".join(f"{t!r} not in n" for t in taken)
            out.append(f"{ind}rest = [n for n in matrices if {rest_cond}]\n")
        else:
            out.append(f"{ind}rest = matrices\n")
        rest = f"dict(params=[named[n] for n in rest]{f', lr={_py(main_lr)}' if main_lr is not None else ''})"
        out.append(f"{ind}groups = [{rest}] if rest else []\n")
        for g in groups:
            out.append(f"{ind}groups.append({g})\n")
        groups = None
    kw = _kwargs(hp, fused=main_info.name in cuda_fused)
    if groups is not None:
        out.append(f"{ind}groups = [{groups[0]}]\n")
    out.append(f"{ind}optimizer2 = {main_cls}(groups{', ' if kw else ''}{', '.join(kw)})\n")
    return "".join(out)


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


__all__ = ["export_script", "export_recipe", "TEST_BEGIN", "TEST_END", "TEST_ENV_TRACK", "TEST_ENV_DATA",
           "TEST_ENV_STEPS", "TORCHRUN_ENV", "TEST_VAL_PREFIX"]
