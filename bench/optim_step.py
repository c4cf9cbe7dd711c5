"""Optimizer step time and state memory on the `small` track's real parameter shapes (CPU).

For every registered optimizer (``optbench.optim.names()``, so optimizers added later are included) this builds
the 162,354,816 parameters of the small track's GPT directly as tensors (no model):

    embed 50304x768, LM head 50304x768 + bias 50304, 12 blocks x (q, k, v, attn.proj 768x768 + 768 bias,
    mlp.fc 3072x768 + 3072 bias, mlp.proj 768x3072 + 768 bias, norm1 / norm2 gains 768), embedding norm and
    final norm gains 768

gives them random gradients (two fixed random sets, alternated, so no time goes into drawing numbers), runs one
untimed warm-up step (reported separately as "first step": it allocates state and, for SOAP, builds the
eigenbases), then times ``--steps`` steps and reports the median and the amortised mean. Optimizers with a
``precondition_frequency`` default are timed over at least that many steps so the window contains a
preconditioner refresh (Kron refreshes its preconditioner every step for the first 500 steps). State memory is
the sum of the bytes of all distinct tensors reachable from ``opt.state`` after the timed steps. Both are also
given relative to ``torch.optim.AdamW`` (defaults) on the same parameters; optimizers registered as
``matrix_only`` (Muon family) get only the >= 2-D parameters and are compared with AdamW on those.

Each optimizer runs in its own child process with a wall-clock budget (``--budget`` seconds, setup included);
an optimizer that does not finish is reported as too slow at that scale with whatever it did finish (state size,
first-step time) rather than skipped. Optimizers use their constructor defaults unless ``--opt-kwargs`` says
otherwise.

Usage::

    python bench/optim_step.py                          # full scale, all optimizers
    python bench/optim_step.py --optimizers adamw,soap --steps 10 --out bench.md
    python bench/optim_step.py --scale 0.25             # quick run: see --scale

``--scale s`` multiplies the vocabulary (50304), the model width (768) and the MLP width (3072) by ``s``
(rounded, at least 1; the 12 layers are kept), so parameter count shrinks roughly by s^2 and the
second-order optimizers' factor sizes by s. Numbers at a reduced scale are for smoke tests only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

FULL = {"vocab": 50304, "d": 768, "mlp": 3072, "layers": 12}


def small_track_shapes(scale: float = 1.0) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of every parameter of the small track's GPT, optionally scaled down."""
    v, d, f = (max(1, round(FULL[k] * scale)) for k in ("vocab", "d", "mlp"))
    shapes: list[tuple[str, tuple[int, ...]]] = [("embed.weight", (v, d)), ("embed_norm.weight", (d,))]
    for i in range(FULL["layers"]):
        b = f"blocks.{i}."
        shapes.append((b + "norm1.weight", (d,)))
        for n in ("q", "k", "v", "proj"):
            shapes += [(b + f"attn.{n}.weight", (d, d)), (b + f"attn.{n}.bias", (d,))]
        shapes.append((b + "norm2.weight", (d,)))
        shapes += [(b + "mlp.fc.weight", (f, d)), (b + "mlp.fc.bias", (f,))]
        shapes += [(b + "mlp.proj.weight", (d, f)), (b + "mlp.proj.bias", (d,))]
    shapes += [("final_norm.weight", (d,)), ("lm_head.weight", (v, d)), ("lm_head.bias", (v,))]
    return shapes


def state_bytes(state) -> int:
    """Bytes of all distinct tensors reachable from an optimizer's state (views of one storage counted once)."""
    import torch

    seen: set[tuple[int, int]] = set()
    total = 0

    def walk(x):
        nonlocal total
        if isinstance(x, torch.Tensor):
            key = (x.untyped_storage().data_ptr(), x.untyped_storage().nbytes())
            if key not in seen:
                seen.add(key)
                total += x.untyped_storage().nbytes()
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v)

    walk(dict(state))
    return total


# ------------------------------------------------------------------------------------------------------------
# child: one optimizer, JSON lines on stdout
# ------------------------------------------------------------------------------------------------------------
def _emit(**kw) -> None:
    print(json.dumps(kw), flush=True)


