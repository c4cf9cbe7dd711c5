"""Dynamic check of `optbench check` (scripts with the test-only switch; exported scripts have it).

The script runs in a subprocess (optbench.submission._harness) at nano size on CPU for a few optimizer steps. The
harness executes the script's top-level code with a namespace that sees every top-level binding (to record the
constructor call of every nn.Module class the script defines, so the model can be rebuilt at the track's full
size on the meta device); global module forward hooks find the model (the root-called module with the most
parameters); per optimizer step (global torch.optim step pre-hook) it counts the model's forwards in train mode
or with grad enabled and the tokens they consumed, and autograd backward/grad calls; and it records the token
rows of each step and of the first evaluation. Compared with the track: the parameter names/shapes/count (nano,
and full size by substituting the track's config into the captured constructor call), tokens per step, one
forward and one backward per microbatch, the data order (TokenStream windows) and the val rows (load_val).

What it cannot detect: code paths that behave differently on the official GPU path than in test mode (beyond
the constants the static check reads), official-path constants hidden in expressions, forwards that bypass
the model's __call__ (e.g. calling model.forward or functional code directly), a model class not defined at the
script's top level (no full-size fingerprint: reported as a note), optimizers that are not
torch.optim.Optimizer subclasses (no step boundary is seen: reported), anything after the first few steps, and
scripts in the plain upstream layout without the test-only switch (CUDA + FineWeb hard-wired): for those the
dynamic check is skipped with a note and only the static and log checks apply.
"""

from __future__ import annotations

import ast
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from optbench.submission.check.report import Report
from optbench.submission.check.static import TEST_ENV_PREFIX, resolve_track
from optbench.submission.export import TEST_BEGIN, TEST_END, TEST_ENV_TRACK, TORCHRUN_ENV


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
    track = resolve_track(track, ast.parse(src))
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
