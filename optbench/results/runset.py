"""A run set from what a user points at (run dirs, results.json files, upstream-format logs or folders of them),
judged as ONE set: everything `optbench stats` and `optbench plot` show, computed here so the CLI only prints it.

    srcs, choice = load_run_set(paths, target=None, rule=None, metric="val_loss", track=None)
    report = judge_run_set(srcs, choice, baseline=load_run_set(base_paths, ...)[0])

The rule and target follow optbench.results.rule_policy (the user's, else the record's, else its track's; an
upstream log's track is `small` unless it names one), and must agree across the inputs. Inputs with per-seed
curves are judged together (every run counts: no cherry-picking); a record without curves is judged alone from
its mean and n (optbench.results.judging).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Sequence

from optbench.errors import OptbenchError
from optbench.results import rule_policy, stats
from optbench.results.judging import RecordJudgement, judge_record
from optbench.results.rule_policy import RuleChoice
from optbench.results.sources import RunSource, load_source


def load_sources(paths: Sequence[str | os.PathLike], target: float | None, rule: str | None,
                 metric: str, track: str | None) -> list[RunSource]:
    """Each input read with the user's overrides (None: none given)."""
    return [load_source(p, target, rule=rule, metric=metric, track=track) for p in paths]


def load_run_set(paths: Sequence[str | os.PathLike], target: float | None, rule: str | None, metric: str,
                 track: str | None) -> tuple[list[RunSource], RuleChoice]:
    """The inputs and the one rule and target they are judged by (OptbenchError when they disagree)."""
    srcs = load_sources(paths, target, rule, metric, track)
    return srcs, rule_policy.common([s.choice for s in srcs])


@dataclass(frozen=True)
class RunRow:
    """One run of the set, as the stats table shows it."""

    source: str
    seed: str
    last_step: int | None
    last_loss: float | None
    loss_at_reported: float | None
    first_below: int | None
    notes: tuple[str, ...]


@dataclass(frozen=True)
class Comparison:
    """The pairwise rule against a baseline run set (statistic None: not comparable, a set never reached)."""

    baseline: stats.Verdict
    statistic: float | None
    better: bool


@dataclass
class RunSetReport:
    choice: RuleChoice
    verdict: stats.Verdict | None = None  # over every per-seed curve given (None: no input has curves)
    rows: list[RunRow] = field(default_factory=list)
    runs_needed: int | None = None  # at the reported (or final) step's mean
    runs_needed_90: int | None = None  # for a 90 % chance given the spread (n > 1 only)
    comparison: Comparison | None = None
    records: list[tuple[RunSource, RecordJudgement]] = field(default_factory=list)  # inputs without curves

    @property
    def rule(self) -> stats.Rule:
        return self.choice.rule

    @property
    def target(self) -> float:
        return self.choice.target

    @property
    def failed(self) -> bool:
        """The set fails the rule, or a record without curves fails it (or has nothing to judge)."""
        return (self.verdict is not None and not self.verdict.passed) or any(
            j.mean is None or not j.passed for _, j in self.records)


def _row(label: str, run, verdict: stats.Verdict, target: float) -> RunRow:
    cm = stats.curve_map(run)
    last = max(cm) if cm else None
    at = verdict.reported
    trial = (run.model_extra or {}).get("trial")
    seed = run.seed if run.seed is not None else (f"trial {trial}" if trial is not None else "")
    notes = []
    if run.diverged:
        notes.append("diverged")
    if run.extra_passes:
        notes.append(f"{run.extra_passes} extra passes")
    planned = (run.model_extra or {}).get("train_steps")
    if isinstance(planned, int) and last is not None and last < planned and not run.diverged:
        notes.append(f"cut short: last eval {last} of {planned}")
    return RunRow(label, str(seed), last, cm.get(last) if last is not None else None,
                  cm.get(at.step) if at is not None else None, stats.first_step_below(run, target), tuple(notes))


def judge_run_set(srcs: Sequence[RunSource], choice: RuleChoice,
                  baseline: Sequence[RunSource] = ()) -> RunSetReport:
    """Judge the inputs as one run set under `choice` (and against a baseline set, by the pairwise rule)."""
    r, target = choice.rule, choice.target
    report = RunSetReport(choice)
    curves = [(lbl, run) for s in srcs for lbl, run in zip(s.run_labels, s.runs)]
    if curves:
        v = stats.evaluate_runs([run for _, run in curves], r, target=target)
        report.verdict = v
        report.rows = [_row(lbl, run, v, target) for lbl, run in curves]
        at = v.reported
        if at is not None:
            report.runs_needed = v.runs_needed()
            if at.n > 1:
                report.runs_needed_90 = v.runs_needed(confidence=0.9)
        if baseline:
            base_runs = [run for b in baseline for run in b.runs]
            if not base_runs:
                raise OptbenchError("--baseline: no per-seed curves in the baseline inputs")
            vb = stats.evaluate_runs(base_runs, r, target=target)
            cmp = stats.compare(vb, v)
            report.comparison = Comparison(vb, None, False) if cmp is None else Comparison(vb, cmp[0], cmp[1])
    report.records = [(s, judge_record(s.results, r, target=target))
                      for s in srcs if not s.runs and s.results is not None]
    return report


def plot_target(srcs: Sequence[RunSource]) -> float:
    """The one target of the inputs of a plot (each source's, from rule_policy); OptbenchError when they differ."""
    targets = sorted({s.target for s in srcs})
    if len(targets) > 1:
        raise OptbenchError(f"--target: the inputs have different targets {targets}; pass --target")
    return targets[0]


def labelled_runs(srcs: Sequence[RunSource]) -> dict[str, list]:
    """{label: runs} for a plot: one curve set per input, labelled `optimizer (folder)`, made unique."""
    out: dict[str, list] = {}
    for s in srcs:
        if not s.runs:
            raise OptbenchError(f"{s.path}: no per-seed curves to plot (results.json has no runs[].curve)")
        label = f"{s.results.optimizer} ({s.label})" if s.results is not None else s.label
        base, k = label, 2
        while label in out:
            label = f"{base} #{k}"
            k += 1
        out[label] = s.runs
    return out