def child(name: str, scale: float, steps: int, budget: float, matrices_only: bool, kwargs: dict) -> None:
    import torch

    import optbench.optim as zoo
    from optbench.optim.protocol import set_train_mode

    t_setup = time.perf_counter()
    torch.manual_seed(0)
    shapes = [s for _, s in small_track_shapes(scale) if not matrices_only or len(s) >= 2]
    params = [torch.nn.Parameter(torch.randn(s)) for s in shapes]  # one RNG pass; the values do not matter
    grads = [p.detach() * 1e-2 for p in params]
    cls = torch.optim.AdamW if name == "__adamw__" else zoo.get(name)
    opt = cls(params, **kwargs)
    set_train_mode([opt])
    freq = opt.defaults.get("precondition_frequency")
    n_steps = max(steps, int(freq) if isinstance(freq, int) else 0)
    _emit(event="built", numel=sum(p.numel() for p in params), n_params=len(params), n_steps=n_steps,
          precondition_frequency=freq, threads=torch.get_num_threads(), setup=time.perf_counter() - t_setup)

    def one() -> float:
        for p, g in zip(params, grads):
            p.grad = g
        t0 = time.perf_counter()
        opt.step()
        return time.perf_counter() - t0

    _emit(event="warmup", seconds=one(), state_bytes=state_bytes(opt.state))
    # the timing budget may cut the window short, but never before a preconditioner refresh is included
    min_steps = int(freq) if isinstance(freq, int) else 1
    t_timed = time.perf_counter()
    for i in range(1, n_steps + 1):
        _emit(event="step", seconds=one())
        if i >= min_steps and time.perf_counter() - t_timed > budget:
            break
    _emit(event="done", state_bytes=state_bytes(opt.state))


