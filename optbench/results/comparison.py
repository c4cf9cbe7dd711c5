"""The optimizer-comparison figures of KellerJordan/modded-nanogpt records/102924_Optimizers, regenerated from runs.

    lines = [comparison_line("Muon", muon_runs), comparison_line("Adam", adam_runs)]
    plot_comparison(lines, "figs/", tokens_per_step=524288, hardware="8xH100")

Two PNGs, as that README shows them: validation loss against training tokens (steps on the top axis; steps alone
when tokens per step are unknown) and against wall-clock training time in minutes (seconds for runs shorter than
two minutes); one line with dots per
optimizer (the mean over its seeds at the steps every seed evaluated), its ms/step right-aligned in the legend,
and the y axis zoomed to the last part of training (from just below the lowest loss to `span` above it: the
README's 3.25 to 4.10).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")  # noqa: E402 - before pyplot; files only, never a window
import matplotlib.pyplot as plt  # noqa: E402

from optbench.errors import OptbenchError  # noqa: E402
from optbench.fsutil import atomic_write  # noqa: E402

FILES = {"tokens": "comparison_by_tokens.png", "steps": "comparison_by_steps.png", "time": "comparison_by_time.png"}


@dataclass(frozen=True)
class Line:
    """One optimizer's curve: mean val loss and mean training time over its runs at their common eval steps."""

    label: str
    steps: list[int]
    val_loss: list[float]
    minutes: list[float | None]  # training time at each step (None where a run did not record it)
    n: int  # runs averaged
    logged_ms_per_step: float | None = None  # the runs' own step_avg (upstream logs), mean over runs

    @property
    def ms_per_step(self) -> float | None:
        """The runs' logged step_avg (upstream's clock skips the first steps), else training time per step over
        the whole line (last timed step)."""
        if self.logged_ms_per_step is not None:
            return self.logged_ms_per_step
        for s, m in zip(reversed(self.steps), reversed(self.minutes)):
            if m is not None and s > 0:
                return 60_000 * m / s
        return None


def comparison_line(label: str, runs: Sequence[Any]) -> Line:
    """Average runs (RunRecords with curves) at the eval steps all of them share; non-finite losses end the line."""
    if not runs:
        raise OptbenchError(f"compare: {label!r} has no runs")
    curves = [{p.step: p for p in r.curve} for r in runs]
    common = sorted(set.intersection(*(set(c) for c in curves)))
    steps, loss, minutes = [], [], []
    for s in common:
        pts = [c[s] for c in curves]
        vals = [p.val_loss for p in pts]
        if any(v is None or not math.isfinite(v) for v in vals):
            break  # a diverged seed: the mean stops here
        steps.append(s)
        loss.append(sum(vals) / len(vals))
        times = [p.train_time_s for p in pts]
        minutes.append(None if any(t is None for t in times) else sum(times) / len(times) / 60)
    if not steps:
        raise OptbenchError(f"compare: {label!r} has no eval step common to all its runs")
    logged = [(r.model_extra or {}).get("step_avg_ms") for r in runs]
    avg = sum(logged) / len(logged) if all(isinstance(v, (int, float)) for v in logged) else None
    return Line(label, steps, loss, minutes, len(runs), avg)


def _legend_labels(lines: Sequence[Line]) -> list[str]:
    """`label   123ms/step`, padded so that the speeds line up on the right (monospace legend)."""
    speeds = [f"{ln.ms_per_step:.0f}ms/step" if ln.ms_per_step is not None else "" for ln in lines]
    names = [ln.label + (f" (n={ln.n})" if ln.n > 1 else "") for ln in lines]
    w, ws = max(len(n) for n in names), max(len(s) for s in speeds)
    return [f"{n:<{w}}   {s:>{ws}}".rstrip() for n, s in zip(names, speeds)]


def _ylim(lines: Sequence[Line], span: float) -> tuple[float, float]:
    lowest = min(min(ln.val_loss) for ln in lines)
    highest = max(max(ln.val_loss) for ln in lines)
    bottom = lowest - 0.025
    return bottom, min(bottom + span, highest + 0.025)


def _figure(lines, xs_of, xlabel: str, title: str, ylim, target, top_axis=None):
    fig, ax = plt.subplots(figsize=(7, 4.85))
    for ln, label in zip(lines, _legend_labels(lines)):
        xs, ys = xs_of(ln)
        ax.plot(xs, ys, ".-", ms=3.5, lw=1.6, label=label)
    if target is not None:
        ax.axhline(target, color="0.55", ls="--", lw=0.9, zorder=0)
    ax.set_ylim(*ylim)
    ax.set_xlabel(xlabel, fontsize=12)
    ax.set_ylabel("Validation loss", fontsize=12)
    ax.set_title(title, fontsize=12)
    ax.legend(loc="upper right", prop={"family": "monospace", "size": 8}, framealpha=0.9)
    if top_axis is not None:
        sec = ax.secondary_xaxis("top", functions=top_axis[1])
        sec.set_xlabel(top_axis[0], fontsize=9)
    fig.tight_layout()
    return fig


