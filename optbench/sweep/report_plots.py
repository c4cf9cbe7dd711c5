"""The report's figures (matplotlib, Agg): score against each hyperparameter, lr x wd, history, importances.

Every function takes the report's rows (one dict per trial: stage, number, kind, value, params) and writes a PNG.
One row of panels per stage: a half-length stage's scores are not comparable with a full-length one's.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

STAGE_COLORS = ("tab:blue", "tab:orange")
LR_WD = ("lr", "weight_decay")


def _is_log(spec: dict) -> bool:
    """A space entry on a log scale: `log = [lo, hi]`, or an int range with `log = true`."""
    return isinstance(spec.get("log"), list) or spec.get("log") is True


def _stages(rows: list[dict]) -> list[str]:
    return list(dict.fromkeys(r["stage"] for r in rows))


def _numeric(rows: list[dict], name: str) -> bool:
    vals = [r["params"].get(name) for r in rows if name in r["params"]]
    return bool(vals) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals)


def plot_params(rows: list[dict], spaces: dict, best: dict, objective: str, path: Path) -> Path:
    """Score against each numeric hyperparameter (log x for log-scaled ones): one dot per complete trial, the best
    as a red star, pruned (x) and failed (v) trials as marks along the bottom (they have no score)."""
    stages = _stages(rows)
    names = [n for n in dict.fromkeys(k for s in stages for k in spaces[s]) if _numeric(rows, n)]
    names.sort(key=lambda n: (n not in LR_WD, LR_WD.index(n) if n in LR_WD else 0))
    fig, axes = plt.subplots(len(stages), max(1, len(names)), figsize=(4.2 * max(1, len(names)), 3.4 * len(stages)),
                             squeeze=False)
    for i, stage in enumerate(stages):
        srows = [r for r in rows if r["stage"] == stage]
        for j, name in enumerate(names):
            ax = axes[i][j]
            if _is_log(spaces[stage].get(name, {})):
                ax.set_xscale("log")
            done = [r for r in srows if r["kind"] == "complete" and name in r["params"]]
            ax.scatter([r["params"][name] for r in done], [r["value"] for r in done], s=22,
                       color=STAGE_COLORS[i % 2], alpha=0.8, label="trial", zorder=2)
            for k, marker, color in (("pruned", "x", "0.45"), ("failed", "v", "tab:red")):
                xs = [r["params"][name] for r in srows if r["kind"] == k and name in r["params"]]
                if xs:
                    ax.scatter(xs, [0.03] * len(xs), marker=marker, color=color, s=30, label=f"{k} (no score)",
                               transform=ax.get_xaxis_transform(), zorder=3)
            b = best.get(stage)
            if b is not None and name in b["params"]:
                ax.scatter([b["params"][name]], [b["value"]], marker="*", s=220, color="red", edgecolor="black",
                           zorder=4, label=f"best (trial {b['number']})")
            ax.set_xlabel(name)
            ax.set_ylabel(f"{objective} ({stage})" if j == 0 else "")
            ax.grid(alpha=0.3, which="both")
            if i == 0 and j == 0:
                ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(f"score ({objective}, lower is better) against each hyperparameter")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_lr_wd(rows: list[dict], spaces: dict, best: dict, path: Path) -> Path | None:
    """lr against weight_decay, coloured by score (log axes where the space is log)."""
    stages = [s for s in _stages(rows) if all(n in spaces[s] for n in LR_WD)]
    if not stages:
        return None
    fig, axes = plt.subplots(1, len(stages), figsize=(5.2 * len(stages), 4.2), squeeze=False)
    for ax, stage in zip(axes[0], stages):
        done = [r for r in rows if r["stage"] == stage and r["kind"] == "complete"]
        for n, setter in zip(LR_WD, (ax.set_xscale, ax.set_yscale)):
            if _is_log(spaces[stage][n]):
                setter("log")
        if done:
            sc = ax.scatter([r["params"]["lr"] for r in done], [r["params"]["weight_decay"] for r in done],
                            c=[r["value"] for r in done], cmap="viridis_r", s=40, edgecolor="black", linewidth=0.3)
            fig.colorbar(sc, ax=ax, label="score (lower is better)")
        other = [r for r in rows if r["stage"] == stage and r["kind"] in ("pruned", "failed")]
        if other:
            ax.scatter([r["params"]["lr"] for r in other], [r["params"]["weight_decay"] for r in other], marker="x",
                       color="0.45", s=30, label="pruned / failed")
            ax.legend(fontsize=7)
        b = best.get(stage)
        if b is not None:
            ax.scatter([b["params"]["lr"]], [b["params"]["weight_decay"]], marker="*", s=260, color="red",
                       edgecolor="black", zorder=4)
        ax.set_xlabel("lr")
        ax.set_ylabel("weight_decay")
        ax.set_title(stage)
        ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_history(rows: list[dict], objective: str, path: Path) -> Path:
    """Score by trial number with the best so far, per stage."""
    stages = _stages(rows)
    fig, axes = plt.subplots(1, len(stages), figsize=(5.5 * len(stages), 3.6), squeeze=False)
    for i, (ax, stage) in enumerate(zip(axes[0], stages)):
        done = sorted((r for r in rows if r["stage"] == stage and r["kind"] == "complete"), key=lambda r: r["number"])
        if done:
            x = [r["number"] for r in done]
            y = [r["value"] for r in done]
            ax.scatter(x, y, s=18, color=STAGE_COLORS[i % 2], label="trial")
            ax.step(x, np.minimum.accumulate(y), where="post", color="red", label="best so far")
            ax.legend(fontsize=7)
        pr = [r["number"] for r in rows if r["stage"] == stage and r["kind"] == "pruned"]
        if pr:
            ax.scatter(pr, [0.03] * len(pr), marker="x", color="0.45", transform=ax.get_xaxis_transform(),
                       label="pruned")
        ax.set_xlabel("trial number")
        ax.set_ylabel(objective)
        ax.set_title(stage)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_importances(importances: dict, path: Path) -> Path | None:
    """Horizontal bars of each stage's parameter importances."""
    stages = [s for s, imp in importances.items() if imp]
    if not stages:
        return None
    fig, axes = plt.subplots(1, len(stages), figsize=(4.8 * len(stages), 0.5 + 0.45 * max(len(importances[s])
                                                                                        for s in stages) + 1),
                             squeeze=False)
    for ax, stage in zip(axes[0], stages):
        imp = importances[stage]
        names = list(imp)[::-1]
        ax.barh(names, [imp[n] for n in names], color="tab:green")
        ax.set_xlim(0, 1)
        ax.set_xlabel("importance (PED-ANOVA, sums to 1)")
        ax.set_title(stage)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
