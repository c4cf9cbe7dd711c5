"""Source rewriting of the shim: a plain upstream-layout training script, rewritten (AST) to run on CPU at a CPU
track's size. Every change is listed; what cannot be rewritten is a reason the script cannot run.

What is rewritten (nothing else is touched):
- device: the string "cuda" / "cuda:N" -> "cpu"; `.cuda()` -> `.cpu()`; `pin_memory=True` -> False;
- process group: `backend="nccl"` -> "gloo"; the `device_id=` keyword of `init_process_group` dropped (the runner
  sets RANK/WORLD_SIZE/LOCAL_RANK/MASTER_* for one gloo process);
- torch.compile: `@torch.compile` decorators removed, `torch.compile(f, ...)` -> f, `model.compile(...)`
  statements removed (eager on CPU);
- dtype: `.bfloat16()` / `.half()` on a constructed module (`nn.Embedding(...).bfloat16()`, `GPT(...).half()`)
  -> `.float()`, and torch.bfloat16 / torch.float16 inside a `*dtype=` keyword of a module constructor
  (`GPT(cfg, embed_dtype=torch.bfloat16 if on_cuda else ...)`) -> torch.float32: parameters and activations in
  fp32 on CPU, as `optbench run` on CPU; casts of tensors inside the computation (Newton-Schulz's
  `G.bfloat16()`) stay as written;
- sizes: wherever a size name (vocab_size, num_layers, model_dim, head_dim, seq_len, val_tokens, batch_size /
  batch_tokens, mbs / micro_batch_sequences; any case, also as a suffix: MODEL_NUM_LAYERS, TRAIN_BATCH_TOKENS) is
  given the track-3 value (a constant expression: `val_tokens = 20 * 524288`, `seq_len=1024` as a default or a
  keyword, `GPT(vocab_size=50304, ...)`, or an environment read with that default:
  `int(os.environ.get("VAL_TOKENS", str(20 * 524288)))`), the value becomes the CPU track's;
- run length: `train_steps = ...` and the bound of the `for step in range(...)` loop (`run_stop_step`) -> the
  requested steps, and so the names they are assigned from (`train_steps = FINAL_TRAIN_STEPS`: code keyed on
  FINAL_TRAIN_STEPS, like a STOP_STEP default, follows).
Data paths are not rewritten: the runner runs the script in a folder whose data/fineweb10B is the track's shards.
torch.cuda calls (set_device, get_device_name, synchronize, RNG state) are answered by the runner (runner.py).

Not scaled: other step-keyed constants (eval grids at 2700+, schedule horizons read from the environment); any
remaining full-size literal is listed in `leftovers` (the script may still run).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

#: the size names and their track-3 (small) values; a value equal to the small track's is replaced
_SIZE_FIELDS = {"vocab_size": "vocab_size", "num_layers": "num_layers", "model_dim": "model_dim",
                "head_dim": "head_dim", "seq_len": "seq_len", "val_tokens": "val_tokens",
                "batch_size": "batch_tokens", "batch_tokens": "batch_tokens", "mbs": "micro_batch_rows",
                "micro_batch_sequences": "micro_batch_rows", "micro_batch_rows": "micro_batch_rows"}
_FULL_SIZE_LITERALS = (50304, 524288, 768)


def track_sizes(track) -> dict[str, int]:
    """The size names' values of a GPT track (vocab_size ... mbs)."""
    cfg = track.model_config
    vals = {"vocab_size": cfg.vocab_size, "num_layers": cfg.num_layers, "model_dim": cfg.model_dim,
            "head_dim": cfg.head_dim, "seq_len": track.seq_len, "val_tokens": track.val_tokens,
            "batch_tokens": track.batch_tokens, "micro_batch_rows": track.micro_batch_rows}
    return {name: vals[f] for name, f in _SIZE_FIELDS.items()}


@dataclass
class Rewritten:
    source: str
    changes: list[str] = field(default_factory=list)  # "line N: what" for every rewrite
    leftovers: list[str] = field(default_factory=list)  # full-size literals left as they are
    takes_seed: bool = False  # argparse declares --seed


def _const(node: ast.AST):
    """A constant integer expression's value (numbers with + - * // **), else None."""
    try:
        v = eval(compile(ast.Expression(node), "<const>", "eval"), {"__builtins__": {}}, {})  # noqa: S307
    except Exception:  # noqa: BLE001 - not a constant expression
        return None
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _is_const_expr(node: ast.AST) -> bool:
    return all(isinstance(n, (ast.Constant, ast.BinOp, ast.UnaryOp, ast.operator, ast.unaryop, ast.expr_context))
               for n in ast.walk(node))


