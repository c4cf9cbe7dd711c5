"""Runs from whatever a user points at: a run dir (folder with results.json), a results.json, an upstream log,
or a folder of upstream logs (searched recursively, so `results/<record>/<variant>/*.txt` are found).

    src = load_source("runs/muon_s0")                          # RunSource(path, label, kind, runs, ...)
    src = load_source("logs/", metric="val_ema_loss")          # judge the logs on another eval-line field
    src.choice.describe()                                      # the rule and target it is judged by, and why

Each run keeps where it came from (`src.run_labels`: the log file relative to the folder, and the trial when a
log holds several). The rule and target of a source follow optbench.results.rule_policy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from optbench.errors import OptbenchError
from optbench.results import rule_policy
from optbench.results.logparse import DEFAULT_METRIC, looks_like_log, parse_log
from optbench.results.rule_policy import RuleChoice
from optbench.results.schema import CurvePoint, Results, RunRecord, load_results


@dataclass
class RunSource:
    path: str
    label: str
    kind: str  # "results" | "log"
    runs: list[RunRecord] = field(default_factory=list)
    results: Results | None = None  # when read from a results.json
    choice: RuleChoice | None = None  # the rule and target the source is judged by
    run_labels: list[str] = field(default_factory=list)  # per run: the file it came from (and its trial)
    metric: str = DEFAULT_METRIC

    @property
    def target(self) -> float | None:
        return self.choice.target if self.choice else None


def load_source(
    path: str | os.PathLike,
    target: float | None = None,
    *,
    rule: str | None = None,
    metric: str = DEFAULT_METRIC,
    track: str | None = None,
) -> RunSource:
    """Read one RUN argument. OptbenchError (naming the path) when it is none of the accepted kinds.

    `target`, `rule`, `track` are the user's overrides (rule_policy); `metric` is the eval-line field a claim is
    made on (`val_loss`, or e.g. `val_ema_loss`)."""
    p = Path(path)
    if p.is_dir():
        if (p / "results.json").is_file():
            return _from_results(p / "results.json", p.name, rule, target, metric)
        logs = sorted(x for x in p.rglob("*.txt") if x.is_file() and _is_log(x))
        if not logs:
            raise OptbenchError(f"{p}: a run dir needs a results.json (or upstream-format .txt logs); found neither")
        return _from_logs(str(p), p, p.name, logs, rule, target, metric, track)
    if not p.exists():
        raise OptbenchError(f"{p}: no such file or folder")
    if p.suffix == ".json":
        return _from_results(p, p.parent.name if p.name == "results.json" else p.stem, rule, target, metric)
    return _from_logs(str(p), p.parent, p.stem, [p], rule, target, metric, track)


def _is_log(p: Path) -> bool:
    try:
        return looks_like_log(p.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return False


def _from_logs(path: str, root: Path, label: str, files: list[Path], rule, target, metric, track) -> RunSource:
    runs: list[RunRecord] = []
    labels: list[str] = []
    choices = []
    for f in files:
        log = parse_log(f)
        c = rule_policy.for_log(log, override=rule, track=track, target=target)
        choices.append(c)
        name = f.relative_to(root).as_posix()
        for t, run in zip(log.trials, log.run_records(c.target, metric)):
            runs.append(run)
            labels.append(name if len(log.trials) == 1 else f"{name} #{t.index}")
    choice = rule_policy.common(choices, f"logs under {path}")
    return RunSource(path, label, "log", runs, None, choice, labels, metric)


def _metric_run(run: RunRecord, metric: str, where: str) -> RunRecord:
    """A results.json run judged on another field of its curve points."""
    pts = []
    for q in run.curve:
        v = (q.model_extra or {}).get(metric)
        if isinstance(v, (int, float)):
            pts.append(CurvePoint(step=q.step, val_loss=float(v), train_time_s=q.train_time_s))
    if not pts:
        raise OptbenchError(f"{where}: the curve has no field {metric!r} (--metric)")
    extra = {k: v for k, v in (run.model_extra or {}).items()}
    extra["metric"] = metric
    return RunRecord(seed=run.seed, final_val_loss=pts[-1].val_loss, curve=pts, log_path=run.log_path, **extra)


def _from_results(p: Path, label: str, rule, target, metric) -> RunSource:
    r = load_results(p)
    choice = rule_policy.for_results(r, override=rule, target=target)
    runs = [x for x in r.runs if x.curve]
    if metric != DEFAULT_METRIC:
        runs = [_metric_run(x, metric, f"{p}: runs[{i}]") for i, x in enumerate(runs)]
    labels = [label] * len(runs)
    return RunSource(str(p), label or r.optimizer, "results", runs, r, choice, labels, metric)
