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
import sys
import time
from pathlib import Path

import torch

from optbench.data.loader import load_val
from optbench.data.shards import list_shards, read_token_count
from optbench.errors import OptbenchError
from optbench.fsutil import atomic_write_text
from optbench.optim.parts.build import part_modules
from optbench.results.schema import CurvePoint, RunRecord, collect_provenance, results_from_runs, save_results
from optbench.standalone.logformat import eval_line, version_line
from optbench.tracks import Track
from optbench.train import checkpoint as ckpt
from optbench.train.config import RUN_JSON, RunConfig
from optbench.train.distributed import DistEnv
from optbench.train.runlog import RunLog
from optbench.train.trial import Diverged, Trial

__all__ = ["run", "train_one", "RunConfig", "Diverged", "check_data", "run_code_text", "eval_line_from"]


def check_data(track: Track, data_dir: Path) -> tuple[list[Path], list[Path]]:
    """Train and val shard lists, validated: headers, and token ids within the model's vocabulary."""
    train, val = list_shards(data_dir, "train"), list_shards(data_dir, "val")
    for f in train + val:
        read_token_count(f)
    meta = Path(data_dir) / "meta.json"
    if meta.is_file():
        vocab = json.loads(meta.read_text()).get("vocab_size")
        if vocab and vocab > track.vocab_size:
            raise OptbenchError(f"--data: {data_dir} uses a {vocab}-id vocabulary but track {track.name} has "
                                f"{track.vocab_size} embedding rows")
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
              resume_from: Path | None = None) -> RunRecord:
    """Train one seed; returns its RunRecord (marked diverged on a NaN/Inf loss, after logging it)."""
    trial = Trial(cfg, env, seed, train_files, val_data, log)
    if resume_from is not None:
        trial.resume(resume_from)
    eval_steps = set(cfg.track.eval_steps(cfg.train_steps))
    trial.begin()
    try:
        for step in range(trial.start, cfg.train_steps + 1):
            if trial.checkpoint_due(step):
                trial.checkpoint(step)
            if step in eval_steps:
                trial.evaluate(step)
            if step == cfg.train_steps:
                break
            trial.report(step, *trial.train_step(step))
    except Diverged as e:
        return trial.finish(diverged=e)
    return trial.finish()


def _trial_file(out_dir: Path, seed: int) -> Path:
    return Path(out_dir) / "trials" / f"seed{seed}.json"


def run(cfg: RunConfig, env: DistEnv, *, resume: bool = False) -> tuple[object, bool]:
    """All seeds of a run; writes train_log.txt, metrics.jsonl and results.json. Returns (Results, diverged)."""
    from optbench import optim

    train_files, val_files = check_data(cfg.track, cfg.data_dir)
    val_data = tuple(t.to(env.device) for t in
                     load_val(val_files, cfg.track.val_tokens, cfg.track.val_row_tokens, env.rank, env.world_size))
    out = Path(cfg.out_dir)
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
    records: list[RunRecord] = []
    wall0 = time.perf_counter()
    diverged, log_started = False, False
    for seed in cfg.seeds:
        done_file = _trial_file(out, seed)
        if resume and done_file.is_file():  # finished before the interruption
            records.append(RunRecord.model_validate_json(done_file.read_text()))
            continue
        resume_from = ckpt.latest_checkpoint(out, seed) if resume else None
        if log is not None:
            if not log_started:  # (re)write the log: header, finished trials, the resumed trial's evals so far
                lines = [eval_line_from(p, cfg.train_steps) for r in records for p in r.curve]
                if resume_from is not None:
                    partial = ckpt.load_checkpoint(resume_from, 0)["curve"]
                    lines += [eval_line_from(CurvePoint(**p), cfg.train_steps) for p in partial]
                log.start(lines)
                log_started = True
            if resume_from is not None:
                log.metric(event="resume", seed=seed, step=int(resume_from.name.split("_")[1]))
        rec = train_one(cfg, env, seed, train_files, val_data, log, resume_from)
        records.append(rec)
        if env.is_main:
            atomic_write_text(done_file, rec.model_dump_json() + "\n")
        if rec.diverged:
            diverged = True
            break
    results = None
    if env.is_main:
        results = _results(cfg, env, records, time.perf_counter() - wall0)
        save_results(results, out / "results.json")
    return results, diverged


def eval_line_from(p: CurvePoint, train_steps: int) -> str:
    """A log line for an eval restored from a checkpoint (step_avg is not kept, so it reads nan)."""
    return eval_line(p.step, train_steps, p.val_loss, p.train_time_s or 0.0, float("nan"))


def _results(cfg: RunConfig, env: DistEnv, records: list[RunRecord], wall: float):
    notes = list(cfg.extra_notes)
    if any(r.diverged for r in records):
        d = next(r for r in records if r.diverged)
        notes.append(f"seed {d.seed} diverged (NaN/Inf loss); the run set stopped there")
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
        return results_from_runs(usable, **kwargs)
    except OptbenchError:
        # nothing evaluable (diverged before the first eval): still record the failure
        from optbench.results.schema import Results

        return Results(agent_id=cfg.agent_id, experiment=kwargs["experiment"], optimizer=cfg.recipe.optimizer,
                       steps_to_target=None, final_val_loss=None, target=cfg.track.target, track=cfg.track.name,
                       runs=records, num_runs=len(records), notes=kwargs["notes"], reached_target=False,
                       passes_rule=False, unofficial=cfg.track.unofficial, train_steps=cfg.train_steps)
