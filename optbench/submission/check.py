"""`optbench check`: a training script or an upstream-format log against the benchmark rules (track3.md 1, 5-8).

Static checks (AST of the script, or of a log's code section; each violation names file:line):

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

Dynamic check (scripts with the test-only switch; exported scripts have it): the script runs in a subprocess
(optbench.submission._harness) at nano size on CPU for a few optimizer steps. The harness executes the script's
top-level code with a namespace that sees every top-level binding (to record the constructor call of every
nn.Module class the script defines, so the model can be rebuilt at the track's full size on the meta device);
global module forward hooks find the model (the root-called module with the most parameters); per optimizer step
(global torch.optim step pre-hook) it counts the model's forwards in train mode or with grad enabled and the
tokens they consumed, and autograd backward/grad calls; and it records the token rows of each step and of the
first evaluation. Compared with the track: the parameter names/shapes/count (nano, and
full size by substituting the track's config into the captured constructor call), tokens per step, one forward
and one backward per microbatch, the data order (TokenStream windows) and the val rows (load_val).

What it cannot detect: code paths that behave differently on the official GPU path than in test mode (beyond
the constants the static check reads), official-path constants hidden in expressions, forwards that bypass
the model's __call__ (e.g. calling model.forward or functional code directly), a model class not defined at the
script's top level (no full-size fingerprint: reported as a note), optimizers that are not
torch.optim.Optimizer subclasses (no step boundary is seen: reported), anything after the first few steps, and
scripts in the plain upstream layout without the test-only switch (CUDA + FineWeb hard-wired): for those the
dynamic check is skipped with a note and only the static and log checks apply.

Log checks: the code section equals the script (when both are given) or passes the static checks (log alone);
every trial has the same run length and the same eval steps, complete to its end (per-trial early stopping is
a violation); the statistics verdict (optbench.results.stats) is reported, not judged as a violation.
"""

from __future__ import annotations

import ast
import json
import math
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from optbench.errors import OptbenchError
from optbench.submission.export import (TEST_BEGIN, TEST_END, TEST_ENV_TRACK, TORCHRUN_ENV)

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
OPTBENCH_RUN_LOG = "# optbench run:"  # first line of the code section of optbench's own run logs


@dataclass
class Violation:
    rule: str
    message: str
    where: str  # file:line, file, or log:line

    def __str__(self) -> str:
        return f"{self.where}: [{self.rule}] {self.message}"


