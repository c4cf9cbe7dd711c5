"""Figures: val-loss curves of several optimizers, and a leaderboard's best steps over time (PNG, Agg).

    plot_curves({"Muon": muon_runs, "AdamW": adamw_runs}, target=3.28, path="curves.png")
    plot_best_over_time(list_of_results, "best.png")
"""

from __future__ import annotations

import math
import os
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # noqa: E402 - before pyplot; files only, never a window
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullLocator  # noqa: E402

from optbench.errors import OptbenchError  # noqa: E402
from optbench.results import stats  # noqa: E402
from optbench.clock import parse_timestamp  # noqa: E402
from optbench.results.schema import Results  # noqa: E402

_COLORS = plt.rcParams["axes.prop_cycle"].by_key()["color"]


def _save(fig: Any, path: str | os.PathLike) -> Path:
    from optbench.fsutil import atomic_write

    p = Path(path)
    if p.suffix.lower() != ".png":
        raise OptbenchError(f"--out: {p} must end in .png")
    atomic_write(p, lambda f: fig.savefig(f, format="png", dpi=130), mode="wb")
    plt.close(fig)
    return p


def _series(runs: Sequence[Any]) -> tuple[list[int], list[float], list[float], list[float], list[float], int]:
    """Common steps, mean, std, min, max over the runs (steps every run evaluated)."""
    curves = [stats.curve_map(r) for r in runs]
    if not curves:
        return [], [], [], [], [], 0
    common = sorted(set.intersection(*(set(c) for c in curves)))
    mean, std, lo, hi = [], [], [], []
    for s in common:
        vals = [c[s] for c in curves]
        m, sd = stats.mean_std(vals)
        mean.append(m)
        std.append(sd)
        finite = [v for v in vals if math.isfinite(v)]
        lo.append(min(finite) if finite else math.nan)
        hi.append(max(finite) if finite else math.nan)
    return common, mean, std, lo, hi, len(curves)


def _nice_ticks(lo: float, hi: float) -> list[float]:
    span = hi - lo
    for step in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0):
        if span / step <= 9:
            break
    first = math.ceil(lo / step) * step
    ticks, t = [], first
    while t <= hi + 1e-12:
        ticks.append(round(t, 6))
        t += step
    return ticks


