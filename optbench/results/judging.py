"""Judging one results record under a rule: the one place that decides how a record fares, whether it has
per-seed curves or only the workspace fields.

    judge_record(results, rule)   RecordJudgement: steps, mean, n, reached, passed (and the Verdict from curves)
    verdict_of(results)           the stats.Verdict from the record's per-seed curves (None without curves)

A record whose runs all carry curves is re-judged from them (stats.evaluate_runs: the claimed step of the set);
a record without curves (a plain workspace file) is judged from its reported step, mean val loss and n.
The stats command, the leaderboard and the message board's marker policy all call judge_record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from optbench.results import stats
from optbench.results.schema import Results


def verdict_of(results: Results, rule: str | None = None, target: float | None = None) -> stats.Verdict | None:
    """Re-judge a record from its per-seed curves (None when it has none, e.g. a plain workspace file)."""
    if not _has_curves(results):
        return None
    return stats.evaluate_runs(results.runs, rule or results.rule or stats.DEFAULT_RULE,
                               target=target if target is not None else results.target)


@dataclass(frozen=True)
class RecordJudgement:
    """What a rule says about one record (at the record's own target)."""

    rule: stats.Rule
    target: float
    steps: int | None  # the reported step: claimed if the set passes, else the first step below target; None: never
    mean: float | None  # mean val loss at that step (None when unknown or not finite)
    n: int
    reached: bool  # the mean got below the target
    passed: bool  # ... and passes the rule
    verdict: stats.Verdict | None = None  # the full verdict when judged from curves

    @property
    def from_curves(self) -> bool:
        return self.verdict is not None

    @property
    def required_mean(self) -> float:
        """The largest mean val loss n runs may have and pass."""
        return stats.required_mean(self.n, self.rule, target=self.target)


def judge_record(results: Results, rule: str | stats.Rule | None = None, *,
                 target: float | None = None) -> RecordJudgement:
    """Judge a record under `rule` (None: the default preset; rule_policy.for_results picks a record's own) at
    `target` (None: the record's own target)."""
    r = stats.get_rule(rule)
    tgt = results.target if target is None else target
    v = stats.evaluate_runs(results.runs, r, target=tgt) if _has_curves(results) else None
    if v is not None:
        at = v.reported
        mean = at.mean if at is not None and math.isfinite(at.mean) else None
        reached = v.first_below_target is not None
        return RecordJudgement(r, tgt, v.reported_step, mean, v.n, reached, v.passed, v)
    steps = results.steps_to_target
    mean = results.mean_val_loss if results.mean_val_loss is not None else results.final_val_loss
    n = results.n
    reached = steps is not None and results.reached_target is not False
    passed = reached and mean is not None and stats.passes(mean, n, r, target=tgt)
    return RecordJudgement(r, tgt, steps, mean, n, reached, passed)


def _has_curves(results: Results) -> bool:
    return bool(results.runs) and all(run.curve for run in results.runs)
