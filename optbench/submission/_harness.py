"""Subprocess harness of `optbench check`'s dynamic check (run as `python -m optbench.submission._harness`).

    python -m optbench.submission._harness SCRIPT OUT.pt MAX_STEPS FULL_CONFIG_JSON [SHIM_TRACK DATA_DIR]

Executes SCRIPT's top-level code as __main__ (the caller sets the test-only switch in the environment; with
SHIM_TRACK, a plain upstream-layout script is rewritten and its process prepared by the shim, see
optbench.submission.shim) with a namespace that sees every top-level binding:
- nn.Module subclasses bound at top level get their __init__ wrapped to record the constructor call;
- global module forward hooks find root calls (a module call not nested in another): the root-called module with
  the most parameters is the model (DDP / compile wrappers unwrapped for the fingerprint). Its calls in train mode
  or with grad enabled are counted with their tokens and rows; eval-mode calls before the first step are the first
  evaluation's rows;
- torch.autograd.backward / torch.autograd.grad are counted (Tensor.backward goes through the former);
- a global optimizer step pre-hook closes a step's counts; after MAX_STEPS steps the run is stopped.
Writes OUT.pt: model fingerprint, the model rebuilt on the meta device with FULL_CONFIG substituted into its
constructor call, per-step counts and rows, the first evaluation's rows, and any error.
"""

from __future__ import annotations

import builtins
import dataclasses
import functools
import inspect
import json
import os
import sys
import traceback
import types


class _Stop(BaseException):
    """Raised from the optimizer step hook once enough steps were observed."""


def nparams_of(m) -> int:
    return sum(p.numel() for p in m.parameters())


def _unwrap(model):
    """The model inside DDP (`.module`) / torch.compile (`._orig_mod`) wrappers holding the same parameters."""
    import torch

    for _ in range(4):
        inner = getattr(model, "module", None)
        if not isinstance(inner, torch.nn.Module):
            inner = getattr(model, "_orig_mod", None)
        if isinstance(inner, torch.nn.Module) and nparams_of(inner) == nparams_of(model):
            model = inner
        else:
            break
    return model


def _fingerprint(model) -> dict:
    import math

    params = [(n, list(p.shape)) for n, p in model.named_parameters()]
    return {"names": [n for n, _ in params], "shapes": [s for _, s in params],
            "count": sum(math.prod(s) for _, s in params)}


