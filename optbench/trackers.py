"""Experiment trackers (`--tracker wandb|tensorboard|trackio`): metric sinks of a run's RunLog.

    with tracked(["tensorboard"], cfg):     # make_tracker per name, as RunLog metric sinks, closed at the end
        run(cfg, env)

Each seed of a run is one tracker run (`{run_name}-seed{N}`, grouped by run_name) with, per logged step:
train/loss, train/lr (the main optimizer's scheduled lr), train/lr_mult, train/tokens_per_s (the loop logs
these every 10 steps), and val/loss at every eval. Optional packages: pip install 'optbench[wandb]' (or
tensorboard, trackio). Offline use: WANDB_MODE=offline; TensorBoard writes event files under
RUN_DIR/tensorboard/seedN; trackio writes its local database (TRACKIO_DIR).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from optbench.errors import OptbenchError

TRACKERS = ("wandb", "tensorboard", "trackio")
PROJECT = "optbench"


def metrics_of(record: dict, base_lr: float | None) -> tuple[int, dict] | None:
    """(step, metrics) of a RunLog record, or None for events trackers do not plot."""
    ev = record.get("event")
    if ev == "train":
        m = {"train/loss": record["train_loss"], "train/lr_mult": record["lr_mult"],
             "train/tokens_per_s": record["tokens_per_s"]}
        if base_lr is not None:
            m["train/lr"] = base_lr * record["lr_mult"]
        return int(record["step"]), m
    if ev == "eval":
        return int(record["step"]), {"val/loss": record["val_loss"]}
    return None


class Tracker:
    """Base: opens one tracker run per seed on its first record, closes them at close()."""

    package = ""

    def __init__(self, run_name: str, config: dict, out_dir: Path, base_lr: float | None = None,
                 project: str = PROJECT):
        self.run_name, self.config, self.out_dir = run_name, config, Path(out_dir)
        self.base_lr, self.project = base_lr, project
        self.seed = None

    def __call__(self, record: dict) -> None:
        got = metrics_of(record, self.base_lr)
        if got is None:
            return
        seed = record.get("seed", 0)
        if seed != self.seed:
            if self.seed is not None:
                self._finish()
            self._open(seed)
            self.seed = seed
        self._log(*got)

    def close(self) -> None:
        if self.seed is not None:
            self._finish()
            self.seed = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _name(self, seed) -> str:
        return f"{self.run_name}-seed{seed}"

    def _open(self, seed) -> None:
        raise NotImplementedError

    def _log(self, step: int, metrics: dict) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        raise NotImplementedError


class WandbTracker(Tracker):
    package = "wandb"

    def _open(self, seed) -> None:
        import wandb

        self.run = wandb.init(project=self.project, name=self._name(seed), group=self.run_name,
                              config={**self.config, "seed": seed}, dir=str(self.out_dir), reinit="finish_previous")

    def _log(self, step, metrics) -> None:
        self.run.log(metrics, step=step)

    def _finish(self) -> None:
        self.run.finish()


class TensorBoardTracker(Tracker):
    package = "tensorboard"

    def _open(self, seed) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(self.out_dir / "tensorboard" / f"seed{seed}"))

    def _log(self, step, metrics) -> None:
        for k, v in metrics.items():
            self.writer.add_scalar(k, v, step)

    def _finish(self) -> None:
        self.writer.close()


class TrackioTracker(Tracker):
    package = "trackio"

    def _open(self, seed) -> None:
        import trackio

        self.run = trackio.init(project=self.project, name=self._name(seed), group=self.run_name,
                                config={**self.config, "seed": seed})

    def _log(self, step, metrics) -> None:
        import trackio

        trackio.log(metrics, step=step)

    def _finish(self) -> None:
        import trackio

        trackio.finish()


_CLASSES = {"wandb": WandbTracker, "tensorboard": TensorBoardTracker, "trackio": TrackioTracker}


def make_tracker(name: str, *, run_name: str, config: dict, out_dir: Path, base_lr: float | None = None) -> Tracker:
    """A tracker sink by name; OptbenchError for an unknown name or a missing optional package."""
    import importlib.util

    if name not in _CLASSES:
        raise OptbenchError(f"--tracker: unknown tracker {name!r}; choose from {', '.join(TRACKERS)}")
    cls = _CLASSES[name]
    if importlib.util.find_spec(cls.package) is None:
        raise OptbenchError(f"--tracker {name}: the {cls.package} package is not installed "
                            f"(pip install 'optbench[{name}]')")
    return cls(run_name, config, out_dir, base_lr)


@contextlib.contextmanager
def tracked(names, cfg, run_name: str | None = None, extra_sinks=()):
    """Trackers for a RunConfig's run (and any other sinks) attached to RunLog while the block runs."""
    from optbench.train.runlog import metric_sinks

    trackers = [make_tracker(n, run_name=run_name or Path(cfg.out_dir).name, config=cfg.to_json(),
                             out_dir=Path(cfg.out_dir), base_lr=cfg.recipe.hparams.get("lr")) for n in names]
    try:
        with metric_sinks(*extra_sinks, *trackers):
            yield trackers
    finally:
        for t in trackers:
            t.close()
