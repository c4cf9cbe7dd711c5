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
        print(f"ok {f}: {r.steps_field} {steps if steps is not None else 'null'}, n={r.n}, optimizer {r.optimizer}; "
              f"{r.loss_summary()}")
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
    from optbench.results import stats
    from optbench.results.runset import judge_run_set, load_run_set, load_sources

    srcs, choice = load_run_set(sources, target, rule, metric, track)
    base = load_sources(baseline, target, rule, metric, track) if baseline else []
    rep = judge_run_set(srcs, choice, base)
    r, target = rep.rule, rep.target
    console = Console(soft_wrap=True)  # a long path or verdict stays on one line
    if not console.is_terminal:  # piped or captured: rows whole, at the table's own width
        console = Console(width=10_000, soft_wrap=True)

    def say(text: str) -> None:
        console.print(text, markup=False, highlight=False)

    say(f"rule {choice.describe()}" + (f"; claims on {metric}" if metric != "val_loss" else ""))
    v = rep.verdict
    if v is not None:
        at = v.reported
        table = Table("source", "seed/trial", "last eval", f"last {metric}", f"loss @ {at.step if at else '-'}",
                      f"first step < {target:g}", "notes", title=f"{len(rep.rows)} run(s), rule {r.describe()}")
        table.columns[0].no_wrap = True  # the file a run came from, whole
        for row in rep.rows:
            table.add_row(row.source, row.seed, str(row.last_step) if row.last_step is not None else "-",
                          _fmt(row.last_loss) if row.last_step is not None else "-",
                          _fmt(row.loss_at_reported) if at else "-", str(row.first_below or "-"), ", ".join(row.notes))
        console.print(table)
        say(stats.format_verdict(v))
        if at is not None:
            if rep.runs_needed is None:
                say(f"runs needed at this mean: none suffices (mean {_fmt(at.mean)} is not below {target:g})")
            else:
                spread = ""
                if at.n > 1:
                    need90 = rep.runs_needed_90
                    spread = f"; {need90 if need90 is not None else 'too many'} for a 90 % chance given std {_fmt(at.std)}"
                say(f"runs needed at this mean: {rep.runs_needed}{spread}")
        cmp = rep.comparison
        if cmp is not None and cmp.statistic is None:
            console.print("pairwise: not comparable (a run set never reached the target)", markup=False)
        elif cmp is not None:
            a, b = cmp.baseline.reported, v.reported
            say(f"pairwise vs baseline (A: {a.step} steps, mean {_fmt(a.mean)}, n={a.n}; "
                f"B: {b.step} steps, mean {_fmt(b.mean)}, n={b.n}): statistic {cmp.statistic:.5f} vs margin "
                f"{r.margin:g} -> {'B is significantly better' if cmp.better else 'not significantly better'}")
    for s, j in rep.records:
        res = s.results
        if j.mean is None:
            console.print(f"{s.path}: no per-seed curves and no mean val loss: nothing to judge", markup=False)
            continue
        say(f"{'PASS' if j.passed else 'FAIL'} [{r.name}] {s.path}: {res.steps_field} {res.steps_to_target}, mean "
            f"{_fmt(j.mean)} over n={j.n} (no per-seed curves; judged from the record); need mean < "
            f"{_fmt(j.required_mean)}")
    if check and rep.failed:
        raise typer.Exit(1)


@app.command("leaderboard")
def leaderboard_cmd(
    source: str = typer.Argument(..., help="folder or fsspec URL holding results.json files (searched recursively)"),
    out: Optional[Path] = typer.Option(None, "--out", help="write LEADERBOARD.md here (atomically) instead of printing"),
    rule: Optional[str] = typer.Option(None, "--rule", help="judge every record by this preset (default: each "
                                                            "record's own rule)"),
    plot: Optional[Path] = typer.Option(None, "--plot", help="also draw best steps over time to this .png"),
    uses: Optional[str] = typer.Option(None, "--uses", help="only results whose recipe uses this part (e.g. hyperball)"),
    track: str = typer.Option("small", "--track", help="the board's track: its target's sections come first"),
) -> None:
    """Build LEADERBOARD.md from results.json files (deterministic: same files, same bytes); medium-track results
    get the NanoGPT-Medium Optimizer Leaderboard's form."""
    from optbench.results import leaderboard, medium_board
    from optbench.tracks import get_track

    if uses is not None:
        from optbench.optim.parts.catalog import require

        require(uses, "--uses")
    entries, skipped = leaderboard.entries_from(source, rule, uses=uses)
    if medium_board.is_medium_board(entries):  # the NanoGPT-Medium Optimizer Leaderboard's own form
        text = medium_board.render_medium_leaderboard(entries, skipped, rule)
    else:
        title = "Leaderboard" if uses is None else f"Leaderboard: results whose recipe uses `{uses}`"
        text = leaderboard.render_leaderboard(entries, skipped, rule, title=title, target=get_track(track).target)
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
    from optbench.results.runset import labelled_runs, load_sources, plot_target

    srcs = load_sources(runs, target, rule, "val_loss", None)
    p = plot_curves(labelled_runs(srcs), plot_target(srcs), out, band=band, rule=rule, title=title)
    print(f"wrote {p}", file=sys.stderr)


@app.command("compare")
def compare_cmd(
    runs: List[str] = typer.Argument(..., help="[LABEL=]PATH: run dirs, results.json files or upstream logs; one line each"),
    out: Path = typer.Option(..., "--out", help="folder for comparison_by_tokens.png (or _by_steps) and _by_time.png"),
    tokens_per_step: Optional[int] = typer.Option(None, "--tokens-per-step", help="x axis in tokens (default: the runs' track)"),
    hardware: Optional[str] = typer.Option(None, "--hardware", help="e.g. 8xH100 (default: the runs' provenance)"),
    subject: Optional[str] = typer.Option(None, "--subject", help='in the titles: "... by tokens (SUBJECT)"'),
    target: Optional[float] = typer.Option(None, "--target", help="also draw this val loss as a dashed line"),
) -> None:
    """The optimizer-comparison figures (records/102924_Optimizers): val loss vs tokens and vs wall clock."""
    from optbench.results.comparison import compare_sources, named_source

    for p in compare_sources([named_source(r) for r in runs], out, tokens_per_step=tokens_per_step, hardware=hardware, subject=subject,
                             target=target):
        print(f"wrote {p}", file=sys.stderr)
