"""The two objectives, scored from results.json: the seed-mean final loss, and step-equivalents."""

from __future__ import annotations

import pytest

from optbench.results.schema import RunRecord, results_from_runs
from optbench.sweep.objective import score, steps_equivalent
from optbench.tracks import get_track


def _results(finals_by_seed, target=5.0, rule="workspace", T=100):
    runs = [RunRecord.from_curve([(0, 7.6), (50, f + 0.2), (90, f + 0.01), (T, f)], target=target, seed=i)
            for i, f in enumerate(finals_by_seed)]
    return results_from_runs(runs, agent_id="a", experiment="e", optimizer="adamw", target=target, rule=rule,
                             train_steps=T)


def test_exchange_rates():
    assert get_track("small").exchange_rate == pytest.approx(0.0045 / 100)
    assert get_track("medium").exchange_rate == pytest.approx(0.0045 / 100)
    assert get_track("nano").exchange_rate == 0.0049 and get_track("cpu").exchange_rate == 0.0024  # docs/tracks.md


def test_steps_equivalent_math():
    assert steps_equivalent(3.2845, 3000, 3.28, 0.0045 / 100) == pytest.approx(3100.0)
    assert steps_equivalent(3.2755, 3000, 3.28, 0.0045 / 100) == pytest.approx(2900.0)


def test_loss_objective_is_the_seed_mean_final_loss():
    s = score(_results([5.1, 5.3]), "loss", 0.01)
    assert s.value == pytest.approx(5.2) and s.mean_final == pytest.approx(5.2) and not s.passes


def test_steps_objective_above_target_costs_the_missing_steps():
    s = score(_results([5.1, 5.3]), "steps", 0.01)
    assert s.value == pytest.approx(100 + (5.2 - 5.0) / 0.01) and s.claimed_step is None


def test_steps_objective_is_the_claimed_step_when_the_seeds_pass():
    r = _results([4.90, 4.92])  # mean 4.91 passes the workspace rule at n=2 by step 90 (4.92 < 4.99646)
    assert r.passes_rule and r.claimed_step == 90
    s = score(r, "steps", 0.01)
    assert s.value == 90.0 and s.passes and s.claimed_step == 90