def _title(by: str, subject: str | None) -> str:
    return f"Optimizer comparison by {by}" + (f" ({subject})" if subject else "")


def _save(fig, path: Path) -> Path:
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=200), mode="wb")
    plt.close(fig)
    return path


def plot_comparison(
    lines: Sequence[Line],
    out_dir: str | os.PathLike,
    *,
    tokens_per_step: int | None = None,
    hardware: str | None = None,
    subject: str | None = None,
    target: float | None = None,
    span: float = 0.85,
) -> list[Path]:
    """Write the two figures into out_dir (created); returns their paths (by tokens or steps, then by time; the
    time figure only when every line has training times). Titles read "Optimizer comparison by tokens (subject)"."""
    if not lines:
        raise OptbenchError("compare: nothing to plot")
    labels = [ln.label for ln in lines]
    if len(set(labels)) != len(labels):
        raise OptbenchError(f"compare: two lines share a label ({', '.join(labels)}); name them LABEL=PATH")
    if tokens_per_step is not None and tokens_per_step < 1:
        raise OptbenchError(f"compare: tokens per step must be positive, got {tokens_per_step}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ylim = _ylim(lines, span)
    paths = []
    if tokens_per_step:
        tps = tokens_per_step
        fig = _figure(lines, lambda ln: ([s * tps for s in ln.steps], ln.val_loss), "Training tokens",
                      _title("tokens", subject), ylim, target,
                      top_axis=(f"steps ({tps:,} tokens each)", (lambda t: t / tps, lambda s: s * tps)))
        paths.append(_save(fig, out / FILES["tokens"]))
    else:
        fig = _figure(lines, lambda ln: (ln.steps, ln.val_loss), "Training steps", _title("steps", subject), ylim,
                      target)
        paths.append(_save(fig, out / FILES["steps"]))
    if all(all(m is not None for m in ln.minutes) for ln in lines):
        where = f" on {hardware}" if hardware else ""
        longest = max(max(ln.minutes) for ln in lines)
        unit, per_minute = ("minutes", 1) if longest >= 2 else ("seconds", 60)  # CPU-size runs take seconds
        fig = _figure(lines, lambda ln: ([m * per_minute for m in ln.minutes], ln.val_loss),
                      f"Wallclock time{where} ({unit})", _title("time", subject), ylim, target)
        paths.append(_save(fig, out / FILES["time"]))
    return paths


def hardware_of(results) -> str | None:
    """`8 x NVIDIA H100 80GB HBM3` / `cpu` from a results.json's provenance, if it says."""
    prov = getattr(results, "provenance", None)
    if prov is None or not prov.device:
        return None
    return f"{prov.world_size} x {prov.device}" if prov.world_size and prov.world_size > 1 else prov.device


def named_source(arg: str) -> tuple[str | None, str]:
    """`LABEL=PATH` -> (LABEL, PATH), splitting at the first '=' whose right side exists (labels may hold '=');
    a plain path (or nothing that exists) -> (None, arg)."""
    if not Path(arg).exists():
        for i, ch in enumerate(arg):
            if ch == "=" and Path(arg[i + 1 :]).exists():
                return arg[:i], arg[i + 1 :]
    return None, arg


def compare_sources(named: Sequence[tuple[str | None, str]], out_dir: str | os.PathLike, *,
                    tokens_per_step: int | None = None, hardware: str | None = None,
                    subject: str | None = None, target: float | None = None) -> list[Path]:
    """The figures for runs given as (label or None, path): run dirs, results.json files or upstream logs (see
    optbench.results.sources). A label defaults to the recipe (else optimizer) of a results.json, else the file
    name. Tokens per step and the hardware default to what every results.json agrees on (their track, provenance)."""
    from optbench.results.sources import load_source
    from optbench.tracks import get_track

    lines, tps, hws = [], set(), set()
    for label, path in named:
        src = load_source(path, target)
        res = src.results
        if not src.runs:
            raise OptbenchError(f"{path}: no per-seed curves to compare")
        if label is None:
            label = (res.recipe.name if res is not None and res.recipe is not None else
                     res.optimizer if res is not None else src.label)
        lines.append(comparison_line(label, src.runs))
        try:
            tps.add(get_track(res.track).batch_tokens if res is not None and res.track else None)
        except OptbenchError:
            tps.add(None)
        hws.add(hardware_of(res) if res is not None else None)
    if tokens_per_step is None and len(tps) == 1:
        tokens_per_step = tps.pop()
    if hardware is None and len(hws) == 1:
        hardware = hws.pop()
    return plot_comparison(lines, out_dir, tokens_per_step=tokens_per_step, hardware=hardware, subject=subject,
                           target=target)


__all__ = ["Line", "comparison_line", "compare_sources", "hardware_of", "named_source", "plot_comparison", "FILES"]
