"""How well one ranking predicts another: Kendall's tau-b and Spearman's rho with percentile-bootstrap intervals.

The bootstrap resamples the compared items (optimizers) with replacement, as pairs (proxy figure, full figure),
and recomputes each coefficient; resamples on which a coefficient is undefined (every value tied on one side)
are dropped, and the interval is the 2.5th..97.5th percentile of the rest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from optbench.errors import OptbenchError


@dataclass(frozen=True)
class Coefficient:
    value: float
    low: float  # bootstrap interval
    high: float
    p_value: float  # scipy's test of no association

    def fmt(self) -> str:
        return f"{self.value:.2f} [{self.low:.2f}, {self.high:.2f}]"


@dataclass(frozen=True)
class RankAgreement:
    n: int
    tau: Coefficient  # Kendall tau-b (ties on either side allowed)
    rho: Coefficient  # Spearman rho
    resamples: int  # bootstrap resamples that defined both coefficients
    confidence: float


def _tau(x: np.ndarray, y: np.ndarray) -> float:
    return float(stats.kendalltau(x, y).statistic)


def _rho(x: np.ndarray, y: np.ndarray) -> float:
    return float(stats.spearmanr(x, y).statistic)


def rank_agreement(proxy: Sequence[float], full: Sequence[float], *, resamples: int = 10_000,
                   confidence: float = 0.95, seed: int = 0) -> RankAgreement:
    """Kendall tau-b and Spearman rho of two paired sequences, with percentile-bootstrap intervals."""
    x, y = np.asarray(proxy, dtype=float), np.asarray(full, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise OptbenchError(f"rank agreement: need two sequences of the same length, got {x.shape} and {y.shape}")
    if len(x) < 3:
        raise OptbenchError(f"rank agreement: need at least 3 pairs, got {len(x)}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise OptbenchError("rank agreement: every figure must be a finite number")
    if not 0 < confidence < 1:
        raise OptbenchError(f"confidence: must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(resamples, len(x)))
    taus, rhos = [], []
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant resamples: scipy warns and returns nan, dropped below
        for i in idx:
            t, r = _tau(x[i], y[i]), _rho(x[i], y[i])
            if math.isfinite(t) and math.isfinite(r):
                taus.append(t)
                rhos.append(r)
    lo, hi = 100 * (1 - confidence) / 2, 100 * (1 + confidence) / 2

    def coef(value: float, p: float, boot: list[float]) -> Coefficient:
        low, high = np.percentile(boot, [lo, hi]) if boot else (math.nan, math.nan)
        return Coefficient(value, float(low), float(high), p)

    kt, sr = stats.kendalltau(x, y), stats.spearmanr(x, y)
    return RankAgreement(n=len(x), tau=coef(float(kt.statistic), float(kt.pvalue), taus),
                         rho=coef(float(sr.statistic), float(sr.pvalue), rhos), resamples=len(taus),
                         confidence=confidence)
