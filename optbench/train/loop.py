"""One run = track + recipe + seed(s): the benchmark's training loop, as upstream train_gpt_simple.py.

Per step: the global batch (same token window for any world size) is split into microbatches; each does one
forward-backward on its summed loss; gradients are summed over ranks (DDP); the schedule sets every group's lr
from its initial lr; every optimizer steps. Validation runs on the track's cadence (and at the end) and its time is
not counted in train_time. Any optimizer hook (schedule-free eval swap, Sophia's Hessian pass) goes through
optbench.optim.protocol, and extra passes are counted.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

from optbench.data.loader import TokenStream, load_val
from optbench.data.shards import list_shards, read_token_count
from optbench.errors import OptbenchError
from optbench.fsutil import atomic_write_text
from optbench.optim import protocol
from optbench.optim.groups import build_optimizers, with_track_hparams
from optbench.optim.parts.build import apply_init_parts, part_modules
from optbench.optim.recipe import Recipe
from optbench.results.schema import CurvePoint, RunRecord, collect_provenance, results_from_runs, save_results
from optbench.tracks import Track, lr_multiplier
from optbench.train import checkpoint as ckpt
from optbench.train.distributed import DistEnv, all_reduce_sum, any_rank, barrier
from optbench.train.runlog import RunLog, eval_line, version_line


class Diverged(Exception):
    """A NaN or Inf loss: the run stops at once."""

    def __init__(self, step: int, what: str):
        super().__init__(f"run diverged at step {step}: {what} is not finite")
        self.step = step


@dataclass
class RunConfig:
    track: Track
    recipe: Recipe
    recipe_text: str
    seeds: list[int]
    out_dir: Path
    data_dir: Path
    device: str = "cpu"
    compile: bool = False
    checkpoint_every: int = 0
    agent_id: str = "local"
    experiment: str = ""
    progress: bool = True
    extra_notes: list[str] = field(default_factory=list)

    @property
    def train_steps(self) -> int:
        return self.recipe.train_steps or self.track.train_steps

    def to_json(self) -> dict:
        return {
            "track": self.track.name, "track_overrides": self.track.overrides, "unofficial": self.track.unofficial,
            "recipe": self.recipe.model_dump(), "recipe_text": self.recipe_text, "seeds": self.seeds,
            "out_dir": str(self.out_dir), "data_dir": str(self.data_dir), "device": self.device,
            "compile": self.compile, "checkpoint_every": self.checkpoint_every, "agent_id": self.agent_id,
            "experiment": self.experiment, "train_steps": self.train_steps,
        }


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


class Progress:
    """tqdm bar on a terminal; plain lines in logs (loss, tokens/s, ETA)."""

    def __init__(self, total: int, start: int, enabled: bool, label: str):
        self.enabled, self.total, self.label = enabled, total, label
        self.tty = sys.stderr.isatty()
        self.bar = None
        self.every = max(1, total // 10)
        if enabled and self.tty:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=start, desc=label, unit="step", dynamic_ncols=True)

    def update(self, step: int, loss: float, tok_s: float, eta_s: float) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_postfix_str(f"loss {loss:.4f} | {tok_s:,.0f} tok/s | ETA {_fmt_time(eta_s)}", refresh=False)
            self.bar.update(1)
        elif step % self.every == 0 or step == self.total:
            print(f"{self.label} step {step}/{self.total} | loss {loss:.4f} | {tok_s:,.0f} tok/s | "
                  f"ETA {_fmt_time(eta_s)}", file=sys.stderr, flush=True)

    def write(self, line: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(line)
        else:
            print(line, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _fmt_time(s: float) -> str:
    if not math.isfinite(s):
        return "?"
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def evaluate(model, val_inputs, val_targets, track: Track, env: DistEnv, optimizers) -> float:
    """Mean per-token val loss over the track's val tokens (summed over ranks)."""
    protocol.set_eval_mode(optimizers)
    model.eval()
    mbs = track.micro_batch_rows
    total = torch.zeros((), device=env.device, dtype=torch.float64)
    with torch.no_grad():
        for i in range(0, len(val_inputs), mbs):
            total += model(val_inputs[i:i + mbs], val_targets[i:i + mbs]).double()
    all_reduce_sum(total, env)
    model.train()
    protocol.set_train_mode(optimizers)
    return float(total.item() / track.val_tokens)


