"""Static rules of `optbench check`: the AST of a script (or of a log's code section); each violation names file:line.

- import-allowlist: every import is torch, numpy or the standard library (one file: no local modules).
- third-party-optimizer: no known optimizer package (THIRD_PARTY_OPTIMIZERS, the one list) is imported.
- dynamic-import: no exec/eval/__import__, importlib loaders or runpy (they would hide code or imports).
- cli-hyperparameters: no argparse/click/typer/fire/absl/optparse/getopt, no input(); sys.argv only as
  sys.argv[0] (the script reads its own source) and the trailing trials int (int(sys.argv[-1]), len(sys.argv)).
- environment: os.environ/os.getenv reads only of torchrun's RANK, WORLD_SIZE, LOCAL_RANK; OPTBENCH_TEST_*
  only inside the one marked test-only block (export.TEST_BEGIN .. TEST_END, a single `if` guarded by
  OPTBENCH_TEST_TRACK). Writing the environment (os.environ[k] = v) is allowed.
- fixed-fields: the official-path constants the script states (GPTConfig(...)/GPT(...) keywords vocab_size,
  num_layers, model_dim, head_dim; batch_tokens/batch_size, seq_len, val_tokens) equal the track's.
"""

from __future__ import annotations

import ast
import sys

from optbench.errors import OptbenchError
from optbench.submission.check.report import Report
from optbench.submission.export import TEST_BEGIN, TEST_END, TEST_ENV_TRACK, TORCHRUN_ENV

#: optimizer packages a submission must copy in rather than import (import names, lower case)
THIRD_PARTY_OPTIMIZERS = frozenset({
    "heavyball", "pytorch_optimizer", "torch_optimizer", "schedulefree", "distributed_shampoo", "kron_torch",
    "psgd", "psgd_torch", "lion_pytorch", "sophia", "soap", "muon", "dion", "adamuon", "normuon",
    "ademamix", "mars", "apex", "bitsandbytes", "torchopt", "came_pytorch", "adan_pytorch",
    "prodigyopt", "dadaptation", "galore_torch", "lomo_optim", "deepspeed", "torchao", "mup", "sam",
    "shampoo", "kron",
})
#: command-line parsers (hyperparameters must be hard-coded)
CLI_MODULES = frozenset({"argparse", "click", "typer", "fire", "absl", "optparse", "getopt", "docopt", "hydra",
                         "omegaconf", "jsonargparse", "tyro", "simple_parsing"})
ALLOWED_THIRD_PARTY = frozenset({"torch", "numpy"})
TEST_ENV_PREFIX = "OPTBENCH_TEST_"
#: calls that load code from elsewhere at run time (importlib, runpy)
_LOADERS = frozenset({"import_module", "run_path", "run_module", "spec_from_file_location", "exec_module",
                      "load_module", "load_source", "SourceFileLoader"})


def _stdlib() -> frozenset[str]:
    return frozenset(sys.stdlib_module_names) | {"__future__"}


def _test_block_lines(src: str, tree: ast.Module, name: str, rep: Report) -> tuple[int, int] | None:
    """(first, last) line of the marked test-only block's `if` statement, or None. Malformed blocks are
    violations."""
    lines = src.splitlines()
    begins = [i + 1 for i, ln in enumerate(lines) if ln.strip() == TEST_BEGIN]
    ends = [i + 1 for i, ln in enumerate(lines) if ln.strip() == TEST_END]
    if not begins and not ends:
        return None
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        rep.add("environment", "the test-only switch must be exactly one block between the begin and end markers",
                f"{name}:{(begins or ends)[0]}")
        return None
    b, e = begins[0], ends[0]
    stmts = [n for n in tree.body if b < n.lineno < e]
    ok = (len(stmts) == 1 and isinstance(stmts[0], ast.If) and not stmts[0].orelse
          and stmts[0].end_lineno < e and _is_env_get(stmts[0].test) == TEST_ENV_TRACK)
    if not ok:
        rep.add("environment", f"the test-only block must hold one `if os.environ.get({TEST_ENV_TRACK!r}):` "
                               "statement and nothing else", f"{name}:{b}")
        return None
    return b, e


def _is_env_get(node: ast.AST) -> str | None:
    """The constant key of os.environ.get(K) / os.getenv(K) / os.environ[K], else None."""
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        f = node.func
        if (isinstance(f, ast.Attribute) and f.attr == "get" and _is_environ(f.value)) or \
                (isinstance(f, ast.Attribute) and f.attr == "getenv" and _is_name(f.value, "os")):
            return node.args[0].value
    if isinstance(node, ast.Subscript) and _is_environ(node.value) and isinstance(node.slice, ast.Constant):
        return node.slice.value
    return None


