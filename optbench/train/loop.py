"""One run = track + recipe + seed(s): the benchmark's training loop, as upstream train_gpt_simple.py.

Per step: the global batch (same token window for any world size) is split into microbatches; each does one
forward-backward on its summed loss; gradients are summed over ranks (DDP); the schedule sets every group's lr
from its initial lr; every optimizer steps. Validation runs on the track's cadence (and at the end) and its time is
not counted in train_time. Any optimizer hook (schedule-free eval swap, Sophia's Hessian pass) goes through the
protocol in optbench.standalone.training, and extra passes are counted. Those functions are the exported
script's own (see optbench.train.trial for how one seed uses them).
"""

from __future__ import annotations

import inspect
import json
import math
import signal
import sys
import time
from pathlib import Path

import torch

from optbench.data.loader import load_val
from optbench.data.shards import check_vocab, list_shards
from optbench.errors import OptbenchError
from optbench.fsutil import atomic_write_text
from optbench.optim.parts.build import part_modules
from optbench.results.schema import CurvePoint, RunRecord, collect_provenance, results_from_runs, save_results
from optbench.standalone.logformat import eval_line, version_line
from optbench.tracks import Track
from optbench.train import checkpoint as ckpt
from optbench.train.config import RUN_JSON, RunConfig
from optbench.train.distributed import DistEnv, any_rank
from optbench.train.interrupt import RunInterrupted, StopRequests
from optbench.train.runlog import RunLog
from optbench.train.trial import Diverged, Trial

__all__ = ["run", "train_one", "RunConfig", "Diverged", "RunInterrupted", "check_data", "check_resumable",
           "run_code_text", "eval_line_from"]


def check_data(track: Track, data_dir: Path) -> tuple[list[Path], list[Path]]:
    """Train and val shard lists, validated: headers, and token ids within the model's vocabulary."""
    train, val = list_shards(data_dir, "train"), list_shards(data_dir, "val")
    meta = Path(data_dir) / "meta.json"
    if meta.is_file():
        try:
            vocab = json.loads(meta.read_text()).get("vocab_size")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            raise OptbenchError(f"--data: {meta} is not a JSON object") from None
        if isinstance(vocab, int) and vocab > track.vocab_size:
            raise OptbenchError(f"--data: {data_dir} uses a {vocab}-id vocabulary but track {track.name} has "
                                f"{track.vocab_size} embedding rows")
    for f in train + val:
        check_vocab(f, track.vocab_size)
    return train, val


def run_code_text(cfg: RunConfig, optimizer_modules: list) -> str:
    """The code section of the log: recipe, track, and the full source of the optimizer and model modules."""
    import optbench.model.gpt as gpt_mod

    parts = [f"# optbench run: track={cfg.track.name} recipe={cfg.recipe.name} seeds={cfg.seeds} "
             f"train_steps={cfg.train_steps}" + (" UNOFFICIAL" if cfg.track.unofficial else ""),
             "# ---- recipe ----", cfg.recipe_text.rstrip(),
             "# ---- track (fixed fields) ----", "# " + json.dumps(cfg.track.fixed_fields(), default=str)]
    seen = set()
    for mod in optimizer_modules + [gpt_mod]:
        if mod.__name__ in seen:
            continue
        seen.add(mod.__name__)
        try:
            src = inspect.getsource(mod)
        except (OSError, TypeError):
            src = f"# source of {mod.__name__} unavailable"
        parts += [f"# ---- source: {mod.__name__} ----", src.rstrip()]
    return "\n".join(parts) + "\n"


def train_one(cfg: RunConfig, env: DistEnv, seed: int, train_files, val_data, log: RunLog | None,
              resume_from: Path | None = None, *, trial: Trial | None = None, stop: StopRequests | None = None,
              after_checkpoint=None) -> RunRecord:
    """Train one seed; returns its RunRecord (marked diverged on a NaN/Inf loss, after logging it; marked
    interrupted when `stop` saw a signal, after a final checkpoint when checkpointing is on)."""
    trial = trial or Trial(cfg, env, seed, train_files, val_data, log)
    trial.log = log
    if resume_from is not None:
        trial.resume(resume_from)
    eval_steps = set(cfg.track.eval_steps(cfg.train_steps))
    trial.begin()
    try:
        for step in range(trial.start, cfg.train_steps + 1):
            if stop is not None and step < cfg.train_steps and any_rank(stop.signum is not None, env):
                return _interrupt(trial, step, stop.signum or signal.SIGTERM, after_checkpoint)
            if trial.checkpoint_due(step):
                trial.checkpoint(step)
                if after_checkpoint is not None:
                    after_checkpoint(seed)
            if step in eval_steps:
                trial.evaluate(step)
            if step == cfg.train_steps:
                break
            trial.report(step, *trial.train_step(step))
    except Diverged as e:
        return trial.finish(diverged=e)
    return trial.finish()


