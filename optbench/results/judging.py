"""Judging a results record under a rule.

    verdict_of(results)   the stats.Verdict from the record's per-seed curves (None without curves)
"""

from __future__ import annotations

from optbench.results import stats
from optbench.results.schema import Results


def verdict_of(results: Results, rule: str | None = None, target: float | None = None) -> stats.Verdict | None:
    """Re-judge a record from its per-seed curves (None when it has none, e.g. a plain workspace file)."""
    if not results.runs or not all(r.curve for r in results.runs):
        return None
    return stats.evaluate_runs(results.runs, rule or results.rule or stats.DEFAULT_RULE, target or results.target)
