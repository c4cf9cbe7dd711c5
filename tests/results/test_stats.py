"""The acceptance rules, exactly as published (track3.md section 7, workspace.md 'statistical bar')."""

from __future__ import annotations

import math

import pytest

from optbench.errors import OptbenchError
from optbench.results import stats

EPS = 1e-6  # "just above / just below" a threshold, far above the 1e-9 boundary tolerance

# (rule, n, published bound "mean < bound", exact threshold target - margin/sqrt(n))
THRESHOLDS = [
    ("workspace", 1, 3.275, 3.275),
    ("workspace", 4, 3.2775, 3.2775),
    ("workspace", 9, 3.2783, 3.28 - 0.005 / 3),
    ("upstream-2026-04-30", 1, 3.276, 3.276),
    ("upstream-2026-04-30", 4, 3.278, 3.278),
    ("upstream-2026-04-30", 10, 3.27874, 3.28 - 0.004 / math.sqrt(10)),
    ("upstream-2026-04-30", 20, 3.27911, 3.28 - 0.004 / math.sqrt(20)),
]


@pytest.mark.parametrize("rule,n,published,exact", THRESHOLDS)
def test_required_mean_matches_published(rule, n, published, exact):
    assert stats.required_mean(n, rule, target=3.28) == pytest.approx(exact, abs=1e-12)
    # the published bounds are the exact thresholds rounded to their printed digits
    digits = len(repr(published).split(".")[1])
    assert round(stats.required_mean(n, rule, target=3.28), digits) == pytest.approx(published, abs=1e-12)


@pytest.mark.parametrize("rule,n,published,exact", THRESHOLDS)
def test_just_below_passes_just_above_fails(rule, n, published, exact):
    assert stats.passes(exact - EPS, n, rule, target=3.28)
    assert not stats.passes(exact + EPS, n, rule, target=3.28)


def test_exact_boundaries_pass_as_the_formula_says():
    # (3.28 - 3.2775) * 2 is 0.004999999999999005 in binary floating point; the rule is ">= margin"
    assert (3.28 - 3.2775) * 2 < 0.005
    assert stats.passes(3.2775, 4, "workspace", target=3.28)
    assert stats.passes(3.275, 1, "workspace", target=3.28)
    assert stats.passes(3.276, 1, "upstream-2026-04-30", target=3.28)
    assert stats.passes(3.278, 4, "upstream-2026-04-30", target=3.28)
    # one logged digit (1e-5) above a boundary fails
    assert not stats.passes(3.27751, 4, "workspace", target=3.28)
    assert not stats.passes(3.27601, 1, "upstream-2026-04-30", target=3.28)


def test_published_examples_with_five_decimal_means():
    assert stats.passes(3.27833, 9, "workspace", target=3.28) and not stats.passes(3.27834, 9, "workspace", target=3.28)
    assert stats.passes(3.27873, 10, "upstream-2026-04-30", target=3.28)
    assert not stats.passes(3.27874, 10, "upstream-2026-04-30", target=3.28)
    # the default rule is the workspace's
    assert stats.passes(3.2750, 1, target=3.28) and not stats.passes(3.2755, 1, target=3.28)


def test_record_36_statistic():
    # baseline #36: n=10, mean 3.27866 -> stat 0.00424 (README), passes upstream, fails workspace
    z = stats.z_stat(3.27866, 10, 3.28)
    assert z == pytest.approx(0.00424, abs=5e-6)
    assert stats.passes(3.27866, 10, "upstream-2026-04-30", target=3.28)
    assert not stats.passes(3.27866, 10, "workspace", target=3.28)


def test_other_targets_are_parameters():
    assert stats.required_mean(1, "workspace", target=2.92) == pytest.approx(2.915)
    assert stats.passes(2.9149, 1, "workspace", target=2.92)
    assert not stats.passes(2.9151, 1, "workspace", target=2.92)
    assert not stats.passes(3.27, 1, "workspace", target=2.92)


def test_nan_mean_never_passes_and_unknown_rule_is_user_error():
    assert not stats.passes(float("nan"), 100, target=3.28)
    with pytest.raises(OptbenchError, match="rule"):
        stats.passes(3.2, 1, "nope", target=3.28)
    with pytest.raises(OptbenchError, match="n"):
        stats.required_mean(0, target=3.28)


