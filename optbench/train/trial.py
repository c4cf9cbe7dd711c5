"""One seed's training: model, optimizers, data stream, clock and curve, and the named steps `train_one` runs.

The step itself, the evaluation, the schedule, the parameter split and the data stream are optbench.standalone's,
the same functions the exported submission script inlines, called in the same order; a Trial adds what only
`optbench run` does: checkpoints and resume, divergence detection, progress and the run log.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from optbench.data.loader import TokenStream
from optbench.optim.groups import build_optimizers, with_track_hparams
from optbench.optim.parts.build import apply_init_parts
from optbench.results.schema import CurvePoint, RunRecord
from optbench.standalone.logformat import eval_line
from optbench.standalone.schedule import apply_schedules, lr_multiplier, momentum_warmup, set_lr
from optbench.standalone.training import (TrainClock, all_reduce_sum, barrier, before_forward, data_parallel, evaluate,
                                          extra_pass, forward_backward, optimizer_step, set_train_mode)
from optbench.train import checkpoint as ckpt
from optbench.train.config import RunConfig
from optbench.train.distributed import DistEnv, any_rank
from optbench.train.progress import Progress
from optbench.train.runlog import RunLog


class Diverged(Exception):
    """A NaN or Inf loss: the run stops at once."""

    def __init__(self, step: int, what: str):
        super().__init__(f"run diverged at step {step}: {what} is not finite")
        self.step, self.what = step, what


class Trial:
    """One seed of a run, built as the exported script builds it: seed, model, init, compile, optimizers, DDP,
    train mode, data stream."""

    def __init__(self, cfg: RunConfig, env: DistEnv, seed: int, train_files: list[Path], val_data, log: RunLog | None):
        self.cfg, self.env, self.seed, self.log = cfg, env, seed, log
        self.track, self.T = cfg.track, cfg.train_steps
        recipe = with_track_hparams(cfg.recipe, self.track)
        cuda = env.device.type == "cuda"
        torch.manual_seed(seed)
        self.model = self.track.build_model(embed_dtype=torch.bfloat16 if cuda else torch.float32).to(env.device)
        self.track.init_model(self.model, recipe.init)
        apply_init_parts(self.model, recipe)  # the recipe's init parts (none: a no-op)
        if cfg.compile:
            self.model.compile(dynamic=False)
        self.optimizers = build_optimizers(self.model, recipe, fused_ok=cuda)
        self.train_model = data_parallel(self.model, env.device)
        set_train_mode(self.optimizers)
        self.loader = TokenStream(train_files, self.track.batch_tokens, self.track.seq_len, env.rank, env.world_size)
        self.val_inputs, self.val_targets = val_data
        self.loss_scale = self.track.backward_scale(env.world_size)  # the gradient is the step's sum (or mean)
        self.set_progress = getattr(self.model, "set_progress", None)  # models whose step depends on s/T (medium)
        self.clock = TrainClock()
        self.start, self.resumed_time = 0, 0.0  # first step and train time of this process (resume: from the checkpoint)
        self.curve: list[CurvePoint] = []
        self.extra_passes, self.last_val_step, self.last_val_time = 0, 0, 0.0
        self.label = f"[{self.track.name} {recipe.name} seed {seed}]"
        self.progress: Progress | None = None

    # ---------------------------------------------------------------- start, resume, checkpoints

    def begin(self) -> None:
        """Show progress and start the clock (after a resume, from where it stopped)."""
        self.progress = Progress(self.T, self.start, self.cfg.progress and self.env.is_main, self.label)
        self.progress.write(f"{self.label} model and optimizers built; training steps {self.start}..{self.T} "
                            f"(evaluating at step {self.start} first)" if self.start == 0 else
                            f"{self.label} resumed at step {self.start} of {self.T}")
        self.clock.start()

    def resume(self, path: Path) -> None:
        """Continue from a checkpoint: model, optimizers, data position, RNG, clock and curve."""
        state = ckpt.load_checkpoint(path, self.env.rank)
        self.model.load_state_dict(state["model"])
        for opt, sd in zip(self.optimizers, state["optimizers"]):
            opt.load_state_dict(sd)
        self.loader.load_state_dict(state["loader"])
        ckpt.set_rng_state(state["rng"])
        self.start, self.resumed_time = int(state["step"]), float(state["training_time"])
        self.clock = TrainClock(self.resumed_time)
        self.extra_passes, self.last_val_step = int(state["extra_passes"]), int(state["last_val_step"])
        self.last_val_time = float(state.get("last_val_time", self.resumed_time))
        self.curve = [CurvePoint(**p) for p in state["curve"]]

    def checkpoint_due(self, step: int) -> bool:
        every = self.cfg.checkpoint_every
        return bool(every) and step > self.start and step % every == 0 and step < self.T

    def checkpoint(self, step: int) -> None:
        """Save every rank's state (clock stopped); rank 0 marks the checkpoint complete once all have."""
        self.clock.stop()
        d = ckpt.checkpoint_dir(self.cfg.out_dir, self.seed, step)
        ckpt.save_checkpoint(d, self.env.rank, {
            "step": step, "model": self.model.state_dict(), "optimizers": [o.state_dict() for o in self.optimizers],
            "loader": self.loader.state_dict(), "rng": ckpt.rng_state(), "training_time": self.clock.total,
            "extra_passes": self.extra_passes, "last_val_step": self.last_val_step, "last_val_time": self.last_val_time,
            "curve": [p.model_dump() for p in self.curve]})
        barrier()
        if self.env.is_main:
            ckpt.mark_complete(d)
        self.clock.start()

    # ---------------------------------------------------------------- evaluation and training

    def evaluate(self, step: int) -> None:
        """Val loss (clock stopped) into the curve, the log and the metrics."""
        self.clock.stop()  # step_avg: training time since the last eval (checkpoints in between stop the clock too)
        since = self.clock.total - self.last_val_time
        step_avg = since / (step - self.last_val_step) if step > self.last_val_step else float("nan")
        self.last_val_step, self.last_val_time = step, self.clock.total
        if self.set_progress is not None:  # the medium record evaluates with step s's attention window
            self.set_progress(step / self.T)
        val_loss = evaluate(self.train_model, self.val_inputs, self.val_targets, self.track.micro_batch_rows,
                            self.track.val_tokens, self.optimizers)
        if not math.isfinite(val_loss):
            raise Diverged(step, f"val loss ({val_loss})")
        train_time = self.clock.total
        self.curve.append(CurvePoint(step=step, val_loss=val_loss, train_time_s=train_time))
        line = eval_line(step, self.T, val_loss, train_time, 1000 * step_avg)
        if self.log is not None:
            self.log.eval(line)
            self.log.metric(event="eval", seed=self.seed, step=step, val_loss=val_loss, train_time_s=train_time)
        self.progress.write(line)
        self.clock.start()

    def train_step(self, step: int) -> tuple[float, float]:
        """One optimizer step: forward-backward over the batch, the divergence check, the schedule, the optimizer
        step and any extra pass. Returns (train loss per token, lr multiplier)."""
        inputs, targets = (t.to(self.env.device) for t in self.loader.next_batch())
        if self.set_progress is not None:
            self.set_progress(step / self.T)
        mbs = self.track.micro_batch_rows
        before_forward(self.optimizers)  # EMA-Nesterov's look-ahead (no-op for other optimizers)
        loss_sum = all_reduce_sum(forward_backward(self.train_model, inputs, targets, mbs, self.loss_scale))
        train_loss = float(loss_sum.item()) / self.track.batch_tokens
        if any_rank(not math.isfinite(train_loss), self.env):
            raise Diverged(step, f"train loss ({train_loss})")
        recipe = self.cfg.recipe
        eta = lr_multiplier(step, self.T, recipe.cooldown_frac, recipe.warmup_steps, recipe.lr_floor)
        set_lr(self.optimizers, eta)
        if recipe.momentum_warmup is not None:  # the main optimizer's groups (build_optimizers puts it last)
            mw = recipe.momentum_warmup
            for group in self.optimizers[-1].param_groups:
                group["momentum"] = momentum_warmup(step, mw.start, recipe.hparams["momentum"], mw.steps)
        apply_schedules(self.optimizers, step, self.T)  # recipe schedule parts (PowerCool, split cooldowns, mu)
        try:
            optimizer_step(self.optimizers)
        except FloatingPointError as e:  # an optimizer that detects non-finite state itself
            raise Diverged(step, str(e)) from None
        if extra_pass(self.train_model, self.optimizers, step, inputs[:mbs], self.loss_scale):
            self.extra_passes += 1
        return train_loss, eta

    def report(self, step: int, train_loss: float, eta: float) -> None:
        """Progress line or bar, and a train metric every 10 steps."""
        done, elapsed = step + 1, self.clock.now()
        tok_s = (done - self.start) * self.track.batch_tokens / max(elapsed - self.resumed_time, 1e-9)  # this process
        self.progress.update(done, train_loss, tok_s, (self.T - done) * elapsed / max(done, 1))
        if self.log is not None and (done % 10 == 0 or done == self.T):
            self.log.metric(event="train", seed=self.seed, step=done, train_loss=train_loss, lr_mult=eta,
                            tokens_per_s=tok_s)

    # ---------------------------------------------------------------- the record

    def stop_line(self, line: str) -> None:
        """A line that says why the run stopped early, on the console and in train_log.txt (not a `step:` line,
        so log parsers skip it)."""
        if self.log is not None:
            self.log.eval(line)
        self.progress.write(line)

    def finish(self, diverged: Diverged | None = None, interrupted: int | None = None) -> RunRecord:
        """The seed's RunRecord; the first eval that reached the track's target is its steps_to_target. A diverged
        or interrupted seed records the step it stopped at (and has no final loss or step to target)."""
        self.progress.close()
        log_path = str(self.log.text_path) if self.log is not None else None
        if diverged is not None:
            self.stop_line(f"diverged at step {diverged.step}/{self.T}: {diverged.what} is not finite")
            if self.log is not None:
                self.log.metric(event="diverged", seed=self.seed, step=diverged.step, message=str(diverged))
            return RunRecord(seed=self.seed, final_val_loss=None, steps_to_target=None, curve=self.curve,
                             diverged=True, extra_passes=self.extra_passes, log_path=log_path,
                             diverged_step=diverged.step)
        if interrupted is not None:
            return RunRecord(seed=self.seed, final_val_loss=None, steps_to_target=None, curve=self.curve,
                             diverged=False, extra_passes=self.extra_passes, log_path=log_path, interrupted=True,
                             interrupted_step=interrupted)
        first = next((p.step for p in self.curve if self.track.reached(p.val_loss)), None)
        return RunRecord(seed=self.seed, final_val_loss=self.curve[-1].val_loss if self.curve else None,
                         steps_to_target=first, curve=self.curve, diverged=False, extra_passes=self.extra_passes,
                         log_path=log_path)
