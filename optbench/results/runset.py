"""A run set from what a user points at (run dirs, results.json files, upstream-format logs), judged as ONE set:
everything `optbench stats` and `optbench plot` show, computed here so the CLI only prints it.

    srcs, target = load_run_set(paths, target=None, track="small")   # --target, --track
    report = judge_run_set(srcs, target, rule=None, baseline=[...])

The target: `--target` when given, else the one target the results.json inputs state, else the track's
(upstream-format logs state none). Inputs with per-seed curves are judged together (every run counts: no
cherry-picking); a record without curves is judged alone from its mean and n (optbench.results.judging).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from optbench.errors import OptbenchError
from optbench.results import stats
from optbench.results.judging import RecordJudgement, judge_record
from optbench.results.sources import RunSource, load_source


def _states_target(path: Path) -> bool:
    """A results.json input (a file, or a run dir holding one): it states its own target (load_source's kinds)."""
    return path.suffix == ".json" or (path.is_dir() and (path / "results.json").is_file())


def track_target(track: str) -> float:
    """The target of a track by name (imports the track definitions, and so torch, only when called)."""
    from optbench.tracks import get_track

    return get_track(track).target


def load_run_set(paths: Sequence[str | os.PathLike], target: float | None, track: str) -> tuple[list[RunSource], float]:
    """The inputs and the target they are judged against (see the module docstring). Inputs that state
    different targets need an explicit target: OptbenchError."""
    paths = [Path(p) for p in paths]
    records = {p: load_source(p) for p in paths if _states_target(p)}
    if target is None:
        stated = {s.target for s in records.values() if s.target is not None}
        if len(stated) > 1:
            raise OptbenchError(f"--target: the inputs have different targets {sorted(stated)}; pass --target")
        target = stated.pop() if stated else track_target(track)
    return [records[p] if p in records else load_source(p, target) for p in paths], target


def run_set_rule(srcs: Sequence[RunSource], rule: str | None = None) -> stats.Rule:
    """`--rule` when given, else the one rule the records state, else the default preset."""
    if rule is None:
        rules = {s.results.rule for s in srcs if s.results is not None and s.results.rule}
        rule = rules.pop() if len(rules) == 1 else stats.DEFAULT_RULE
    return stats.get_rule(rule)


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
    rule: stats.Rule
    target: float
    verdict: stats.Verdict | None = None  # over every per-seed curve given (None: no input has curves)
    rows: list[RunRow] = field(default_factory=list)
    runs_needed: int | None = None  # at the reported (or final) step's mean
    runs_needed_90: int | None = None  # for a 90 % chance given the spread (n > 1 only)
    comparison: Comparison | None = None
    records: list[tuple[RunSource, RecordJudgement]] = field(default_factory=list)  # inputs without curves

    @property
    def failed(self) -> bool:
        """The set fails the rule, or a record without curves fails it (or has nothing to judge)."""
        return (self.verdict is not None and not self.verdict.passed) or any(
            j.mean is None or not j.passed for _, j in self.records)


def _row(source: RunSource, run, verdict: stats.Verdict, target: float) -> RunRow:
    cm = stats.curve_map(run)
    last = max(cm) if cm else None
    at = verdict.reported
    seed = run.seed if run.seed is not None else (run.model_extra or {}).get("trial", "")
    notes = []
    if run.diverged:
        notes.append("diverged")
    if run.extra_passes:
        notes.append(f"{run.extra_passes} extra passes")
    planned = (run.model_extra or {}).get("train_steps")
    if isinstance(planned, int) and last is not None and last < planned and not run.diverged:
        notes.append(f"cut short: last eval {last} of {planned}")
    return RunRow(source.label, str(seed), last, cm.get(last) if last is not None else None,
                  cm.get(at.step) if at is not None else None, stats.first_step_below(run, target), tuple(notes))


def judge_run_set(srcs: Sequence[RunSource], target: float, rule: str | None = None,
                  baseline: Sequence[str | os.PathLike] = ()) -> RunSetReport:
    """Judge the inputs as one run set (and against a baseline set, by the pairwise rule)."""
    r = run_set_rule(srcs, rule)
    report = RunSetReport(r, target)
    curves = [(s, run) for s in srcs for run in s.runs]
    if curves:
        v = stats.evaluate_runs([run for _, run in curves], r, target=target)
        report.verdict = v
        report.rows = [_row(s, run, v, target) for s, run in curves]
        at = v.reported
        if at is not None:
            report.runs_needed = v.runs_needed()
            if at.n > 1:
                report.runs_needed_90 = v.runs_needed(confidence=0.9)
        if baseline:
            base_runs = [run for b in baseline for run in load_source(b, target).runs]
            if not base_runs:
                raise OptbenchError("--baseline: no per-seed curves in the baseline inputs")
            vb = stats.evaluate_runs(base_runs, r, target=target)
            cmp = stats.compare(vb, v)
            report.comparison = Comparison(vb, None, False) if cmp is None else Comparison(vb, cmp[0], cmp[1])
    report.records = [(s, judge_record(s.results, r)) for s in srcs if not s.runs and s.results is not None]
    return report


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