# ----------------------------------------------------------------------------- pairwise


def test_pairwise_hand_computed_36_vs_12():
    # A = #12 (3325 steps, mean 3.2790, n=20), B = #36 (3250 steps, mean 3.2787, n=10)
    # loss diff 0.0003 + 75 steps * 0.0045/100 = 0.003375 -> 0.003675 / sqrt(1/20 + 1/10) = 0.0094888
    s = stats.pairwise_stat(3.2790, 20, 3325, 3.2787, 10, 3250, "upstream-2026-04-30")
    assert s == pytest.approx(0.003675 / math.sqrt(0.15), rel=1e-9)
    assert s == pytest.approx(0.0094888, abs=1e-6)
    assert stats.pairwise_better(3.2790, 20, 3325, 3.2787, 10, 3250, "upstream-2026-04-30")
    # the other direction is negative
    assert stats.pairwise_stat(3.2787, 10, 3250, 3.2790, 20, 3325) == pytest.approx(-s)


def test_pairwise_same_steps_small_gain_fails():
    # same step count, B lower by 0.002, n=4 each: 0.002 / sqrt(0.5) = 0.0028284 < 0.004 and < 0.005
    s = stats.pairwise_stat(3.2790, 4, 3000, 3.2770, 4, 3000)
    assert s == pytest.approx(0.002 / math.sqrt(0.5), rel=1e-9)
    assert not stats.pairwise_better(3.2790, 4, 3000, 3.2770, 4, 3000, "upstream-2026-04-30")
    # with n=16 each the same gain passes the upstream bar: 0.002 / sqrt(1/8) = 0.005657
    assert stats.pairwise_better(3.2790, 16, 3000, 3.2770, 16, 3000, "upstream-2026-04-30")


def test_pairwise_step_conversion_only():
    # equal losses, B 100 steps fewer, n=1 each: 0.0045 / sqrt(2) = 0.0031820 -> fails both rules
    s = stats.pairwise_stat(3.278, 1, 3400, 3.278, 1, 3300)
    assert s == pytest.approx(0.0045 / math.sqrt(2), rel=1e-9)
    assert not stats.pairwise_better(3.278, 1, 3400, 3.278, 1, 3300, "upstream-2026-04-30")
    # 200 steps fewer: 0.009/sqrt(2) = 0.006364 -> passes both
    assert stats.pairwise_better(3.278, 1, 3500, 3.278, 1, 3300, "workspace")


# ----------------------------------------------------------------------------- claimed step


def test_claimed_step_is_one_step_for_the_set_not_per_run():
    # Run 1 dips below 3.275 at 2900 then rises (noise), run 2 only at 3000.
    # Per-run early stopping would claim each run at its own best step (2900 and 3000) and report
    # mean (3.2740 + 3.2745)/2 = 3.27425 -> "passes at 2900". The rule uses the SET's mean per common step.
    runs = [
        {2800: 3.2800, 2900: 3.2740, 3000: 3.2790, 3100: 3.2750},
        {2800: 3.2800, 2900: 3.2790, 3000: 3.2745, 3100: 3.2760},
    ]
    v = stats.evaluate_runs(runs, "workspace", target=3.28)
    # n=2 -> need mean <= 3.28 - 0.005/sqrt(2) = 3.276464
    assert v.required_mean == pytest.approx(3.2764645, abs=1e-6)
    means = {p.step: p.mean for p in v.per_step}
    assert means[2900] == pytest.approx(3.2765)  # fails by 0.0000355
    assert means[3000] == pytest.approx(3.27675)  # fails
    assert means[3100] == pytest.approx(3.2755)  # passes
    assert v.claimed_step == 3100
    assert stats.claimed_step(runs, "workspace", target=3.28) == 3100
    # per run, each run is individually below target much earlier
    assert [stats.first_step_below(r, 3.28) for r in runs] == [2900, 2900]
    assert v.first_below_target == 2900


def test_claimed_step_only_uses_steps_common_to_all_runs():
    # run 2 has no eval at 3050 (different grid): the set cannot claim 3050 even though run 1's value is great
    runs = [[(3000, 3.2790), (3050, 3.2600), (3100, 3.2740)], [(3000, 3.2790), (3100, 3.2742)]]
    v = stats.evaluate_runs(runs, "workspace", target=3.28)
    assert v.common_steps == (3000, 3100)
    assert v.claimed_step == 3100


