"""`optbench results validate`, `optbench stats`, `optbench leaderboard`, `optbench plot`: thin wrappers over
optbench.results (schema, stats, leaderboard, plots)."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from optbench.cli.app import app
from optbench.errors import OptbenchError

results_app = typer.Typer(no_args_is_help=True, help="results.json records: validate them.")
app.add_typer(results_app, name="results")


def _fmt(x: float | None, digits: int = 5) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "nan"
    return f"{x:.{digits}f}"


@results_app.command("validate")
def validate_cmd(
    files: List[Path] = typer.Argument(..., help="results.json files (or folders holding one)"),
) -> None:
    """Check results.json files against the schema; every problem is named with its field. Exit 2 on any."""
    from optbench.results.schema import load_results

    bad = 0
    for f in files:
        try:
            r = load_results(f)
        except OptbenchError as e:
            bad += 1
            print(f"INVALID {e}", file=sys.stderr)
            continue
        steps = r.steps_to_target
        print(f"ok {f}: {r.steps_field} {steps if steps is not None else 'null'}, n={r.n}, optimizer {r.optimizer}")
    if bad:
        print(f"optbench: error: {bad} of {len(files)} file(s) invalid", file=sys.stderr)
        raise typer.Exit(2)


@app.command("stats")
def stats_cmd(
    sources: List[Path] = typer.Argument(
        ..., help="run dirs (folders with results.json), results.json files, upstream-format .txt logs or folders "
                  "of logs (searched recursively); together one run set"
    ),
    rule: Optional[str] = typer.Option(None, "--rule", help="stats rule preset (default: the record's own, else the "
                                                            "rule in force at its date, else its track's)"),
    target: Optional[float] = typer.Option(None, "--target", help="target val loss (default: the record's, else its "
                                                                  "track's)"),
    metric: str = typer.Option("val_loss", "--metric", help="the eval-line field a claim is made on (e.g. "
                                                           "val_ema_loss)"),
    track: Optional[str] = typer.Option(None, "--track", help="the track of logs that name none (default small)"),
    check: bool = typer.Option(False, "--check", help="exit 1 when the run set fails the rule"),
    baseline: Optional[List[Path]] = typer.Option(
        None, "--baseline", help="run set A (run dirs/results.json/logs, repeatable): is this run set significantly better (pairwise rule)?"
    ),
) -> None:
    """Per-seed table and the verdict of the rule for a run set (every run given counts: no cherry-picking)."""
    from optbench.results import rule_policy, stats
    from optbench.results.sources import load_source

    def load(paths):
        return [load_source(s, target, rule=rule, metric=metric, track=track) for s in paths]

    srcs = load(sources)
    choice = rule_policy.common([s.choice for s in srcs])
    r, target = choice.rule, choice.target
    console = Console(soft_wrap=True)  # a long path or verdict stays on one line
    if not console.is_terminal:  # piped or captured: rows whole, at the table's own width
        console = Console(width=10_000, soft_wrap=True)
    console.print(f"rule {choice.describe()}" + (f"; claims on {metric}" if metric != "val_loss" else ""),
                  markup=False, highlight=False)
    plain = [s for s in srcs if not s.runs]
    curves = [(lbl, run) for s in srcs for lbl, run in zip(s.run_labels, s.runs)]
    failed = False
    if curves:
        runs = [run for _, run in curves]
        v = stats.evaluate_runs(runs, r, target)
        at = v.reported
        table = Table("source", "seed/trial", "last eval", f"last {metric}", f"loss @ {at.step if at else '-'}",
                      f"first step < {target:g}", "notes", title=f"{len(runs)} run(s), rule {r.describe()}")
        table.columns[0].no_wrap = True  # the file a run came from, whole
        for label, run in curves:
            cm = stats.curve_map(run)
            last = max(cm) if cm else None
            trial = (run.model_extra or {}).get("trial")
            seed = run.seed if run.seed is not None else (f"trial {trial}" if trial is not None else "")
            note = []
            if run.diverged:
                note.append("diverged")
            if run.extra_passes:
                note.append(f"{run.extra_passes} extra passes")
            planned = (run.model_extra or {}).get("train_steps")
            if isinstance(planned, int) and last is not None and last < planned and not run.diverged:
                note.append(f"cut short: last eval {last} of {planned}")
            table.add_row(
                label,
                str(seed),
                str(last) if last is not None else "-",
                _fmt(cm.get(last)) if last is not None else "-",
                _fmt(cm.get(at.step)) if at else "-",
                str(stats.first_step_below(run, target) or "-"),
                ", ".join(note),
            )
        console.print(table)
        console.print(stats.format_verdict(v), markup=False, highlight=False)
        if at is not None:
            need = v.runs_needed()
            if need is None:
                console.print(f"runs needed at this mean: none suffices (mean {_fmt(at.mean)} is not below {target:g})",
                              markup=False, highlight=False)
            else:
                spread = ""
                if at.n > 1:
                    need90 = v.runs_needed(confidence=0.9)
                    spread = f"; {need90 if need90 is not None else 'too many'} for a 90 % chance given std {_fmt(at.std)}"
                console.print(f"runs needed at this mean: {need}{spread}", markup=False, highlight=False)
        failed = failed or not v.passed
        if baseline:
            base_runs = [run for b in load(baseline) for run in b.runs]
            if not base_runs:
                raise OptbenchError("--baseline: no per-seed curves in the baseline inputs")
            vb = stats.evaluate_runs(base_runs, r, target)
            cmp = stats.compare(vb, v)
            if cmp is None:
                console.print("pairwise: not comparable (a run set never reached the target)", markup=False)
            else:
                a, b = vb.reported, v.reported
                console.print(
                    f"pairwise vs baseline (A: {a.step} steps, mean {_fmt(a.mean)}, n={a.n}; "
                    f"B: {b.step} steps, mean {_fmt(b.mean)}, n={b.n}): statistic {cmp[0]:.5f} vs margin "
                    f"{r.margin:g} -> {'B is significantly better' if cmp[1] else 'not significantly better'}",
                    markup=False,
                    highlight=False,
                )
    for s in plain:
        res = s.results
        mean = res.mean_val_loss if res.mean_val_loss is not None else res.final_val_loss
        n = res.n
        if mean is None:
            console.print(f"{s.path}: no per-seed curves and no mean val loss: nothing to judge", markup=False)
            failed = True
            continue
        ok = stats.passes(mean, n, r, target)
        failed = failed or not ok
        console.print(
            f"{'PASS' if ok else 'FAIL'} [{r.name}] {s.path}: {res.steps_field} {res.steps_to_target}, mean {_fmt(mean)} "
            f"over n={n} (no per-seed curves; judged from the record); need mean < "
            f"{_fmt(stats.required_mean(n, r, target))}",
            markup=False,
            highlight=False,
        )
    if check and failed:
        raise typer.Exit(1)


@app.command("leaderboard")
def leaderboard_cmd(
    source: str = typer.Argument(..., help="folder or fsspec URL holding results.json files (searched recursively)"),
    out: Optional[Path] = typer.Option(None, "--out", help="write LEADERBOARD.md here (atomically) instead of printing"),
    rule: Optional[str] = typer.Option(None, "--rule", help="stats rule preset (default workspace)"),
    plot: Optional[Path] = typer.Option(None, "--plot", help="also draw best steps over time to this .png"),
    uses: Optional[str] = typer.Option(None, "--uses", help="only results whose recipe uses this part (e.g. hyperball)"),
) -> None:
    """Build LEADERBOARD.md from results.json files (deterministic: same files, same bytes)."""
    from optbench.results import leaderboard

    if uses is not None:
        from optbench.optim.parts.catalog import info

        try:
            info(uses)
        except ValueError as e:
            raise OptbenchError(f"--uses: {e}") from None
    entries, skipped = leaderboard.entries_from(source, rule, uses=uses)
    title = "Leaderboard" if uses is None else f"Leaderboard: results whose recipe uses `{uses}`"
    text = leaderboard.render_leaderboard(entries, skipped, rule, title=title)
    if out is not None:
        from optbench.fsutil import atomic_write_text

        atomic_write_text(out, text)
        print(f"wrote {out} ({len(entries)} result(s), {len(skipped)} skipped)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    if plot is not None:
        from optbench.results.plots import plot_best_over_time

        plot_best_over_time([e.results for e in entries], plot, rule=rule)
        print(f"wrote {plot}", file=sys.stderr)


@app.command("plot")
def plot_cmd(
    runs: List[Path] = typer.Argument(..., help="run dirs, results.json files or upstream logs; one curve each"),
    out: Path = typer.Option(..., "--out", help="output .png"),
    target: Optional[float] = typer.Option(None, "--target", help="target val loss (default: the inputs', else their tracks')"),
    band: str = typer.Option("minmax", "--band", help="minmax or std"),
    rule: Optional[str] = typer.Option(None, "--rule", help="stats rule preset for the claimed-step marks"),
    title: Optional[str] = typer.Option(None, "--title"),
) -> None:
    """Val loss vs step for several runs/optimizers: mean line, band over seeds, target line."""
    from optbench.results.plots import plot_curves
    from optbench.results.sources import load_source

    srcs = [load_source(s, target, rule=rule) for s in runs]
    targets = sorted({s.target for s in srcs})
    if len(targets) > 1:
        raise OptbenchError(f"--target: the inputs have different targets {targets}; pass --target")
    target = targets[0]  # the records' own, else their tracks' (rule_policy)
    by_label: dict[str, list] = {}
    for s in srcs:
        if not s.runs:
            raise OptbenchError(f"{s.path}: no per-seed curves to plot (results.json has no runs[].curve)")
        label = s.label
        if s.results is not None:
            label = f"{s.results.optimizer} ({s.label})"
        base, k = label, 2
        while label in by_label:
            label = f"{base} #{k}"
            k += 1
        by_label[label] = s.runs
    p = plot_curves(by_label, target, out, band=band, rule=rule, title=title)
    print(f"wrote {p}", file=sys.stderr)
