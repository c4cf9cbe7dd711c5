"""The study's report: proxy steps of a final run set, the ratio, and a whole small study end to end."""

import math

import pytest

from optbench.results import stats
from optbench.study.report import proxy_steps

RULE = stats.Rule(name="t", sigma=0.01, margin=0.03, p=0.001)


def test_a_passing_set_scores_its_claimed_step():
    runs = [{0: 9.0, 100: 4.5, 200: 4.2}, {0: 9.0, 100: 4.6, 200: 4.3}]
    v = stats.evaluate_runs(runs, RULE, target=4.6)
    # step 100: mean 4.55, (4.6 - 4.55) * sqrt(2) = 0.0707 >= 0.03
    assert proxy_steps(v, 200, exchange_rate=0.001) == (100.0, False)


def test_a_failing_set_scores_its_step_equivalent():
    runs = [{0: 9.0, 100: 4.7, 200: 4.62}, {0: 9.0, 100: 4.8, 200: 4.64}]
    v = stats.evaluate_runs(runs, RULE, target=4.6)
    required = 4.6 - 0.03 / math.sqrt(2)
    steps, extrapolated = proxy_steps(v, 200, exchange_rate=0.001)
    assert extrapolated
    assert steps == pytest.approx(200 + (4.63 - required) / 0.001, rel=1e-12)