def _full_value(node: ast.AST):
    """The integer a size expression states: a constant expression, or int(os.environ.get(K, DEFAULT)) /
    os.environ.get(K, DEFAULT) with DEFAULT a constant, its str(...) or a numeric string; else None."""
    if _is_const_expr(node):
        v = _const(node)
        if v is None and isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.isdigit():
            return int(node.value)
        return v
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("int", "str") \
            and len(node.args) == 1:
        return _full_value(node.args[0])
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("get", "getenv") \
            and len(node.args) == 2:
        return _full_value(node.args[1])
    return None


def _names_a_class(func: ast.AST) -> bool:
    """`nn.Embedding` / `GPT`: a capitalised name, i.e. a module being constructed."""
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    return name[:1].isupper()


def _is_torch_compile(node: ast.AST) -> bool:
    f = node.func if isinstance(node, ast.Call) else node
    return isinstance(f, ast.Attribute) and f.attr == "compile" and isinstance(f.value, ast.Name) \
        and f.value.id == "torch"


class _Shim(ast.NodeTransformer):
    def __init__(self, full: dict[str, int], small: dict[str, int], steps: int, step_names: set[str]):
        self.full, self.small, self.steps, self.step_names = full, small, steps, step_names
        self.changes: list[str] = []

    def note(self, node: ast.AST, what: str) -> None:
        self.changes.append(f"line {getattr(node, 'lineno', '?')}: {what}")

    def size(self, name: str, value: ast.AST, where: ast.AST) -> ast.AST:
        low = name.lower()
        key = next((k for k in self.full if low == k or low.endswith("_" + k)), None)
        if key is not None and _full_value(value) == self.full[key]:
            self.note(where, f"{name} {self.full[key]} -> {self.small[key]}")
            return ast.copy_location(ast.Constant(self.small[key]), value)
        return value

    def fp32(self, value: ast.AST, where: ast.AST) -> ast.AST:
        """torch.bfloat16 / torch.float16 inside `value` -> torch.float32."""
        for n in ast.walk(value):
            if isinstance(n, ast.Attribute) and n.attr in ("bfloat16", "float16") and isinstance(n.value, ast.Name) \
                    and n.value.id == "torch":
                self.note(where, f"torch.{n.attr} -> torch.float32 (module dtype)")
                n.attr = "float32"
        return value

    # ---- constants and attributes
    def visit_Constant(self, node):
        if isinstance(node.value, str) and (node.value == "cuda" or node.value.startswith("cuda:")):
            self.note(node, f"{node.value!r} -> 'cpu'")
            return ast.copy_location(ast.Constant("cpu"), node)
        return node

    # ---- calls
    def visit_Call(self, node):
        if _is_torch_compile(node) and node.args:  # torch.compile(f, ...) -> f
            self.note(node, "torch.compile(...) -> eager")
            return self.visit(node.args[0])
        self.generic_visit(node)
        f = node.func
        if isinstance(f, ast.Attribute) and not node.args and f.attr == "cuda":
            self.note(node, ".cuda() -> .cpu()")
            node.func = ast.Attribute(f.value, "cpu", ast.Load())
        elif isinstance(f, ast.Attribute) and not node.args and f.attr in ("bfloat16", "half") \
                and isinstance(f.value, ast.Call) and _names_a_class(f.value.func):
            self.note(node, f".{f.attr}() -> .float()")
            node.func = ast.Attribute(f.value, "float", ast.Load())
        is_init_pg = (isinstance(f, ast.Attribute) and f.attr == "init_process_group") or \
            (isinstance(f, ast.Name) and f.id == "init_process_group")
        kws = []
        for kw in node.keywords:
            if kw.arg == "backend" and isinstance(kw.value, ast.Constant) and kw.value.value == "nccl":
                self.note(node, "backend 'nccl' -> 'gloo'")
                kw.value = ast.Constant("gloo")
            elif kw.arg == "pin_memory" and isinstance(kw.value, ast.Constant) and kw.value.value is True:
                self.note(node, "pin_memory=True -> False")
                kw.value = ast.Constant(False)
            elif kw.arg == "device_id" and is_init_pg:
                self.note(node, "init_process_group: device_id dropped")
                continue
            elif kw.arg and kw.arg.endswith("dtype") and _names_a_class(f):
                kw.value = self.fp32(kw.value, node)
            elif kw.arg:
                kw.value = self.size(kw.arg, kw.value, node)
            kws.append(kw)
        node.keywords = kws
        return node

    # ---- statements
    def visit_Expr(self, node):
        v = node.value
        if isinstance(v, ast.Call) and isinstance(v.func, ast.Attribute) and v.func.attr == "compile" \
                and not (isinstance(v.func.value, ast.Name) and v.func.value.id in ("re", "torch")):
            self.note(node, f"{ast.unparse(v)} removed (eager on CPU)")
            return ast.copy_location(ast.Pass(), node)
        if isinstance(v, ast.Call) and isinstance(v.func, ast.Attribute) and v.func.attr == "manual_seed" \
                and isinstance(v.func.value, ast.Name) and v.func.value.id == "torch" and len(v.args) == 1 \
                and isinstance(v.args[0], ast.Constant) and isinstance(v.args[0].value, int):
            # a fixed seed (optbench's export: torch.manual_seed(0)) -> the run's seed, which the runner set
            self.note(node, f"{ast.unparse(v)} -> torch.manual_seed(torch.initial_seed()) (the run's seed)")
            v.args = [ast.parse("torch.initial_seed()", mode="eval").body]
            return node
        return self.generic_visit(node)

    def _defs(self, node):
        kept = []
        for d in node.decorator_list:
            if _is_torch_compile(d):
                self.note(d, "@torch.compile removed (eager on CPU)")
            else:
                kept.append(d)
        node.decorator_list = kept
        a = node.args
        pos = a.posonlyargs + a.args
        for arg, default in zip(pos[len(pos) - len(a.defaults):], a.defaults):
            idx = a.defaults.index(default)
            a.defaults[idx] = self.size(arg.arg, default, node)
        for i, (arg, default) in enumerate(zip(a.kwonlyargs, a.kw_defaults)):
            if default is not None:
                a.kw_defaults[i] = self.size(arg.arg, default, node)
        return self.generic_visit(node)

    visit_FunctionDef = visit_AsyncFunctionDef = _defs

    def visit_Assign(self, node):
        self.generic_visit(node)
        if len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name in self.step_names:
                self.note(node, f"{name} = {ast.unparse(node.value)} -> {self.steps}")
                node.value = ast.copy_location(ast.Constant(self.steps), node.value)
            else:
                node.value = self.size(name, node.value, node)
        return node


    def visit_AnnAssign(self, node):  # dataclass fields: `vocab_size: int = 50304`
        self.generic_visit(node)
        if isinstance(node.target, ast.Name) and node.value is not None:
            node.value = self.size(node.target.id, node.value, node)
        return node


