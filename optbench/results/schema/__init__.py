"""results.json: the one canonical record of an experiment's result.

One job per module: `models` (the pydantic models: the file's shape), `build` (a run set -> a record, with the
statistics), `files` (read, validate with every problem named by its field, write atomically), `provenance`
(where a run ran: git commit, torch, python, host). Import the names from here.

A file without `target` is a 3.28 file (legacy workspace files load unchanged): files.LEGACY_TARGET, the one
place optbench assumes a target.
"""

from optbench.clock import parse_timestamp
from optbench.results.schema.models import CurvePoint, Provenance, RecipeRecord, Results, RunRecord
from optbench.results.schema.files import consistency_problems, load_results, parse_results, save_results
from optbench.results.schema.build import results_from_runs
from optbench.results.schema.provenance import collect_provenance
from optbench.tuning import TuningBudget

__all__ = ["CurvePoint", "Provenance", "RecipeRecord", "Results", "RunRecord", "collect_provenance",
           "consistency_problems", "load_results", "parse_results", "parse_timestamp", "results_from_runs",
           "save_results", "TuningBudget"]