def _is_name(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _is_environ(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ" and _is_name(node.value, "os")) or \
        _is_name(node, "environ")


def _const_value(node: ast.AST):
    """Evaluate a constant arithmetic expression (numbers, + - * / // **), else raise ValueError."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.BinOp):
        a, b = _const_value(node.left), _const_value(node.right)
        ops = {ast.Add: lambda: a + b, ast.Sub: lambda: a - b, ast.Mult: lambda: a * b, ast.Div: lambda: a / b,
               ast.FloorDiv: lambda: a // b, ast.Pow: lambda: a ** b}
        if type(node.op) in ops:
            return ops[type(node.op)]()
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_const_value(node.operand)
    raise ValueError("not a constant")


def static_check(src: str, name: str, track=None) -> Report:
    """The static rules on a script's source text (see the module docstring)."""
    rep = Report(name)
    try:
        tree = ast.parse(src, filename=name)
    except SyntaxError as e:
        raise OptbenchError(f"{name}:{e.lineno}: not a Python script ({e.msg})") from None
    stdlib = _stdlib()
    block = _test_block_lines(src, tree, name, rep)

    def in_block(node: ast.AST) -> bool:
        return block is not None and block[0] < getattr(node, "lineno", 0) < block[1]

    track = resolve_track(track, tree)

    parents: dict[ast.AST, ast.AST] = {}
    for node in ast.walk(tree):
        for ch in ast.iter_child_nodes(node):
            parents[ch] = node

    def where(node: ast.AST) -> str:
        return f"{name}:{getattr(node, 'lineno', '?')}"

    def check_module(mod: str, node: ast.AST) -> None:
        top = mod.split(".")[0]
        if top.lower() in THIRD_PARTY_OPTIMIZERS:
            rep.add("third-party-optimizer", f"imports the optimizer package {top!r}: third-party optimizer "
                                             "libraries must be copied into the script, not imported", where(node))
        elif top in CLI_MODULES:
            rep.add("cli-hyperparameters", f"imports {top!r}: hyperparameters must be hard-coded, not read from "
                                           "the command line", where(node))
        elif top not in stdlib and top not in ALLOWED_THIRD_PARTY:
            rep.add("import-allowlist", f"imports {top!r}: a submission may import only torch, numpy and the "
                                        "standard library (all other code must be inside the one file)", where(node))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                check_module(a.name, node)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                rep.add("import-allowlist", "relative import: a submission is a single file", where(node))
            elif node.module:
                check_module(node.module, node)
                if node.module == "os" and any(a.name in ("environ", "getenv") for a in node.names):
                    rep.add("environment", "imports os.environ/os.getenv by name; read torchrun's variables as "
                                           "os.environ[...] so the checker can see the keys", where(node))
                if node.module == "sys" and any(a.name == "argv" for a in node.names):
                    rep.add("cli-hyperparameters", "imports sys.argv by name; use sys.argv[0] / the trailing "
                                                   "trials int only", where(node))
        elif isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name) and f.id in ("exec", "eval", "__import__"):
                rep.add("dynamic-import", f"calls {f.id}(): code and imports must be visible in the file", where(node))
            elif isinstance(f, ast.Name) and f.id == "input":
                rep.add("cli-hyperparameters", "calls input(): hyperparameters must be hard-coded", where(node))
            elif isinstance(f, ast.Attribute) and f.attr in _LOADERS:
                rep.add("dynamic-import", f"calls {f.attr}(): code and imports must be visible in the file",
                        where(node))
        elif isinstance(node, ast.Attribute) and node.attr == "argv" and _is_name(node.value, "sys"):
            if not _argv_use_ok(node, parents):
                rep.add("cli-hyperparameters", "reads sys.argv beyond sys.argv[0] and the trailing trials int "
                                               "(int(sys.argv[-1])): hyperparameters must be hard-coded", where(node))
        elif _is_environ(node) or (isinstance(node, ast.Attribute) and node.attr in ("getenv", "getenvb")
                                   and _is_name(node.value, "os")):
            _env_use(node, parents, in_block, rep, where)

    _fixed_fields(tree, track, in_block, rep, where)
    rep.notes.append(f"static: {name} checked against track {track.name!r}"
                     + ("" if block is None else f" (test-only block at lines {block[0]}-{block[1]} allowed)"))
    return rep


def declared_track(tree: ast.Module) -> str | None:
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and _is_name(node.targets[0], "TRACK") \
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return node.value.value
    return None


def _argv_use_ok(node: ast.Attribute, parents) -> bool:
    p = parents.get(node)
    if isinstance(p, ast.Subscript) and p.value is node and isinstance(p.slice, (ast.Constant, ast.UnaryOp)):
        try:
            idx = _const_value(p.slice)
        except ValueError:
            return False
        if idx == 0:
            return True
        if idx == -1:  # only as int(sys.argv[-1]): the number of trials
            pp = parents.get(p)
            return isinstance(pp, ast.Call) and _is_name(pp.func, "int") and len(pp.args) == 1
        return False
    if isinstance(p, ast.Call) and _is_name(p.func, "len"):
        return True
    return False


def _env_use(node, parents, in_block, rep: Report, where) -> None:
    p = parents.get(node)
    key = None
    if isinstance(node, ast.Attribute) and node.attr in ("getenv", "getenvb"):
        call = p if isinstance(p, ast.Call) and p.func is node else None
        key = call.args[0].value if call and call.args and isinstance(call.args[0], ast.Constant) else None
        read = True
    elif isinstance(p, ast.Subscript) and p.value is node:
        if isinstance(p.ctx, (ast.Store, ast.Del)):
            return  # setting the environment (allocator flags etc.) reads no hyperparameter
        key = p.slice.value if isinstance(p.slice, ast.Constant) else None
        read = True
    elif isinstance(p, ast.Attribute) and p.value is node and p.attr in ("get", "setdefault", "pop"):
        call = parents.get(p)
        if p.attr == "setdefault" or p.attr == "pop":
            if call is not None and isinstance(call, ast.Call) and call.args and isinstance(call.args[0], ast.Constant) \
                    and p.attr == "setdefault" and isinstance(parents.get(call), ast.Expr):
                return  # os.environ.setdefault(K, V) as a statement: a write
        key = call.args[0].value if isinstance(call, ast.Call) and call.args and isinstance(call.args[0], ast.Constant) \
            else None
        read = True
    else:
        rep.add("environment", "uses os.environ as a whole: only torchrun's RANK/WORLD_SIZE/LOCAL_RANK may be "
                               "read (and OPTBENCH_TEST_* in the marked test-only block)", where(node))
        return
    if not read:
        return
    if key is None:
        rep.add("environment", "reads an environment variable whose name is not a constant", where(node))
    elif key in TORCHRUN_ENV:
        return
    elif isinstance(key, str) and key.startswith(TEST_ENV_PREFIX):
        if not in_block(node):
            rep.add("environment", f"reads {key} outside the marked test-only block", where(node))
    else:
        rep.add("environment", f"reads the environment variable {key!r}: hyperparameters must be hard-coded "
                               f"(allowed: {', '.join(TORCHRUN_ENV)})", where(node))


_CONFIG_KEYS = ("vocab_size", "num_layers", "model_dim", "head_dim", "mlp_ratio")
_SIZE_NAMES = {"batch_tokens": "batch_tokens", "batch_size": "batch_tokens", "seq_len": "seq_len",
               "val_tokens": "val_tokens"}


def _fixed_fields(tree: ast.Module, track, in_block, rep: Report, where) -> None:
    cfg = track.model_config
    for node in ast.walk(tree):
        if in_block(node):
            continue
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("GPTConfig", "GPT"):
            for kw in node.keywords:
                if kw.arg in _CONFIG_KEYS and hasattr(cfg, kw.arg):
                    try:
                        v = _const_value(kw.value)
                    except ValueError:
                        continue
                    if v != getattr(cfg, kw.arg):
                        rep.add("fixed-fields", f"{node.func.id}({kw.arg}={v}): track {track.name} fixes "
                                                f"{kw.arg} = {getattr(cfg, kw.arg)} (the architecture is fixed)",
                                where(node))
        elif isinstance(node, ast.Assign) and node in tree.body:
            for t in node.targets:
                if isinstance(t, ast.Name) and t.id in _SIZE_NAMES:
                    try:
                        v = _const_value(node.value)
                    except ValueError:
                        continue
                    want = getattr(track, _SIZE_NAMES[t.id])
                    if v != want:
                        rep.add("fixed-fields", f"{t.id} = {v}: track {track.name} fixes {_SIZE_NAMES[t.id]} = "
                                                f"{want}", where(node))


def resolve_track(track, tree: ast.Module | None):
    """The Track the rules come from: the given one (a Track or a name), else the script's `TRACK = "..."`,
    else small (upstream track 3)."""
    from optbench.tracks import get_track

    if track is None:
        return get_track((declared_track(tree) if tree is not None else None) or "small")
    return get_track(track) if isinstance(track, str) else track
