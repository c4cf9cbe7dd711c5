"""A sweep worker: takes trials from the shared study until the budget is spent (or its own --trials are done).

Any number of workers may run at once, on one machine or many. Each trial runs under Optuna's heartbeat; a
worker that dies leaves its trial to be failed after the grace period and retried by another worker. A trial
that diverges or errors is recorded failed with its reason and the worker goes on (it stops after
MAX_CONSECUTIVE_ERRORS errors in a row: that is a broken setup, not a bad configuration). Ctrl-C marks the
running trial lost and enqueues it again, so `worker` resumes the sweep with nothing finished lost.

Per trial the worker appends {trial, state, run_s, overhead_s, optbench_s} to runs_dir/workers/HOST-PID.jsonl:
run_s is the optbench run, overhead_s everything else of the trial (Optuna's ask/sample/tell and storage, plus
optbench_s of this package's own bookkeeping).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import optuna

from optbench.errors import OptbenchError
from optbench.sweep import storage as storage_mod
from optbench.sweep.status import COUNTED, SweepStatus, sweep_status, trial_kind
from optbench.sweep.study import open_sweep
from optbench.sweep.trial import TrialFailed, run_trial, worker_id

MAX_CONSECUTIVE_ERRORS = 3


@dataclass
class TrialTiming:
    number: int
    state: str
    run_s: float  # the optbench run (loop.run)
    overhead_s: float  # the rest of the trial: Optuna (ask, sampling, tell, heartbeat, storage) + optbench_s
    optbench_s: float  # this package's bookkeeping (recipe, config, trial.json, status)


@dataclass
class WorkerReport:
    sweep: str
    trials: list[TrialTiming] = field(default_factory=list)
    stopped: str = ""
    status: SweepStatus | None = None

    def summary(self) -> str:
        if not self.trials:
            return f"worker ran no trial: {self.stopped}"
        run = sum(t.run_s for t in self.trials)
        over = sum(t.overhead_s for t in self.trials)
        n = len(self.trials)
        return (f"worker ran {n} trial(s) ({run:.1f} s of runs, {over / n:.3f} s overhead per trial = "
                f"{100 * over / max(run, 1e-9):.2f} % of run time); stopped: {self.stopped}")


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _fmt_params(params: dict) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def run_worker(name: str, storage: str | None = None, *, n_trials: int | None = None, device: str = "cpu",
               data_dir: str | Path | None = None, runs_dir: str | Path | None = None, threads: int | None = None,
               trackers: tuple[str, ...] = (), heartbeat_interval: int = storage_mod.HEARTBEAT_INTERVAL,
               grace_period: int | None = None, max_retry: int = storage_mod.MAX_RETRY,
               workspace: str | None = None, agent_id: str | None = None, seed: int | None = None,
               progress: bool = False, log: Callable[[str], None] = _stderr) -> WorkerReport:
    """Run trials of sweep `name` until its budget is spent or `n_trials` of them ran here."""
    import torch

    from optbench.train import distributed

    if threads:
        torch.set_num_threads(threads)
    sweep = open_sweep(name, storage, heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                       max_retry=max_retry, sampler_seed=seed, runs_dir=runs_dir)
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the worker prints each trial's outcome (and reason) itself
    env = distributed.setup(device)
    if env.world_size != 1:
        raise OptbenchError("sweep worker: run one process per worker (no torchrun); start more workers instead")
    presence = None
    if workspace is not None:
        from optbench.sweep.presence import SweepPresence

        presence = SweepPresence(workspace, agent_id, sweep)
        presence.start(sweep_status(sweep))
    agent = agent_id or os.environ.get("OPTBENCH_AGENT_ID") or "local"
    report = WorkerReport(sweep.name)
    timing_file = sweep.runs_dir / "workers" / f"{worker_id().replace(':', '-')}.jsonl"
    timing_file.parent.mkdir(parents=True, exist_ok=True)
    errors_in_row = 0
    log(f"worker {worker_id()} on sweep {sweep.name} ({storage_mod.redact(sweep.storage_url)}); "
        f"trial folders in {sweep.runs_dir}")
    while n_trials is None or len(report.trials) < n_trials:
        _fail_stale(sweep)  # before counting: a dead worker's trial must not hold the last slot of the budget
        status = sweep_status(sweep)
        why = status.spent()
        if why:
            report.stopped = why
            break
        box: dict = {}

        def objective(trial: optuna.Trial) -> float:
            box["trial"] = trial
            t0 = time.perf_counter()
            if _surplus(sweep, trial):
                trial.set_user_attr("fail_kind", "surplus")
                raise TrialFailed("the budget was spent by other workers")
            try:
                return run_trial(sweep, trial, env, device=device, data_dir=data_dir, trackers=trackers,
                                 agent_id=agent, progress=progress, timings=box)
            finally:
                box["objective_s"] = time.perf_counter() - t0

        t_iter = time.perf_counter()
        try:
            sweep.study.optimize(objective, n_trials=1, catch=(TrialFailed,))
        except KeyboardInterrupt:
            _requeue(sweep, box.get("trial"), log)
            raise
        iter_s = time.perf_counter() - t_iter
        trial = box.get("trial")
        if trial is None:
            continue
        frozen = sweep.study._storage.get_trial(trial._trial_id)
        kind = trial_kind(frozen)
        if kind == "surplus":
            report.stopped = "the budget was spent by other workers"
            break
        t_book = time.perf_counter()
        status = sweep_status(sweep)
        line = _trial_line(frozen, kind, status)
        if presence is not None:
            presence.update(status)
        book_s = time.perf_counter() - t_book + box.get("setup_s", 0.0)
        run_s = box.get("run_s", 0.0)
        timing = TrialTiming(frozen.number, kind, round(run_s, 4), round(iter_s - run_s + book_s, 4), round(book_s, 4))
        report.trials.append(timing)
        with open(timing_file, "a") as f:
            f.write(json.dumps(vars(timing)) + "\n")
        log(line + f" [{timing.run_s:.1f} s run, {timing.overhead_s:.3f} s overhead]")
        errors_in_row = errors_in_row + 1 if frozen.user_attrs.get("fail_kind") == "error" else 0
        if errors_in_row >= MAX_CONSECUTIVE_ERRORS:
            report.stopped = f"{errors_in_row} trials in a row failed with errors (last: " \
                             f"{frozen.user_attrs.get('fail_reason')}); fix the setup and start the worker again"
            break
    else:
        report.stopped = f"ran the {n_trials} trial(s) asked of this worker"
    report.status = sweep_status(sweep)
    if presence is not None and report.status.done():
        presence.finish(report.status)
    return report


def _fail_stale(sweep) -> None:
    """Optuna's heartbeat check (also run before each ask): stale running trials become failed, then retried."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(sweep.study)


