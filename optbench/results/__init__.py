"""Results: the results.json schema, the benchmark statistics, upstream log parsing, leaderboard, plots.

    from optbench.results import RunRecord, results_from_runs, save_results, load_results, stats
    from optbench.results import parse_log, build_leaderboard, write_leaderboard, load_source
    from optbench.results.plots import plot_curves, plot_best_over_time   # (imports matplotlib)
"""

from optbench.results import stats  # noqa: F401
from optbench.results.schema import (  # noqa: F401
    CurvePoint,
    Provenance,
    RecipeRecord,
    Results,
    RunRecord,
    collect_provenance,
    load_results,
    parse_results,
    results_from_runs,
    save_results,
)
from optbench.results.judging import verdict_of  # noqa: F401
from optbench.results.stats import steps_field  # noqa: F401
from optbench.results.logparse import parse_log, parse_log_text  # noqa: E402,F401
from optbench.results.leaderboard import build_leaderboard, write_leaderboard  # noqa: E402,F401
from optbench.results.sources import load_source  # noqa: E402,F401

__all__ = [
    "stats",
    "CurvePoint",
    "Provenance",
    "RecipeRecord",
    "Results",
    "RunRecord",
    "collect_provenance",
    "load_results",
    "parse_results",
    "results_from_runs",
    "save_results",
    "steps_field",
    "verdict_of",
    "parse_log",
    "parse_log_text",
    "build_leaderboard",
    "write_leaderboard",
    "load_source",
]