def plot_curves(
    runs_by_label: Mapping[str, Sequence[Any]],
    target: float,
    path: str | os.PathLike = "curves.png",
    *,
    band: str = "minmax",
    rule: str | stats.Rule | None = None,
    title: str | None = None,
    ymax: float | None = None,
) -> Path:
    """Val loss vs step, one colour per label: the mean over seeds, a min/max (or ±std) band, the target line.

    `runs_by_label`: label -> runs (RunRecords, {step: loss} maps or (step, loss) pairs). The y axis is
    logarithmic and zoomed near the target (from just below the lowest mean to ~25 % above the target), as in
    the upstream comparison figures; the earliest steps sit above the frame. Each label's claimed step under
    `rule` (or, failing the rule, its first step with mean < target) is marked and given in the legend.
    Only steps every run of a label evaluated enter the mean; a run that went on longer than the others
    (the others were cut short) is drawn on from there as a thin dotted line of its own.
    """
    if band not in ("minmax", "std"):
        raise OptbenchError(f"band: must be 'minmax' or 'std', got {band!r}")
    if not runs_by_label:
        raise OptbenchError("plot: no runs to plot")
    r = stats.get_rule(rule)
    fig, (ax, az) = plt.subplots(1, 2, figsize=(13, 5.5), gridspec_kw={"width_ratios": [3, 2]})
    lowest = band_low = target
    max_step = 0
    zoom_from = math.inf  # first step where some mean comes within `near` of the target
    near = 0.03
    for i, (label, runs) in enumerate(runs_by_label.items()):
        color = _COLORS[i % len(_COLORS)]
        steps, mean, std, lo, hi, n = _series(runs)
        if not steps:
            raise OptbenchError(f"plot: {label!r} has no eval step common to all its runs")
        max_step = max(max_step, steps[-1])
        finite_means = [m for m in mean if math.isfinite(m)]
        if finite_means:
            lowest = min(lowest, min(finite_means))
        zoom_from = min([zoom_from] + [s for s, m in zip(steps, mean) if math.isfinite(m) and m < target + near])
        v = stats.evaluate_runs(runs, r, target=target)
        if v.passed:
            mark = f"{v.claimed_step:,} steps ✓"
        elif v.first_below_target is not None:
            mark = f"{v.first_below_target:,} steps ✗"
        else:
            mark = "target not reached"
        if band == "minmax":
            b_lo, b_hi = lo, hi
        else:
            b_lo = [m - s for m, s in zip(mean, std)]
            b_hi = [m + s for m, s in zip(mean, std)]
        band_low = min([band_low] + [b for b in b_lo if math.isfinite(b)])
        at = v.reported_step
        at_mean = next(p.mean for p in v.per_step if p.step == at) if at is not None else None
        # runs that go on past the steps common to all (a cut-short seed): their own tails, thin and dotted
        tails = []
        for c in map(stats.curve_map, runs):
            tail = sorted((s, v) for s, v in c.items() if s > steps[-1] and math.isfinite(v))
            if tail:
                tails.append([(steps[-1], c[steps[-1]])] + tail)
                max_step = max(max_step, tail[-1][0])
                lowest = min(lowest, min(v for _, v in tail))
        extra = f"; {n - len(tails)} of {n} runs end at step {steps[-1]:,}" if tails else ""
        for a in (ax, az):
            a.plot(steps, mean, color=color, lw=1.8, label=f"{label} (n={n}): {mark}{extra}", zorder=3)
            for tail in tails:
                a.plot([t[0] for t in tail], [t[1] for t in tail], color=color, lw=0.9, ls=":", zorder=3)
            if n > 1:
                a.fill_between(steps, b_lo, b_hi, color=color, alpha=0.22, lw=0, zorder=2)
            if at is not None:
                a.plot([at], [at_mean], "o", color=color, ms=6, mec="white", mew=1.0, zorder=4)
    for a in (ax, az):
        a.axhline(target, color="black", ls="--", lw=1.0, zorder=1)
        a.grid(True, which="major", alpha=0.3)
        a.set_xlabel("step")
    # left: the whole run, log y, zoomed from just below the lowest mean to ~22 % above the target
    ax.set_yscale("log")
    top = ymax if ymax is not None else target * 1.22
    bottom = min(lowest, target) - 0.01
    ax.set_ylim(bottom, top)
    ticks = _nice_ticks(bottom, top)
    if not any(abs(t - target) < 1e-9 for t in ticks):
        ticks = sorted(t for t in ticks + [target] if abs(t - target) > 0.025 or t == target)
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(FormatStrFormatter("%.2f"))
    ax.text(0.01, target, f" target {target:g}", transform=ax.get_yaxis_transform(), va="bottom", ha="left", fontsize=9)
    ax.set_xlim(0, max_step * 1.02)
    ax.set_ylabel("val loss (log scale)")
    what = "min–max over seeds" if band == "minmax" else "±1 std over seeds"
    ax.set_title(title or f"Validation loss: mean line, band = {what}; rule {r.name}", fontsize=11)
    ax.legend(loc="upper right", fontsize=9, framealpha=0.9)
    # right: near the target, linear y, where the seed spread and the claimed steps are visible
    if math.isinf(zoom_from):
        zoom_from = max_step * 0.8
    span = max_step - zoom_from
    az.set_xlim(zoom_from - 0.05 * span - 1, max_step + 0.05 * span + 1)
    z_lo = min(band_low, lowest, target - r.margin) - 0.002
    az.set_ylim(z_lo, target + near)
    az.yaxis.set_major_formatter(FormatStrFormatter("%.3f"))
    az.axhline(stats.required_mean(1, r, target=target), color="0.5", ls=":", lw=1.0, zorder=1)
    az.text(0.99, stats.required_mean(1, r, target=target), "n=1 bar ", transform=az.get_yaxis_transform(),
            va="top", ha="right", fontsize=8, color="0.4")
    az.set_title("Near the target (dot = reported step)", fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


def _when(r: Results) -> datetime | None:
    return parse_timestamp(r.timestamp)


def plot_best_over_time(
    results_list: Sequence[Results],
    path: str | os.PathLike = "best.png",
    *,
    rule: str | stats.Rule | None = None,
    title: str | None = None,
) -> Path:
    """Best steps over time for a leaderboard: every result as a dot, the running best as a step line, and
    each NEW BEST (a passing, official result lower than every earlier one) labelled with its steps and
    optimizer. Results without a timestamp or without steps are left out.
    """
    from optbench.results.eligibility import may_rank
    from optbench.results.judging import judge_record

    r = stats.get_rule(rule)
    pts = []
    for res in results_list:
        w = _when(res)
        j = judge_record(res, r)
        if w is None or j.steps is None:
            continue
        pts.append((w, j.steps, may_rank(res, j), res.optimizer))
    if not pts:
        raise OptbenchError("plot: no result with both a timestamp and a step count")
    pts.sort(key=lambda p: (p[0], p[1], p[3]))
    fig, ax = plt.subplots(figsize=(9, 5))
    other = [p for p in pts if not p[2]]
    good = [p for p in pts if p[2]]
    if other:
        ax.scatter([p[0] for p in other], [p[1] for p in other], s=22, color="0.6", marker="x",
                   label="fails the rule / unofficial", zorder=2)
    if good:
        ax.scatter([p[0] for p in good], [p[1] for p in good], s=22, color="tab:blue", alpha=0.6,
                   label="passing result", zorder=2)
    best = None
    records = []
    for p in good:
        if best is None or p[1] < best:
            best = p[1]
            records.append(p)
    if records:
        xs = [p[0] for p in records] + [max(p[0] for p in pts)]
        ys = [p[1] for p in records] + [records[-1][1]]
        ax.step(xs, ys, where="post", color="tab:red", lw=1.8, zorder=3, label="best so far")
        ax.scatter([p[0] for p in records], [p[1] for p in records], s=60, color="tab:red", zorder=4,
                   edgecolor="white", label="NEW BEST")
        for p in records:
            ax.annotate(f"{p[1]:,} {p[3]}", (p[0], p[1]), textcoords="offset points", xytext=(6, 6),
                        fontsize=8, color="tab:red")
    ax.set_ylabel("steps to target (fewer is better)")
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
    fig.autofmt_xdate()
    lo = min(p[1] for p in pts)
    hi = max(p[1] for p in pts)
    pad = max(50, 0.08 * (hi - lo))
    ax.set_ylim(lo - pad, hi + pad)
    if len({p[0] for p in pts}) == 1:
        w = pts[0][0]
        ax.set_xlim(w.replace(hour=0, minute=0, second=0), w.replace(hour=23, minute=59, second=59))
    ax.grid(True, alpha=0.3)
    ax.set_title(title or f"Best steps over time (rule {r.name})", fontsize=11)
    ax.legend(loc="best", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)