@dataclass
class Report:
    subject: str
    violations: list[Violation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was checked / skipped, the verdict

    @property
    def ok(self) -> bool:
        return not self.violations

    def add(self, rule: str, message: str, where: str) -> None:
        self.violations.append(Violation(rule, message, where))

    def extend(self, other: "Report") -> None:
        self.violations += other.violations
        self.notes += other.notes

    def rules(self) -> set[str]:
        return {v.rule for v in self.violations}


# ----------------------------------------------------------------------------- static


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
    from optbench.tracks import get_track

    rep = Report(name)
    try:
        tree = ast.parse(src, filename=name)
    except SyntaxError as e:
        raise OptbenchError(f"{name}:{e.lineno}: not a Python script ({e.msg})") from None
    stdlib = _stdlib()
    block = _test_block_lines(src, tree, name, rep)

    def in_block(node: ast.AST) -> bool:
        return block is not None and block[0] < getattr(node, "lineno", 0) < block[1]

    if track is None:
        track = get_track(_declared_track(tree) or "small")
    elif isinstance(track, str):
        track = get_track(track)

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


def _declared_track(tree: ast.Module) -> str | None:
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


# ----------------------------------------------------------------------------- dynamic


def has_test_switch(src: str) -> bool:
    return TEST_BEGIN in src and TEST_END in src


def expected_fingerprint(track) -> dict:
    """Parameter names, shapes and count of the track's model (built on the meta device)."""
    import torch

    with torch.device("meta"):
        m = track.build_model()
    params = [(n, list(p.shape)) for n, p in m.named_parameters()]
    return {"names": [n for n, _ in params], "shapes": [s for _, s in params],
            "count": sum(math.prod(s) for _, s in params)}


def _compare_fingerprint(got: dict, want: dict, label: str, rep: Report, where: str) -> None:
    if got["names"] == want["names"] and got["shapes"] == want["shapes"]:
        return
    gn, wn = got["names"], want["names"]
    extra = [n for n in gn if n not in wn]
    missing = [n for n in wn if n not in gn]
    gshape = dict(zip(gn, got["shapes"]))
    wshape = dict(zip(wn, want["shapes"]))
    changed = [f"{n} {gshape[n]} (expected {wshape[n]})" for n in gn if n in wshape and gshape[n] != wshape[n]]
    bits = []
    if extra:
        bits.append(f"extra parameters {extra[:6]}{' ...' if len(extra) > 6 else ''}")
    if missing:
        bits.append(f"missing parameters {missing[:6]}{' ...' if len(missing) > 6 else ''}")
    if changed:
        bits.append(f"changed shapes {changed[:4]}{' ...' if len(changed) > 4 else ''}")
    if not bits:
        bits.append("parameter order differs")
    rep.add("architecture", f"{label}: the model differs from the track's: " + "; ".join(bits)
            + f" ({got['count']:,} parameters, expected {want['count']:,})", where)


def dynamic_check(script: str | os.PathLike, track=None, *, steps: int = 2, test_track: str = "nano",
                  data_dir: str | os.PathLike | None = None, timeout: float = 600) -> Report:
    """Run the script for a few optimizer steps at `test_track` size on CPU (subprocess) and compare what it
    does with the track (see the module docstring)."""
    import torch

    from optbench.data.loader import TokenStream, load_val
    from optbench.data.shards import list_shards
    from optbench.tracks import get_track

    script = Path(script)
    src = script.read_text()
    rep = Report(str(script))
    if not has_test_switch(src):
        rep.notes.append(f"dynamic: skipped: {script} has no optbench test-only switch, so it cannot be run on CPU "
                         "at nano size (only the static and log checks apply)")
        return rep
    if track is None:
        track = get_track(_declared_track(ast.parse(src)) or "small")
    elif isinstance(track, str):
        track = get_track(track)
    tt = get_track(test_track)
    if data_dir is None:
        from optbench.data.corpus import default_data_dir

        data_dir = default_data_dir(tt.vocab_size)
    with tempfile.TemporaryDirectory(prefix="optbench-check-") as tmp:
        out = Path(tmp) / "harness.pt"
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(TEST_ENV_PREFIX) and k not in TORCHRUN_ENV + ("MASTER_ADDR", "MASTER_PORT")}
        env.update({TEST_ENV_TRACK: test_track, "OPTBENCH_TEST_DATA": str(Path(data_dir).resolve()),
                    "OPTBENCH_TEST_STEPS": str(steps + 1)})
        cmd = [sys.executable, "-m", "optbench.submission._harness", str(script.resolve()), str(out), str(steps),
               json.dumps(dataclass_fields(track.model_config))]
        try:
            proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            rep.add("dynamic", f"the script did not finish {steps} steps at {test_track} size within {timeout:.0f}s",
                    str(script))
            return rep
        if not out.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-8:]
            rep.add("dynamic", f"the script failed under the harness (exit {proc.returncode}): "
                               + " | ".join(tail), str(script))
            return rep
        res = torch.load(out, weights_only=False)
    where = str(script)
    if res.get("error"):
        rep.add("dynamic", f"the script failed at {test_track} size: {res['error']}", where)
    if res.get("model") is None:
        rep.add("architecture", "no model was found (no nn.Module bound at the script's top level)", where)
        return rep
    _compare_fingerprint(res["model"], expected_fingerprint(tt), f"at {test_track} size", rep, where)
    if res.get("full") is None:
        rep.notes.append(f"dynamic: could not rebuild the model at {track.name} size ({res.get('full_error')}); "
                         "full-size fingerprint not compared")
    else:
        _compare_fingerprint(res["full"], expected_fingerprint(track), f"at {track.name} size", rep, where)
    per_step = res["steps"]
    if not per_step:
        rep.add("passes", "no optimizer step was observed (the optimizers must be torch.optim.Optimizer "
                          "subclasses) or the script stopped before its first step", where)
        return rep
    stream = TokenStream(list_shards(data_dir, "train"), tt.batch_tokens, tt.seq_len)
    accum = tt.accumulation_steps(1)
    judge_steps(per_step, tt.batch_tokens, stream, rep, where, test_track)
    if res.get("val_inputs") is not None:
        vx, _ = load_val(list_shards(data_dir, "val"), tt.val_tokens, tt.seq_len)
        if res["val_inputs"].shape != vx.shape or not torch.equal(res["val_inputs"], vx):
            rep.add("validation", f"the first evaluation's rows differ from the first {tt.val_tokens} val tokens",
                    where)
    else:
        rep.notes.append("dynamic: no evaluation before the first step was observed; val rows not compared")
    rep.notes.append(f"dynamic: ran {len(per_step)} optimizer step(s) at {test_track} size: "
                     + ", ".join(f"{s['forwards']} fwd/{s['backwards']} bwd/{s['tokens']} tok" for s in per_step)
                     + f" (expected {accum} fwd/{accum} bwd/{tt.batch_tokens} tok)")
    return rep


