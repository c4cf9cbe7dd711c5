"""What a sweep's trials amount to: each trial's kind, the counts, the best trial, the budget used and left, and
the `tuning_budget` record that exported recipes and their results carry.

Kinds: complete, pruned, running, waiting (an enqueued retry), failed (diverged or errored: counts toward the
budget), lost (its worker died or was interrupted: it is retried, so it does not count), surplus (asked after
another worker took the last trial of the budget: not run, not counted).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from optuna.trial import FrozenTrial, TrialState

from optbench.tuning import TuningBudget

COUNTED = ("complete", "pruned", "running", "failed")
COUNTED_FAILS = ("diverged", "error")


def trial_kind(t: FrozenTrial) -> str:
    if t.state == TrialState.COMPLETE:
        return "complete"
    if t.state == TrialState.PRUNED:
        return "pruned"
    if t.state == TrialState.RUNNING:
        return "running"
    if t.state == TrialState.WAITING:
        return "waiting"
    why = t.user_attrs.get("fail_kind")
    if why in COUNTED_FAILS:
        return "failed"
    return "surplus" if why == "surplus" else "lost"


def device_seconds(t: FrozenTrial, now: datetime | None = None) -> float:
    """Recorded device-seconds; for a running trial its time so far; for a lost one, start to failure."""
    if "device_seconds" in t.user_attrs:
        return float(t.user_attrs["device_seconds"])
    if t.datetime_start is None:
        return 0.0
    end = t.datetime_complete or (now or datetime.now())
    return max(0.0, (end - t.datetime_start).total_seconds())


@dataclass
class SweepStatus:
    name: str
    counts: dict  # kind -> number of trials
    best: FrozenTrial | None
    device_seconds: float
    max_trials: int | None
    max_device_hours: float | None

    @property
    def used(self) -> int:
        """Trials that count toward --max-trials (complete, pruned, failed, running)."""
        return sum(self.counts.get(k, 0) for k in COUNTED)

    @property
    def finished(self) -> int:
        return sum(self.counts.get(k, 0) for k in ("complete", "pruned", "failed"))

    @property
    def device_hours(self) -> float:
        return self.device_seconds / 3600

    def spent(self) -> str | None:
        """Why no new trial may start (None while budget is left)."""
        if self.max_trials is not None and self.used >= self.max_trials:
            return f"trial budget spent ({self.used}/{self.max_trials} trials)"
        if self.max_device_hours is not None and self.device_hours >= self.max_device_hours:
            return f"device budget spent ({self.device_hours:.3f}/{self.max_device_hours:g} device-hours)"
        return None

    def done(self) -> bool:
        """Budget spent and nothing left running: the sweep is over."""
        return self.spent() is not None and not self.counts.get("running", 0)


def best_trial(trials: list[FrozenTrial]) -> FrozenTrial | None:
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    return min(done, key=lambda t: (t.value, t.number)) if done else None


def sweep_status(sweep) -> SweepStatus:
    trials = sweep.study.get_trials(deepcopy=False)
    now = datetime.now()
    return SweepStatus(sweep.name, dict(Counter(trial_kind(t) for t in trials)), best_trial(trials),
                       sum(device_seconds(t, now) for t in trials), sweep.spec.max_trials,
                       sweep.spec.max_device_hours)


def tuning_budget(stages: list) -> TuningBudget:
    """The budget behind the last stage's best configuration: every stage's finished trials and device-hours."""
    st = [sweep_status(s) for s in stages]
    last = stages[-1]
    detail = None
    if len(stages) > 1:
        detail = [{"sweep": s.name, "trials": x.finished, "device_hours": round(x.device_hours, 4),
                   "space": s.spec.space, "train_steps": s.recipe.train_steps} for s, x in zip(stages, st)]
    return TuningBudget(sweep=last.spec.parent or last.name, sampler=last.spec.sampler,
                        trials=sum(x.finished for x in st), device_hours=round(sum(x.device_hours for x in st), 4),
                        space=stages[0].spec.space, stages=detail)