def _interrupt(trial: Trial, step: int, signum: int, after_checkpoint) -> RunRecord:
    """Stop at this step boundary: a checkpoint here (when checkpointing is on), a line saying so, the record."""
    saved = ""
    if trial.cfg.checkpoint_every and step > trial.start:
        trial.checkpoint(step)
        if after_checkpoint is not None:
            after_checkpoint(trial.seed)
        saved = f"; checkpoint saved, `optbench run --resume {trial.cfg.out_dir}` continues"
    name = signal.Signals(signum).name
    trial.stop_line(f"interrupted by {name} at step {step}/{trial.T}{saved}")
    if trial.log is not None:
        trial.log.metric(event="interrupted", seed=trial.seed, step=step, signal=name)
    return trial.finish(interrupted=step)


def _trial_file(out_dir: Path, seed: int) -> Path:
    return Path(out_dir) / "trials" / f"seed{seed}.json"


def check_resumable(out: Path, seeds: list[int] | None = None) -> None:
    """OptbenchError if the run folder holds a finished run (results.json not marked interrupted) and `seeds` adds
    no seed to it (a finished, not diverged run may be resumed with more seeds: a study's final runs)."""
    f = Path(out) / "results.json"
    if not f.is_file():
        return
    try:
        data = json.loads(f.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise OptbenchError(f"--resume: {f} is not valid JSON; is {out} an optbench run folder?") from None
    if isinstance(data, dict) and data.get("interrupted"):
        return
    runs = data.get("runs") if isinstance(data, dict) else None
    how = "diverged" if any(isinstance(r, dict) and r.get("diverged") for r in runs or []) else "finished"
    stored = data.get("seeds") if isinstance(data, dict) else None
    if how == "finished" and seeds and isinstance(stored, list) and set(seeds) - set(stored):
        return
    raise OptbenchError(f"--resume: the run in {out} already {how} (its results.json is final); "
                        "nothing to resume: start a new run with another --out")


def run(cfg: RunConfig, env: DistEnv, *, resume: bool = False) -> tuple[object, bool]:
    """All seeds of a run; writes train_log.txt, metrics.jsonl and results.json. Returns (Results, diverged).

    Nothing is written before the data and the configuration have passed their checks (the first seed's model and
    optimizers are built first). A SIGINT/SIGTERM stops the run at a step boundary: results.json is written marked
    interrupted and RunInterrupted is raised."""
    from optbench import optim

    out = Path(cfg.out_dir)
    if resume:
        check_resumable(out, list(cfg.seeds))
    train_files, val_files = check_data(cfg.track, cfg.data_dir)
    val_data = tuple(t.to(env.device) for t in
                     load_val(val_files, cfg.track.val_tokens, cfg.track.val_row_tokens, env.rank, env.world_size))
    records: list[RunRecord] = []
    done_seeds = set()
    if resume:
        for seed in cfg.seeds:
            if _trial_file(out, seed).is_file():  # finished before the interruption
                records.append(RunRecord.model_validate_json(_trial_file(out, seed).read_text()))
                done_seeds.add(seed)
    pending = [s for s in cfg.seeds if s not in done_seeds]
    first = Trial(cfg, env, pending[0], train_files, val_data, None) if pending else None
    log = None
    if env.is_main:
        out.mkdir(parents=True, exist_ok=True)
        if not resume:
            atomic_write_text(out / RUN_JSON, json.dumps(cfg.to_json(), indent=2) + "\n")
        mods = [sys.modules[optim.get(cfg.recipe.optimizer).__module__]]
        if cfg.recipe.aux is not None:
            mods.append(sys.modules[optim.get(cfg.recipe.aux.optimizer).__module__])
        mods += [sys.modules[m] for m in part_modules(cfg.recipe)]
        log = RunLog(out, run_code_text(cfg, mods), version_line(env.device, env.world_size))
    wall = RunWall(out, env.is_main, resume)
    keep = 1 if cfg.keep_checkpoints is None else cfg.keep_checkpoints

    def after_checkpoint(seed: int) -> None:
        if env.is_main:
            ckpt.prune(out, seed, keep)
            wall.save()

    diverged, log_started, stopped = False, False, None
    with StopRequests() as stop:
        for seed in pending:
            resume_from = ckpt.latest_checkpoint(out, seed) if resume else None
            if log is not None:
                if not log_started:  # (re)write the log: header, finished trials, the resumed trial's evals so far
                    lines = [eval_line_from(p, cfg.train_steps) for r in records for p in r.curve]
                    if resume_from is not None:
                        partial = ckpt.load_checkpoint(resume_from, 0)["curve"]
                        lines += [eval_line_from(CurvePoint(**p), cfg.train_steps) for p in partial]
                    log.start(lines)
                    log_started = True
                if resume:
                    at = ckpt.checkpoint_step(resume_from) if resume_from is not None else 0
                    log.forget_after(seed, at)
                    log.metric(event="resume", seed=seed, step=at, from_checkpoint=resume_from is not None)
                    if resume_from is None:
                        print(f"optbench: seed {seed} has no checkpoint in {out}; it restarts from step 0",
                              file=sys.stderr, flush=True)
            trial = first if seed == pending[0] else None
            rec = train_one(cfg, env, seed, train_files, val_data, log, resume_from, trial=trial, stop=stop,
                            after_checkpoint=after_checkpoint)
            records.append(rec)
            if getattr(rec, "interrupted", False):
                stopped = (stop.signum or signal.SIGTERM, rec.interrupted_step)
                break
            if env.is_main:
                atomic_write_text(_trial_file(out, seed), rec.model_dump_json() + "\n")
                if cfg.keep_checkpoints is None:  # a finished seed is never resumed: its checkpoints go
                    ckpt.prune(out, seed, 0)
            if rec.diverged:
                diverged = True
                break
    results = None
    if env.is_main:
        wall.save()
        results = _results(cfg, env, records, wall.total(), interrupted=stopped is not None)
        save_results(results, out / "results.json")
        if stopped is None and cfg.keep_checkpoints is None:
            ckpt.remove_all(out)
    if stopped is not None:
        raise RunInterrupted(*stopped)
    return results, diverged


class RunWall:
    """The run's wall-clock time, across resumes: kept in RUN_DIR/wallclock.json at each checkpoint and at the end."""

    FILE = "wallclock.json"

    def __init__(self, out: Path, is_main: bool, resume: bool):
        self.path, self.is_main = Path(out) / self.FILE, is_main
        self.before = self._read() if resume else 0.0
        self.t0 = time.perf_counter()

    def _read(self) -> float:
        try:
            v = json.loads(self.path.read_text())["wallclock_s"]
        except (OSError, ValueError, KeyError, TypeError):
            return 0.0
        return float(v) if isinstance(v, (int, float)) and math.isfinite(v) and v >= 0 else 0.0

    def total(self) -> float:
        return self.before + time.perf_counter() - self.t0

    def save(self) -> None:
        if self.is_main:
            atomic_write_text(self.path, json.dumps({"wallclock_s": round(self.total(), 3)}) + "\n")


def eval_line_from(p: CurvePoint, train_steps: int) -> str:
    """A log line for an eval restored from a checkpoint (step_avg is not kept, so it reads nan)."""
    return eval_line(p.step, train_steps, p.val_loss, p.train_time_s or 0.0, float("nan"))


def _results(cfg: RunConfig, env: DistEnv, records: list[RunRecord], wall: float, interrupted: bool = False):
    notes = list(cfg.extra_notes)
    if any(r.diverged for r in records):
        d = next(r for r in records if r.diverged)
        notes.append(f"seed {d.seed} diverged (NaN/Inf loss) at step {getattr(d, 'diverged_step', '?')}; "
                     "the run set stopped there")
    if interrupted:
        notes.append(f"interrupted at step {records[-1].interrupted_step} of seed {records[-1].seed}; "
                     "`optbench run --resume` continues it")
    usable = [r for r in records if r.curve] or records
    device = str(env.device) if env.device.type == "cpu" else torch.cuda.get_device_name(env.device)
    kwargs = dict(agent_id=cfg.agent_id, experiment=cfg.experiment or f"{cfg.recipe.name} on {cfg.track.name}",
                  optimizer=cfg.recipe.optimizer, target=cfg.track.target, rule=cfg.track.rule,
                  track=cfg.track.name, key_hparams=dict(cfg.recipe.hparams), notes="; ".join(notes) or None,
                  recipe={"name": cfg.recipe.name, "config": cfg.recipe.model_dump()}, parts=cfg.recipe.part_names(),
                  provenance=collect_provenance(device=device, world_size=env.world_size),
                  train_steps=cfg.train_steps, wallclock_s=round(wall, 3), unofficial=cfg.track.unofficial,
                  compliance_notes=[f"unofficial overrides: {cfg.track.overrides}"] if cfg.track.unofficial else [])
    try:
        if interrupted:
            raise OptbenchError("interrupted: not a finished run set")
        return results_from_runs(usable, **kwargs)
    except OptbenchError:
        # nothing evaluable (diverged before the first eval): still record the failure
        from optbench.results.schema import Results

        return Results(agent_id=cfg.agent_id, experiment=kwargs["experiment"], optimizer=cfg.recipe.optimizer,
                       steps_to_target=None, final_val_loss=None, target=cfg.track.target, track=cfg.track.name,
                       runs=records, num_runs=len(records), notes=kwargs["notes"], reached_target=False,
                       passes_rule=False, unofficial=cfg.track.unofficial, train_steps=cfg.train_steps,
                       wallclock_s=round(wall, 3), **({"interrupted": True} if interrupted else {}))