def judge_steps(per_step: list[dict], batch_tokens: int, stream, rep: Report, where: str, size: str = "nano") -> None:
    """Per observed optimizer step: one pass over exactly the step's batch (tokens, forwards vs backwards) and the
    benchmark's data order (`stream`: a TokenStream of the same track, or None to skip the data comparison)."""
    import torch

    for i, st in enumerate(per_step):
        label = f"step {i}"
        if st["backwards"] > st["forwards"]:
            rep.add("passes", f"{label}: {st['backwards']} backward passes for {st['forwards']} forward passes "
                              "(at most one forward-backward pass per step)", where)
        if st["tokens"] > batch_tokens:
            rep.add("passes", f"{label}: {st['tokens']} tokens went through the model with grad for a batch of "
                              f"{batch_tokens} ({st['forwards']} forwards): an extra forward(-backward) pass "
                              "(at most one forward-backward pass per step)", where)
        elif st["tokens"] < batch_tokens:
            rep.add("batch-size", f"{label}: {st['tokens']} tokens went through the model in training, the track "
                                  f"fixes {batch_tokens} per step ({size} size)", where)
        if st["backwards"] == 0:
            rep.add("passes", f"{label}: no backward pass before the optimizer step", where)
        if stream is None:
            continue
        want_x, want_y = stream.next_batch()
        got_x, got_y = st["inputs"], st["targets"]
        if got_x is not None and got_x.shape[1:] == want_x.shape[1:] and len(got_x) > len(want_x):
            # extra passes (reported above): the step's batch must still be a contiguous run of the rows
            n = len(want_x)
            off = next((o for o in range(len(got_x) - n + 1) if torch.equal(got_x[o:o + n], want_x)), 0)
            got_x = got_x[off:off + n]
            got_y = got_y[off:off + n] if got_y is not None and len(got_y) >= off + n else got_y
        if got_x is None or got_x.shape != want_x.shape or not torch.equal(got_x, want_x):
            rep.add("data-order", f"{label}: the training rows differ from the benchmark stream's window "
                                  "(fixed data order, world-size-invariant windows)", where)
        elif got_y is not None and (got_y.shape != want_y.shape or not torch.equal(got_y, want_y)):
            rep.add("data-order", f"{label}: the training targets are not the inputs shifted by one token", where)


def dataclass_fields(cfg) -> dict:
    import dataclasses

    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}


# ----------------------------------------------------------------------------- logs


