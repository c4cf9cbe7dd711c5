"""One trial = one normal optbench run (optbench.train.loop.run) in the sweep's trial folder, scored by the sweep's
objective. The folder holds what any run holds (train_log.txt, metrics.jsonl, results.json) plus trial.json,
the sweep's record of the trial (state, params, score or reason, device-seconds). A pruned trial stops mid-run and
has no results.json, so its numbers can never reach a leaderboard.
"""

from __future__ import annotations

import json
import os
import socket
import time
import traceback
from pathlib import Path

import optuna

from optbench.errors import OptbenchError
from optbench.fsutil import atomic_write_text
from optbench.sweep.objective import score
from optbench.sweep.settings import trial_recipe
from optbench.trackers import tracked

TRIAL_FILE = "trial.json"


class TrialFailed(Exception):
    """A trial that ran and failed (diverged, or an error): recorded as failed with its reason; the worker goes on."""


class PruneOnEval:
    """Metric sink: reports the first seed's eval losses to Optuna and stops the run when the pruner says so."""

    def __init__(self, trial: optuna.Trial, seed: int):
        self.trial, self.seed = trial, seed
        self.last_step: int | None = None
        self.diverged: str | None = None

    def __call__(self, record: dict) -> None:
        if record.get("event") == "diverged":
            self.diverged = record.get("message")
        if record.get("event") != "eval" or record.get("seed") != self.seed:
            return
        step, loss = int(record["step"]), float(record["val_loss"])
        self.trial.report(loss, step)
        self.last_step = step
        if step > 0 and self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step} (val loss {loss:.5f})")


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_trial(sweep, trial: optuna.Trial, env, *, device: str = "cpu", data_dir: str | Path | None = None,
              trackers: tuple[str, ...] = (), agent_id: str = "local", progress: bool = False,
              timings: dict | None = None) -> float:
    """Run and score one trial; raises TrialFailed (recorded failed) or optuna.TrialPruned. `timings` gets
    run_s (inside the optbench run) and setup_s (this function's own work before it)."""
    from optbench.data.corpus import default_data_dir
    from optbench.train.loop import RunConfig, run

    timings = {} if timings is None else timings
    t_entry = time.perf_counter()
    params = sweep.space.suggest(trial)
    out = sweep.trial_dir(trial.number)
    record = {"sweep": sweep.name, "trial": trial.number, "params": params, "worker": worker_id()}
    trial.set_user_attr("run_dir", str(out))
    trial.set_user_attr("worker", record["worker"])
    if out.exists() and any(out.iterdir()):
        raise _fail(trial, out, record, "error", f"run folder {out} is not empty (runs_dir shared by two sweeps?)", 0.0)
    track = sweep.track
    data = data_dir or sweep.spec.data_dir or default_data_dir(track.vocab_size)
    t0 = time.perf_counter()
    try:
        recipe, text = trial_recipe(sweep.recipe, sweep.spec.recipe_text, params)
        cfg = RunConfig(track=track, recipe=recipe, recipe_text=text, seeds=sweep.seeds, out_dir=out,
                        data_dir=Path(data), device=device, agent_id=agent_id, progress=progress,
                        experiment=f"sweep {sweep.name} trial {trial.number}",
                        extra_notes=[f"sweep {sweep.name} trial {trial.number}"])
        pruner = PruneOnEval(trial, sweep.seeds[0])
        t_run = time.perf_counter()
        timings["setup_s"] = t_run - t_entry
        try:
            with tracked(trackers, cfg, f"{sweep.name}-t{trial.number:04d}", extra_sinks=[pruner]):
                results, diverged = run(cfg, env)
        finally:
            timings["run_s"] = time.perf_counter() - t_run
    except optuna.TrialPruned as e:
        secs = _device_seconds(t0, env)
        trial.set_user_attr("device_seconds", secs)
        trial.set_user_attr("pruned_at_step", pruner.last_step)
        _write(out, {**record, "state": "pruned", "reason": str(e), "device_seconds": secs})
        raise
    except KeyboardInterrupt:
        secs = _device_seconds(t0, env)
        trial.set_user_attr("device_seconds", secs)
        trial.set_user_attr("fail_kind", "interrupted")
        _write(out, {**record, "state": "interrupted", "device_seconds": secs})
        raise
    except OptbenchError as e:
        raise _fail(trial, out, record, "error", str(e), _device_seconds(t0, env)) from None
    except Exception as e:  # noqa: BLE001 - any other crash fails this trial, with its traceback kept
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "error.txt", traceback.format_exc())
        raise _fail(trial, out, record, "error", f"{type(e).__name__}: {e}", _device_seconds(t0, env)) from None
    secs = _device_seconds(t0, env)
    if diverged:
        raise _fail(trial, out, record, "diverged", pruner.diverged or "diverged (NaN/Inf loss)", secs)
    s = score(results, sweep.spec.objective, track.exchange_rate)
    for k, v in (("device_seconds", secs), ("mean_final_val_loss", s.mean_final), ("claimed_step", s.claimed_step),
                 ("passes_rule", s.passes), ("train_steps", results.train_steps)):
        trial.set_user_attr(k, v)
    _write(out, {**record, "state": "complete", "value": s.value, "mean_final_val_loss": s.mean_final,
                 "claimed_step": s.claimed_step, "passes_rule": s.passes, "device_seconds": secs})
    return s.value


def _device_seconds(t0: float, env) -> float:
    return round((time.perf_counter() - t0) * env.world_size, 3)


def _fail(trial, out: Path, record: dict, kind: str, reason: str, secs: float) -> TrialFailed:
    trial.set_user_attr("fail_kind", kind)
    trial.set_user_attr("fail_reason", reason)
    trial.set_user_attr("device_seconds", secs)
    _write(out, {**record, "state": "failed", "fail_kind": kind, "reason": reason, "device_seconds": secs})
    return TrialFailed(reason)


def _write(out: Path, record: dict) -> None:
    atomic_write_text(Path(out) / TRIAL_FILE, json.dumps(record, indent=2, default=str) + "\n")
