"""The two sweep objectives (both minimised), scored from a trial's results.json.

- `loss`:  the seed-mean val loss at the end of the run (tuning at a fixed train_steps).
- `steps`: step-equivalents: the claimed step when the seed set passes the track's rule, otherwise
           train_steps + (mean - target) / r, with r the track's exchange rate (val loss per step).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optbench.results.schema import Results


@dataclass(frozen=True)
class Score:
    value: float
    mean_final: float  # seed-mean of the runs' last evals
    claimed_step: int | None  # when the seed set passes the rule
    passes: bool


def steps_equivalent(mean_final: float, train_steps: int, target: float, exchange_rate: float) -> float:
    """train_steps + (mean - target) / r: a run that ends above the target costs the steps it would still need."""
    return train_steps + (mean_final - target) / exchange_rate


def score(results: Results, objective: str, exchange_rate: float) -> Score:
    """The objective of a finished, non-diverged run set."""
    finals = [r.final_val_loss for r in results.runs]
    mean = float(np.mean(finals))
    passes = bool(results.passes_rule) and results.claimed_step is not None
    if objective == "loss":
        value = mean
    elif passes:
        value = float(results.claimed_step)
    else:
        value = steps_equivalent(mean, results.train_steps, results.target, exchange_rate)
    return Score(value, mean, results.claimed_step if passes else None, passes)