def _gnb_pass(ddp_model, inputs: torch.Tensor, scale: float) -> None:
    """Sophia's Gauss-Newton-Bartlett estimator: labels sampled from the model's own softmax, one backward."""
    logits = ddp_model(inputs)
    sampled = torch.distributions.Categorical(logits=logits).sample()
    loss = F.cross_entropy(logits.view(-1, logits.size(-1)), sampled.view(-1), reduction="sum")
    (loss * scale).backward()


def train_one(cfg: RunConfig, env: DistEnv, seed: int, train_files, val_data, log: RunLog | None,
              resume_from: Path | None = None) -> RunRecord:
    """Train one seed; returns its RunRecord. Raises Diverged on a NaN/Inf loss (after logging)."""
    track, T = cfg.track, cfg.train_steps
    recipe = with_track_hparams(cfg.recipe, track)
    cuda = env.device.type == "cuda"
    torch.manual_seed(seed)
    model = track.build_model(embed_dtype=torch.bfloat16 if cuda else torch.float32).to(env.device)
    track.init_model(model, recipe.init)
    apply_init_parts(model, recipe)  # the recipe's init parts (none: a no-op)
    if cfg.compile:
        model.compile(dynamic=False)
    ddp_model = DDP(model, device_ids=[env.device.index] if cuda else None) if env.distributed else model
    optimizers = build_optimizers(model, recipe, fused_ok=cuda)
    protocol.set_train_mode(optimizers)
    loader = TokenStream(train_files, track.batch_tokens, track.seq_len, env.rank, env.world_size)
    val_inputs, val_targets = (t.to(env.device) for t in val_data)
    eval_steps = set(track.eval_steps(T))
    accum = track.accumulation_steps(env.world_size)
    mbs = track.micro_batch_rows

    start, curve, training_time, extra_passes, last_val_step = 0, [], 0.0, 0, 0
    if resume_from is not None:
        state = ckpt.load_checkpoint(resume_from, env.rank)
        model.load_state_dict(state["model"])
        for opt, sd in zip(optimizers, state["optimizers"]):
            opt.load_state_dict(sd)
        loader.load_state_dict(state["loader"])
        ckpt.set_rng_state(state["rng"])
        start, training_time = int(state["step"]), float(state["training_time"])
        extra_passes, last_val_step = int(state["extra_passes"]), int(state["last_val_step"])
        curve = [CurvePoint(**p) for p in state["curve"]]

    resumed_time = training_time  # train time restored from a checkpoint (0 for a fresh run)
    label = f"[{track.name} {recipe.name} seed {seed}]"
    progress = Progress(T, start, cfg.progress and env.is_main, label)
    set_progress = getattr(model, "set_progress", None)
    train_loss = float("nan")
    barrier(env)
    t0 = time.perf_counter()
    try:
        for step in range(start, T + 1):
            if cfg.checkpoint_every and step > start and step % cfg.checkpoint_every == 0 and step < T:
                barrier(env)
                training_time += time.perf_counter() - t0
                d = ckpt.checkpoint_dir(cfg.out_dir, seed, step)
                ckpt.save_checkpoint(d, env.rank, {
                    "step": step, "model": model.state_dict(),
                    "optimizers": [o.state_dict() for o in optimizers], "loader": loader.state_dict(),
                    "rng": ckpt.rng_state(), "training_time": training_time, "extra_passes": extra_passes,
                    "last_val_step": last_val_step, "curve": [p.model_dump() for p in curve]})
                barrier(env)
                if env.is_main:
                    ckpt.mark_complete(d)
                t0 = time.perf_counter()

            if step in eval_steps:
                barrier(env)
                since = time.perf_counter() - t0
                training_time += since
                step_avg = since / (step - last_val_step) if step > last_val_step else float("nan")
                last_val_step = step
                if set_progress is not None:  # the medium record evaluates with step s's attention window
                    set_progress(step / T)
                val_loss = evaluate(ddp_model, val_inputs, val_targets, track, env, optimizers)
                if not math.isfinite(val_loss):
                    raise Diverged(step, f"val loss ({val_loss})")
                curve.append(CurvePoint(step=step, val_loss=val_loss, train_time_s=training_time))
                line = eval_line(step, T, val_loss, training_time, 1000 * step_avg)
                if log is not None:
                    log.eval(line)
                    log.metric(event="eval", seed=seed, step=step, val_loss=val_loss, train_time_s=training_time)
                progress.write(line)
                barrier(env)
                t0 = time.perf_counter()
            if step == T:
                break

            inputs, targets = loader.next_batch()
            inputs, targets = inputs.to(env.device), targets.to(env.device)
            if set_progress is not None:
                set_progress(step / T)
            protocol.before_forward(optimizers)
            loss_sum = torch.zeros((), device=env.device)
            for i in range(accum):
                sync = env.distributed and i < accum - 1
                with ddp_model.no_sync() if sync else contextlib.nullcontext():
                    loss = ddp_model(inputs[i * mbs:(i + 1) * mbs], targets[i * mbs:(i + 1) * mbs])
                    # DDP averages over ranks; the track's scale makes the gradient its SUM (track 3) or MEAN
                    # (medium record) over the step's tokens
                    (loss * track.backward_scale(env.world_size)).backward()
                loss_sum += loss.detach()
            all_reduce_sum(loss_sum, env)
            train_loss = float(loss_sum.item()) / track.batch_tokens
            if any_rank(not math.isfinite(train_loss), env):
                raise Diverged(step, f"train loss ({train_loss})")
            eta = lr_multiplier(step, T, recipe.cooldown_frac, recipe.warmup_steps)
            for opt in optimizers:
                for g in opt.param_groups:
                    g["lr"] = g["initial_lr"] * eta
            protocol.apply_schedules(optimizers, step, T)
            for opt in optimizers:
                try:
                    opt.step()
                except FloatingPointError as e:  # an optimizer that detects non-finite state itself
                    raise Diverged(step, f"{type(opt).__name__} state ({e})") from None
            model.zero_grad(set_to_none=True)
            due = protocol.hessian_due(optimizers, step)
            if due:
                _gnb_pass(ddp_model, inputs[:mbs], track.backward_scale(env.world_size))
                for opt in due:
                    opt.update_hessian()
                model.zero_grad(set_to_none=True)
                extra_passes += 1
            elapsed = training_time + time.perf_counter() - t0
            done = step + 1
            tok_s = (done - start) * track.batch_tokens / max(elapsed - resumed_time, 1e-9)  # this process's rate
            progress.update(done, train_loss, tok_s, (T - done) * elapsed / max(done, 1))
            if log is not None and (done % 10 == 0 or done == T):
                log.metric(event="train", seed=seed, step=done, train_loss=train_loss, lr_mult=eta, tokens_per_s=tok_s)
    except Diverged as e:
        progress.close()
        if log is not None:
            log.metric(event="diverged", seed=seed, step=e.step, message=str(e))
        return RunRecord(seed=seed, final_val_loss=None, steps_to_target=None, curve=curve, diverged=True,
                         extra_passes=extra_passes, log_path=str(log.text_path) if log else None)
    progress.close()
    first = next((p.step for p in curve if p.val_loss is not None and p.val_loss < track.target), None)
    return RunRecord(seed=seed, final_val_loss=curve[-1].val_loss if curve else None, steps_to_target=first,
                     curve=curve, diverged=False, extra_passes=extra_passes,
                     log_path=str(log.text_path) if log else None)


def _trial_file(out_dir: Path, seed: int) -> Path:
    return Path(out_dir) / "trials" / f"seed{seed}.json"


def run(cfg: RunConfig, env: DistEnv, *, resume: bool = False) -> tuple[object, bool]:
    """All seeds of a run; writes train_log.txt, metrics.jsonl and results.json. Returns (Results, diverged)."""
    from optbench import optim

    train_files, val_files = check_data(cfg.track, cfg.data_dir)
    val_data = load_val(val_files, cfg.track.val_tokens, cfg.track.val_row_tokens, env.rank, env.world_size)
    out = Path(cfg.out_dir)
    log = None
    if env.is_main:
        out.mkdir(parents=True, exist_ok=True)
        if not resume:
            atomic_write_text(out / "run.json", json.dumps(cfg.to_json(), indent=2) + "\n")
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
