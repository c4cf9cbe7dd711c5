"""The benchmark's tuning shortcut as one call: stage 1 tunes every knob of the space on runs of
train_steps x fraction; stage 2 runs at full length, with every other knob fixed at the stage-1 best, and retunes
only lr and weight decay in a log range of `around`x either side of the stage-1 best.

Stages are the sweeps NAME-stage1 and NAME-stage2. Several processes may run the same shortcut at once: each
works on stage 1 until its budget is spent, waits for stage 1's running trials, then joins stage 2 (created
once, from the same finished stage 1, so every process derives the same stage-2 space).
"""

from __future__ import annotations

import time

from optbench.errors import OptbenchError
from optbench.sweep.space import decode_params, space_from_dict
from optbench.sweep.stages import stage_name
from optbench.sweep.status import best_trial, sweep_status
from optbench.sweep.study import create_sweep, open_sweep
from optbench.sweep.worker import run_worker

RETUNED = ("lr", "weight_decay")


def stage1_space(space: dict, fraction: float) -> dict:
    """The space with any train_steps range scaled by the fraction."""
    out = dict(space)
    if "train_steps" in out:
        ts = dict(out["train_steps"])
        kind = next(k for k in ("int", "categorical") if k in ts)
        if kind == "int":
            ts["int"] = [max(1, round(v * fraction)) for v in ts["int"]]
            if ts.get("step", 1) > 1:
                ts["step"] = max(1, round(ts["step"] * fraction))
        else:
            ts["categorical"] = [max(1, round(v * fraction)) for v in ts["categorical"]]
        out["train_steps"] = ts
    return out


def stage2_plan(stage1, fraction: float, around: float) -> tuple[dict, list[str]]:
    """(space of lr and weight_decay around the stage-1 best, --set settings fixing every other stage-1 knob)."""
    best = best_trial(stage1.study.get_trials(deepcopy=False))
    if best is None:
        raise OptbenchError(f"shortcut: stage 1 ({stage1.name}) has no complete trial; nothing to continue from")
    params = decode_params(best.params)
    retune = [k for k in RETUNED if k in params]
    if not retune:
        raise OptbenchError(f"shortcut: the space tunes neither of {', '.join(RETUNED)}; stage 2 retunes those")
    space = {}
    for k in retune:
        v = float(params[k])
        if v > 0:
            space[k] = {"log": [v / around, v * around]}
        else:  # a zero weight decay: look just above it
            hi = stage1.space.params[k].high
            space[k] = {"uniform": [0.0, float(hi) / around]}
    from optbench.sweep.settings import settings_of

    fixed = {k: v for k, v in params.items() if k not in retune}
    if "train_steps" in fixed:
        fixed["train_steps"] = round(fixed["train_steps"] / fraction)
    return space, settings_of(fixed)


def _wait_for_running(sweep, poll_s: float, log) -> None:
    while sweep_status(sweep).counts.get("running", 0):
        log(f"shortcut: waiting for {sweep_status(sweep).counts['running']} running trial(s) of {sweep.name}")
        time.sleep(poll_s)


def run_shortcut(name: str, *, track: str, space, fraction: float = 0.5, optimizer: str | None = None,
                 recipe: str | None = None, storage: str | None = None, sampler: str = "tpe", seeds: int = 1,
                 objective: str = "loss", stage1_trials: int = 24, stage2_trials: int = 12, around: float = 3.0,
                 pruner: str = "none", runs_dir=None, poll_s: float = 5.0, **worker_kw) -> list:
    """Run (or join) both stages; returns [stage1 sweep, stage2 sweep]."""
    from pathlib import Path

    from optbench.sweep.space import load_space
    from optbench.tracks import get_track

    if not 0 < fraction < 1:
        raise OptbenchError(f"--fraction {fraction}: must be between 0 and 1 (0.5 = half-length runs)")
    if around <= 1:
        raise OptbenchError(f"--around {around}: must be > 1 (stage 2 searches best/around .. best*around)")
    sp = space if isinstance(space, dict) else load_space(space).to_dict()
    log = worker_kw.get("log") or (lambda line: print(line, flush=True))
    root = Path(runs_dir) if runs_dir else Path("sweeps") / name
    common = dict(track=track, optimizer=optimizer, recipe=recipe, storage=storage, seeds=seeds, objective=objective,
                  pruner=pruner, resume=True, parent=name)
    from optbench.sweep.study import base_recipe

    base, _ = base_recipe(get_track(track).name, optimizer, recipe)
    full = base.train_steps or get_track(track).train_steps
    settings = [] if "train_steps" in sp else [f"train_steps={max(1, round(full * fraction))}"]
    s1 = create_sweep(stage_name(name, 1), space=space_from_dict(stage1_space(sp, fraction)), sampler=sampler,
                      max_trials=stage1_trials, settings=settings, stage=1, runs_dir=root / "stage1", **common)
    log(f"shortcut {name}: stage 1 ({s1.name}), {stage1_trials} trials at train_steps x {fraction}")
    run_worker(s1.name, storage, **worker_kw)
    _wait_for_running(s1, poll_s, log)
    space2, fixed = stage2_plan(open_sweep(s1.name, storage), fraction, around)
    stage2_sampler = "tpe" if sampler == "grid" else sampler
    s2 = create_sweep(stage_name(name, 2), space=space2, sampler=stage2_sampler, max_trials=stage2_trials,
                      settings=fixed, stage=2, runs_dir=root / "stage2", **common)
    log(f"shortcut {name}: stage 2 ({s2.name}), {stage2_trials} trials at full length, "
        f"{', '.join(space2)} around the stage-1 best; fixed: {', '.join(fixed) or 'nothing else'}")
    run_worker(s2.name, storage, **worker_kw)
    return [open_sweep(s1.name, storage), open_sweep(s2.name, storage)]