def log_check(log_path: str | os.PathLike, script_text: str | None = None, script_name: str | None = None,
              track=None, rule: str | None = None) -> Report:
    """Upstream-format log: code section vs script, fixed eval steps for every trial, the verdict."""
    from optbench.results import logparse, stats
    from optbench.tracks import get_track

    log = logparse.parse_log(log_path)
    name = str(log_path)
    rep = Report(name)
    code = log.code
    if track is None:
        try:
            track = get_track(_declared_track(ast.parse(code)) or log.track or "small")
        except SyntaxError:
            track = get_track(log.track or "small")
    elif isinstance(track, str):
        track = get_track(track)
    if script_text is not None:
        if code.rstrip("\n") != script_text.rstrip("\n"):
            a, b = code.rstrip("\n").splitlines(), script_text.rstrip("\n").splitlines()
            first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            rep.add("log-code", f"the log's code section differs from {script_name or 'the script'} (first at "
                                f"line {first + 1}; {len(a)} vs {len(b)} lines): the log must come from this "
                                "script", f"{name}:{first + 1}")
    elif code.startswith(OPTBENCH_RUN_LOG):
        rep.notes.append(f"log: {name} is an `optbench run` log: its code section is the run's recipe and module "
                         "sources, not a training script; static checks skipped (check the exported "
                         "train_gpt_simple.py instead)")
    else:
        try:
            rep.extend(static_check(code, f"{name} (code section)", track))
        except OptbenchError as e:
            rep.add("log-code", f"the code section is not a Python script ({e})", name)
    trials = log.trials
    lengths = {t.train_steps for t in trials}
    if len(lengths) > 1:
        rep.add("fixed-eval-steps", f"trials have different run lengths {sorted(lengths)}: all trials must run the "
                                    "same schedule", f"{name}:{trials[0].evals[0].line_no}")
    ref = [e.step for e in trials[0].evals]
    for t in trials:
        steps = [e.step for e in t.evals]
        last = t.evals[-1]
        if not t.complete:
            rep.add("fixed-eval-steps", f"trial {t.index} ends at step {last.step} of {t.train_steps}: per-trial "
                                        "early stopping is not allowed (every trial runs to its end)",
                    f"{name}:{last.line_no}")
        elif steps != ref:
            rep.add("fixed-eval-steps", f"trial {t.index} evaluated at different steps than trial 0 "
                                        f"({len(steps)} vs {len(ref)} evals): the claimed step must be a fixed eval "
                                        "step shared by all trials", f"{name}:{t.evals[0].line_no}")
    from optbench.results import rule_policy

    c = rule_policy.for_log(log, override=rule, track=track.name)
    v = stats.evaluate_runs(log.run_records(c.target), c.rule, c.target)
    rep.notes.append(f"log: {len(trials)} trial(s), run length(s) {sorted(lengths)}; verdict: "
                     + stats.format_verdict(v) + f" (rule {c.describe()})")
    return rep


# ----------------------------------------------------------------------------- entry point


def check(path: str | os.PathLike, *, log: str | os.PathLike | None = None, track: str | None = None,
          dynamic: bool | None = None, steps: int = 2, data_dir=None, rule: str | None = None) -> Report:
    """Check a script or a log (or a script and its log). OptbenchError (exit 2) for unreadable input."""
    from optbench.results import logparse

    p = Path(path)
    if not p.is_file():
        raise OptbenchError(f"{p}: no such file")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise OptbenchError(f"{p}: cannot read as text ({e})") from None
    rep = Report(str(p))
    if logparse.looks_like_log(text):
        if log is not None:
            raise OptbenchError(f"{p} is a log; give the script first and the log with --log")
        rep.extend(log_check(p, track=track, rule=rule))
        if dynamic:
            code = logparse.parse_log(p).code
            with tempfile.TemporaryDirectory(prefix="optbench-logcode-") as tmp:
                s = Path(tmp) / "train_gpt_simple.py"
                s.write_text(code)
                rep.extend(dynamic_check(s, track, steps=steps, data_dir=data_dir))
        return rep
    rep.extend(static_check(text, str(p), track))
    if dynamic is None or dynamic:
        rep.extend(dynamic_check(p, track, steps=steps, data_dir=data_dir))
    if log is not None:
        lp = Path(log)
        if not lp.is_file():
            raise OptbenchError(f"--log: {lp}: no such file")
        rep.extend(log_check(lp, script_text=text, script_name=str(p), track=track, rule=rule))
    return rep


__all__ = ["check", "static_check", "dynamic_check", "log_check", "Report", "Violation",
           "THIRD_PARTY_OPTIMIZERS", "CLI_MODULES", "expected_fingerprint"]