def _step_names(tree: ast.Module) -> set[str]:
    """The names that set the run length: `train_steps`, the bound of a `for step in range(NAME [+ 1])` loop, and
    the names they are assigned from (train_steps = FINAL_TRAIN_STEPS, run_stop_step = RUN_STOP_STEP)."""
    names = {"train_steps"}
    for n in ast.walk(tree):
        if isinstance(n, ast.For) and isinstance(n.target, ast.Name) and n.target.id == "step" \
                and isinstance(n.iter, ast.Call) and isinstance(n.iter.func, ast.Name) and n.iter.func.id == "range" \
                and n.iter.args:
            bound = n.iter.args[-1]
            bound = bound.left if isinstance(bound, ast.BinOp) else bound
            if isinstance(bound, ast.Name):
                names.add(bound.id)
    grew = True
    while grew:
        grew = False
        for n in ast.walk(tree):
            if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name) \
                    and n.targets[0].id in names and isinstance(n.value, ast.Name) and n.value.id not in names:
                names.add(n.value.id)
                grew = True
    return names


def takes_seed(tree: ast.Module) -> bool:
    """Whether the script declares an argparse --seed option (upstream records: `--seed`, default 0)."""
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "add_argument"
               and any(isinstance(a, ast.Constant) and a.value == "--seed" for a in n.args) for n in ast.walk(tree))


def rewrite(source: str, track, steps: int, name: str = "script") -> Rewritten:
    """`source` rewritten to run on CPU at `track`'s size for `steps` optimizer steps (see the module docstring).
    SyntaxError for a file that is not Python."""
    from optbench.tracks import get_track

    tree = ast.parse(source, filename=name)
    full, small = track_sizes(get_track("small")), track_sizes(track)
    shim = _Shim(full, small, steps, _step_names(tree))
    seed = takes_seed(tree)
    new = ast.fix_missing_locations(shim.visit(tree))
    out = ast.unparse(new)
    left = []
    for node in ast.walk(ast.parse(out)):
        if isinstance(node, ast.Constant) and node.value in _FULL_SIZE_LITERALS and not isinstance(node.value, bool):
            left.append(f"line {node.lineno} (rewritten source): full-size literal {node.value} left as is")
    return Rewritten(out + "\n", shim.changes, left, seed)