def test_diverged_run_counts_and_sinks_the_set():
    runs = [{3000: 3.270, 3250: 3.268}, {3000: 3.271, 3250: None}]
    v = stats.evaluate_runs(runs, "workspace", target=3.28)
    assert v.claimed_step == 3000  # at 3000 both runs are finite and the mean passes
    assert not next(p for p in v.per_step if p.step == 3250).passes  # NaN mean never passes


def test_never_reaching_target():
    v = stats.evaluate_runs([{0: 10.8, 100: 4.0, 200: 3.5}], "workspace", target=3.28)
    assert v.claimed_step is None and v.first_below_target is None and not v.passed
    assert v.reported_step is None and v.reported.step == 200


def test_below_target_but_not_passing_is_reported_with_fail():
    # like result #2: 5625 steps, 3.2790 n=1 -> reached the target, fails the rule
    v = stats.evaluate_runs([{5500: 3.2810, 5625: 3.2790}], "upstream-2026-04-30", target=3.28)
    assert not v.passed and v.first_below_target == 5625 and v.reported_step == 5625
    assert "FAIL" in stats.format_verdict(v)


# ----------------------------------------------------------------------------- runs needed


def test_runs_needed_without_spread():
    # workspace: n >= (0.005 / (3.28 - mean))^2
    assert stats.runs_needed(3.275, "workspace", target=3.28) == 1
    assert stats.runs_needed(3.2775, "workspace", target=3.28) == 4  # exactly on the boundary
    assert stats.runs_needed(3.2776, "workspace", target=3.28) == 5  # (0.005/0.0024)^2 = 4.34
    assert stats.runs_needed(3.2783, "workspace", target=3.28) == 9  # (0.005/0.0017)^2 = 8.65
    assert stats.runs_needed(3.27866, "upstream-2026-04-30", target=3.28) == 9  # (0.004/0.00134)^2 = 8.91
    assert stats.runs_needed(3.2800, "workspace", target=3.28) is None
    assert stats.runs_needed(3.2810, "workspace", target=3.28) is None
    for mean in (3.2701, 3.2755, 3.2771, 3.2788, 3.2795):
        n = stats.runs_needed(mean, "workspace", target=3.28)
        assert stats.passes(mean, n, "workspace", target=3.28) and (n == 1 or not stats.passes(mean, n - 1, "workspace", target=3.28))


def test_runs_needed_with_spread():
    # (3.28 - 3.2775)*sqrt(n) >= 0.005 + z_0.9 * 0.0013 = 0.005 + 1.28155*0.0013 = 0.0066660 -> n >= 7.11 -> 8
    assert stats.runs_needed(3.2775, "workspace", std=0.0013, confidence=0.9, target=3.28) == 8
    # confidence 0.5 ignores the spread
    assert stats.runs_needed(3.2775, "workspace", std=0.0013, confidence=0.5, target=3.28) == 4
    assert stats.runs_needed(3.2799, "workspace", max_runs=100, target=3.28) is None


def test_steps_field():
    assert stats.steps_field(3.28) == "steps_to_3_28"
    assert stats.steps_field(2.92) == "steps_to_2_92"
    assert stats.steps_field(3.3) == "steps_to_3_3"
    assert stats.steps_field(4) == "steps_to_4_0"
    with pytest.raises(OptbenchError, match="target"):
        stats.steps_field(-1)


def test_compare_verdicts_uses_reported_steps():
    # A: 2 runs reaching 3.2790 at 3325; B: 2 runs at 3.2770 at 3250 (upstream rule)
    a = stats.evaluate_runs([{3300: 3.2801, 3325: 3.2790}, {3300: 3.2803, 3325: 3.2790}], "upstream-2026-04-30", target=3.28)
    b = stats.evaluate_runs([{3250: 3.2770}, {3250: 3.2770}], "upstream-2026-04-30", target=3.28)
    s, better = stats.compare(a, b)
    # (0.0020 + 75 * 0.0045/100) / sqrt(1/2 + 1/2) = 0.005375
    assert s == pytest.approx(0.005375, abs=1e-9) and better
    never = stats.evaluate_runs([{3250: 3.30}], "upstream-2026-04-30", target=3.28)
    assert stats.compare(never, b) is None