def _surplus(sweep, trial: optuna.Trial) -> bool:
    """True when trials numbered before this one already use the whole --max-trials (two workers raced)."""
    cap = sweep.spec.max_trials
    if cap is None:
        return False
    before = [t for t in sweep.study.get_trials(deepcopy=False) if t.number < trial.number]
    return sum(trial_kind(t) in COUNTED for t in before) >= cap


def _requeue(sweep, trial, log) -> None:
    """After Ctrl-C: the interrupted trial is failed by Optuna; enqueue its params so a resumed sweep reruns it."""
    if trial is None:
        return
    frozen = sweep.study._storage.get_trial(trial._trial_id)
    if frozen.params:
        sweep.study.enqueue_trial(frozen.params, user_attrs={"retry_of": frozen.number})
        log(f"interrupted: trial {frozen.number} will be rerun by the next worker")


def _trial_line(t, kind: str, status: SweepStatus) -> str:
    what = {"complete": f"value {t.value:.5g}" if t.value is not None else "complete",
            "pruned": f"pruned at step {t.user_attrs.get('pruned_at_step')}",
            "failed": f"failed: {t.user_attrs.get('fail_reason')}"}.get(kind, kind)
    best = status.best
    best_s = f"best {best.value:.5g} (trial {best.number})" if best is not None else "no best yet"
    cap = f"/{status.max_trials}" if status.max_trials else ""
    return (f"trial {t.number} {what} ({_fmt_params(t.params)}); {status.finished}{cap} done, "
            f"{status.counts.get('running', 0)} running, {best_s}, {status.device_hours:.3f} device-h")