# ------------------------------------------------------------------------------------------------------------
# parent
# ------------------------------------------------------------------------------------------------------------
def run_one(name: str, args, matrices_only: bool, kwargs: dict) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name, "--scale", str(args.scale),
           "--steps", str(args.steps), "--budget", str(args.budget), "--child-kwargs", json.dumps(kwargs)]
    if matrices_only:
        cmd.append("--matrices-only")
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1]) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    events: list[dict] = []
    err: list[str] = []

    def read_out():
        for line in proc.stdout:
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                err.append(line)

    def read_err():
        err.extend(proc.stderr)

    threads = [threading.Thread(target=read_out, daemon=True), threading.Thread(target=read_err, daemon=True)]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    timed_out = False
    try:
        proc.wait(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        proc.kill()
        proc.wait()
    for t in threads:
        t.join(timeout=5)
    out = {"name": name, "matrices_only": matrices_only, "wall": time.perf_counter() - t0, "timed_out": timed_out,
           "returncode": proc.returncode, "stderr": "".join(err)[-2000:], "kwargs": kwargs}
    for e in events:
        if e["event"] == "built":
            out.update(numel=e["numel"], n_steps=e["n_steps"], freq=e["precondition_frequency"])
            out["setup"] = e["setup"]
        elif e["event"] == "warmup":
            out.update(first=e["seconds"], state=e["state_bytes"])
        elif e["event"] == "step":
            out.setdefault("steps", []).append(e["seconds"])
        elif e["event"] == "done":
            out.update(state=e["state_bytes"], done=True)
    return out


def _fmt_s(x: float) -> str:
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"


def table(results: list[dict], baselines: dict[bool, dict], args) -> str:
    lines = [
        "| optimizer | params | median step (s) | mean step (s) | x AdamW (median) | state (MB) | x AdamW state "
        "| first step (s) | timed steps | notes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        base = baselines.get(r["matrices_only"])
        scope = ">=2-D only" if r["matrices_only"] else "all"
        state = r.get("state")
        state_mb = f"{state / 2**20:.0f}" if state is not None else "n/a"
        rel_state = f"{state / base['state']:.2f}" if state is not None and base and base.get("state") else "n/a"
        first = _fmt_s(r["first"]) if "first" in r else "n/a"
        notes = []
        if r.get("kwargs"):
            notes.append("kwargs " + json.dumps(r["kwargs"]))
        if r.get("done"):
            st = r["steps"]
            med, mean = statistics.median(st), statistics.fmean(st)
            rel = f"{med / statistics.median(base['steps']):.2f}" if base and base.get("done") else "n/a"
            if len(st) < r["n_steps"]:
                notes.append(f"timed {len(st)} of {r['n_steps']} steps (--budget {args.budget:.0f} s)")
            if r.get("freq"):
                refresh = "includes" if len(st) >= r["freq"] else "does NOT include"
                notes.append(f"precondition_frequency {r['freq']}: timed window {refresh} a refresh")
            lines.append(f"| {r['name']} | {scope} | {_fmt_s(med)} | {_fmt_s(mean)} | {rel} | {state_mb} | "
                         f"{rel_state} | {first} | {len(st)} | {'; '.join(notes)} |")
        else:
            n = len(r.get("steps", []))
            if r["timed_out"]:
                if "setup" not in r:
                    what = "while building parameters / the optimizer"
                elif "first" not in r:
                    what = f"during the warm-up (first) step (setup took {r['setup']:.0f} s)"
                else:
                    what = f"after {n} of {r.get('n_steps', '?')} timed steps"
                notes.insert(0, f"**too slow at this scale**: killed at the {args.timeout:.0f} s limit {what}")
            else:
                tail = r["stderr"].strip().splitlines()[-1:] or ["no output"]
                notes.insert(0, f"**failed** (exit {r['returncode']}): {tail[0][:200]}")
            med = _fmt_s(statistics.median(r["steps"])) if n else "n/a"
            mean = _fmt_s(statistics.fmean(r["steps"])) if n else "n/a"
            lines.append(f"| {r['name']} | {scope} | {med} | {mean} | n/a | {state_mb} | {rel_state} | {first} | "
                         f"{n} | {'; '.join(notes)} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--optimizers", default="", help="comma-separated registry names (default: all registered)")
    ap.add_argument("--steps", type=int, default=5, help="timed steps after the warm-up (default 5; raised to "
                    "precondition_frequency where an optimizer has one)")
    ap.add_argument("--scale", type=float, default=1.0, help="shrink vocab / width / MLP width by this factor "
                    "(quick runs; default 1 = the real small-track shapes)")
    ap.add_argument("--budget", type=float, default=15.0, help="stop timing an optimizer after this many seconds "
                    "of timed steps (at least one step, and at least precondition_frequency steps; default 15)")
    ap.add_argument("--timeout", type=float, default=75.0, help="hard wall-clock limit per optimizer, setup and "
                    "warm-up included; beyond it the optimizer is reported as too slow (default 75)")
    ap.add_argument("--opt-kwargs", default="{}", help='JSON {name: {kwarg: value}} passed to constructors, e.g. '
                    '\'{"shampoo": {"precondition_frequency": 10}}\'')
    ap.add_argument("--out", default=None, help="also write the table (with the command and settings) to FILE.md")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--child-kwargs", default="{}", help=argparse.SUPPRESS)
    ap.add_argument("--matrices-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.steps < 1 or args.scale <= 0 or args.budget <= 0 or args.timeout <= 0:
        ap.error("--steps must be >= 1; --scale, --budget and --timeout > 0")

    if args.child:
        child(args.child, args.scale, args.steps, args.budget, args.matrices_only, json.loads(args.child_kwargs))
        return 0

    import optbench.optim as zoo

    names = [n.strip() for n in args.optimizers.split(",") if n.strip()] or zoo.names()
    infos = {n: zoo.info(n) for n in names}  # raises with the list of known names on a typo
    opt_kwargs = json.loads(args.opt_kwargs)
    shapes = small_track_shapes(args.scale)
    total = sum(__import__("math").prod(s) for _, s in shapes)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{len(shapes)} parameter tensors, {total:,} parameters (scale {args.scale}); timing budget "
          f"{args.budget:.0f} s, limit {args.timeout:.0f} s per optimizer; load average {load:.1f} on "
          f"{os.cpu_count()} CPUs", flush=True)

    baselines: dict[bool, dict] = {}
    for mo in sorted({i.matrix_only for i in infos.values()}):
        print(f"baseline torch.optim.AdamW ({'>=2-D params' if mo else 'all params'}) ...", flush=True)
        baselines[mo] = run_one("__adamw__", args, mo, {})
    results = []
    for n in names:
        print(f"{n} ...", flush=True)
        results.append(run_one(infos[n].name, args, infos[n].matrix_only, opt_kwargs.get(n, {})))
    for mo, b in baselines.items():
        results.insert(0, {**b, "name": "torch.optim.AdamW (baseline)" + (", >=2-D" if mo else "")})
    text = table(results, baselines, args)
    print()
    print(text)
    if args.out:
        import platform

        import torch

        header = (
            f"# Optimizer step benchmark\n\nCommand: `python bench/optim_step.py {' '.join(argv or sys.argv[1:])}`\n\n"
            f"{total:,} parameters (scale {args.scale}), torch {torch.__version__}, {torch.get_num_threads()} "
            f"threads, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average "
            f"{load:.1f} at the start (other processes share the CPUs), {args.steps} timed steps (more where "
            f"precondition_frequency requires) within a {args.budget:.0f} s timing budget, hard limit "
            f"{args.timeout:.0f} s per optimizer. Setup is not timed; the warm-up step is reported separately.\n\n"
        )
        Path(args.out).write_text(header + text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
