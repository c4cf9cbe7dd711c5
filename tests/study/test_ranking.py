"""Kendall tau-b / Spearman rho with bootstrap intervals (optbench.study.ranking)."""

import pytest

from optbench.errors import OptbenchError
from optbench.study.ranking import rank_agreement


def test_one_swap_in_five_gives_the_textbook_coefficients():
    # one discordant pair of 10: tau = (9 - 1) / 10; rho = 1 - 6 * (1 + 1) / (5 * 24)
    a = rank_agreement([1, 2, 3, 4, 5], [10, 20, 30, 50, 40], resamples=500)
    assert a.tau.value == pytest.approx(0.8, abs=1e-12)
    assert a.rho.value == pytest.approx(0.9, abs=1e-12)
    assert a.n == 5
    assert a.tau.low <= a.tau.value <= a.tau.high
    assert a.rho.low <= a.rho.value <= a.rho.high


def test_ties_use_tau_b():
    # x has one tie: tau-b = (C - D) / sqrt((n0 - n1)(n0 - n2)) = 5 / sqrt(5 * 6)
    a = rank_agreement([1, 1, 2, 3], [1, 2, 3, 4], resamples=200)
    assert a.tau.value == pytest.approx(5 / (5 * 6) ** 0.5, abs=1e-12)


def test_perfect_agreement_has_a_degenerate_interval_at_one():
    a = rank_agreement([3, 1, 2, 5, 4], [30, 10, 20, 50, 40], resamples=300)
    for c in (a.tau, a.rho):
        assert (c.value, c.low, c.high) == pytest.approx((1.0, 1.0, 1.0), abs=1e-12)


def test_reversed_order_is_minus_one():
    a = rank_agreement([1, 2, 3, 4], [4, 3, 2, 1], resamples=100)
    assert a.tau.value == -1.0 and a.rho.value == -1.0


def test_bootstrap_is_reproducible_and_drops_constant_resamples():
    x, y = [1, 2, 3], [1, 3, 2]
    a, b = rank_agreement(x, y, resamples=400, seed=7), rank_agreement(x, y, resamples=400, seed=7)
    assert a == b
    # a resample that draws one item 3 times (probability 3/27) defines no coefficient and is dropped
    assert 400 - 3 * 400 * 2 / 27 < a.resamples < 400


@pytest.mark.parametrize("x, y, msg", [
    ([1, 2], [1, 2], "at least 3"),
    ([1, 2, 3], [1, 2], "same length"),
    ([1, 2, float("nan")], [1, 2, 3], "finite"),
])
def test_bad_input(x, y, msg):
    with pytest.raises(OptbenchError, match=msg):
        rank_agreement(x, y, resamples=10)