def main(argv: list[str]) -> int:
    script, out, max_steps, full_json = argv[0], argv[1], int(argv[2]), argv[3]
    shim_track, shim_data = (argv[4], argv[5]) if len(argv) > 5 else (None, None)
    full = json.loads(full_json)
    import torch

    rec = {"model": None, "full": None, "full_error": None, "steps": [], "val_inputs": None, "error": None}
    S = {"model": None, "cur": None, "eval_rows": [], "eval_done": False}

    def new_step():
        return {"forwards": 0, "backwards": 0, "tokens": 0, "inputs": [], "targets": []}

    S["cur"] = new_step()

    # ---- backward counting
    real_backward, real_grad = torch.autograd.backward, torch.autograd.grad

    def counting_backward(*a, **k):
        S["cur"]["backwards"] += 1
        return real_backward(*a, **k)

    def counting_grad(*a, **k):
        S["cur"]["backwards"] += 1
        return real_grad(*a, **k)

    torch.autograd.backward = counting_backward
    torch.autograd.grad = counting_grad

    # ---- step boundaries
    def close_step():
        cur = S["cur"]
        if cur["forwards"] or cur["backwards"]:
            cat = (lambda xs: torch.cat(xs) if xs and all(x is not None for x in xs) else None)
            rec["steps"].append({"forwards": cur["forwards"], "backwards": cur["backwards"], "tokens": cur["tokens"],
                                 "inputs": cat(cur["inputs"]), "targets": cat(cur["targets"])})
            S["cur"] = new_step()

    def step_pre_hook(opt, args, kwargs):
        close_step()
        if len(rec["steps"]) >= max_steps:
            raise _Stop()

    from torch.optim.optimizer import register_optimizer_step_pre_hook

    register_optimizer_step_pre_hook(step_pre_hook)

    # ---- model forwards: global module hooks; a call not nested in another module call is a root call, and the
    # model is the root-called module with the most parameters (works whether or not it is bound at top level)
    depth = [0]

    def nparams(m):
        return sum(p.numel() for p in m.parameters())

    def on_root_call(mod, args):
        cur_model = S["model"]
        if cur_model is None or mod is not cur_model:
            if cur_model is not None and nparams(mod) <= nparams(cur_model) and type(mod) is not type(cur_model):
                return
            S["model"] = mod  # the largest so far, or a fresh instance of the model class (next trial)
        x = args[0] if args else None
        y = args[1] if len(args) > 1 else None
        if not isinstance(x, torch.Tensor):
            x = None
        if mod.training or torch.is_grad_enabled():
            if S["eval_rows"] and not S["eval_done"]:
                S["eval_done"] = True
            cur = S["cur"]
            cur["forwards"] += 1
            cur["tokens"] += x.numel() if x is not None else 0
            cur["inputs"].append(x.detach().cpu().clone() if x is not None else None)
            cur["targets"].append(y.detach().cpu().clone() if isinstance(y, torch.Tensor) else None)
        elif not rec["steps"] and not S["eval_done"] and x is not None:
            S["eval_rows"].append(x.detach().cpu().clone())

    def global_pre(mod, args):
        if depth[0] == 0 and any(True for _ in mod.parameters()):
            on_root_call(mod, args)
        depth[0] += 1

    def global_post(mod, args, output):
        depth[0] -= 1

    from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

    register_module_forward_pre_hook(global_pre)
    register_module_forward_hook(global_post, always_call=True)

    # ---- constructor capture
    def wrap_class(cls):
        init = cls.__dict__.get("__init__")
        if init is None or getattr(init, "_optbench_wrapped", False):
            return

        @functools.wraps(init)
        def wrapped(self, *a, **k):
            if "_optbench_ctor" not in self.__dict__:
                object.__setattr__(self, "_optbench_ctor", (type(self), a, k))
            return init(self, *a, **k)

        wrapped._optbench_wrapped = True
        cls.__init__ = wrapped

    def consider(value):
        if isinstance(value, type) and issubclass(value, torch.nn.Module) and value.__module__ == "__main__":
            wrap_class(value)

    class Namespace(dict):
        """Top-level locals that write through to the module globals and report every binding."""

        def __init__(self, g):
            super().__init__()
            self.g = g

        def __getitem__(self, k):
            return self.g[k]

        def __setitem__(self, k, v):
            self.g[k] = v
            consider(v)

        def __delitem__(self, k):
            del self.g[k]

        def __contains__(self, k):
            return k in self.g

        def get(self, k, default=None):
            return self.g.get(k, default)

        def keys(self):
            return self.g.keys()

        def items(self):
            return self.g.items()

        def values(self):
            return self.g.values()

        def __iter__(self):
            return iter(self.g)

        def __len__(self):
            return len(self.g)

    if shim_track is None:
        code = compile(open(script).read(), script, "exec", dont_inherit=True)
    else:
        from pathlib import Path

        from optbench.submission.shim.runner import prepare_process, shimmed_code
        from optbench.tracks import get_track

        code, _ = shimmed_code(Path(script), get_track(shim_track), max_steps + 1, Path.cwd())
        prepare_process(Path.cwd(), Path(shim_data), seed=None)
    mod = types.ModuleType("__main__")
    mod.__file__ = script
    sys.modules["__main__"] = mod
    g = mod.__dict__
    g["__builtins__"] = builtins
    sys.argv = [script]
    sys.path[0] = os.path.dirname(script)
    try:
        # a dict subclass as locals: CPython's STORE_NAME / LOAD_NAME go through __setitem__ / __getitem__
        exec(code, g, Namespace(g))
    except _Stop:
        pass
    except SystemExit as e:  # sys.exit() at the end of a script is not a failure
        if e.code not in (None, 0):
            rec["error"] = f"SystemExit: {e.code}"
    except BaseException as e:  # the script's own failure: report it
        tb = traceback.extract_tb(e.__traceback__)
        at = next((f"{os.path.basename(f.filename)}:{f.lineno}" for f in reversed(tb) if f.filename == script), "")
        rec["error"] = f"{type(e).__name__}: {e}" + (f" (at {at})" if at else "")
    close_step()
    model = _unwrap(S["model"]) if S["model"] is not None else None
    if model is not None:
        rec["model"] = _fingerprint(model)
        ctor = model.__dict__.get("_optbench_ctor")
        if ctor is None:
            rec["full_error"] = "the model's class was not defined at the script's top level"
        else:
            try:
                rec["full"] = _fingerprint(_rebuild(ctor, full))
            except Exception as e:  # noqa: BLE001 - report, do not crash
                rec["full_error"] = f"{type(e).__name__}: {e}"
    if S["eval_rows"]:
        rec["val_inputs"] = torch.cat(S["eval_rows"])
    torch.autograd.backward, torch.autograd.grad = real_backward, real_grad
    torch.save(rec, out)
    return 0


def _rebuild(ctor, full: dict):
    """The model class called again with the full-size config substituted, on the meta device."""
    import torch

    cls, a, k = ctor
    init = cls.__init__
    sig = inspect.signature(getattr(init, "__wrapped__", init))
    bound = sig.bind(None, *a, **k)
    for name, val in list(bound.arguments.items()):
        if dataclasses.is_dataclass(val) and not isinstance(val, type):
            names = {f.name for f in dataclasses.fields(val)}
            bound.arguments[name] = dataclasses.replace(val, **{f: v for f, v in full.items() if f in names})
        elif name in full:
            bound.arguments[name] = full[name]
    with torch.device("meta"):
        return cls(*bound.args[1:], **bound.kwargs)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
