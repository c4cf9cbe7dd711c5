"""A rank study's result, from its committed sweep storage and final runs: the table, the rank agreement with the
full benchmark, the ratio of two entries, and the log-log figure.

Proxy steps of an entry = the benchmark's score of its final runs: the earliest fixed eval step at which the seed
mean passes the track's rule. A set that does not pass by its last step gets the step-equivalent
T + (mean - required mean) / r (r: the track's exchange rate), marked as extrapolated.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from optbench.results import stats
from optbench.study.plan import Entry, Study


@dataclass
class Row:
    entry: Entry
    trials: int  # finished trials of its sweep
    device_hours: float  # the sweep's
    settings: dict  # the best trial's params (empty before the first complete trial)
    verdict: stats.Verdict | None  # the final seeds, judged by the track's rule (None before the first)
    train_steps: int | None
    per_seed: list[int | None]  # each final seed's first eval below the target (descriptive)
    finals: list[float]  # each final seed's last val loss
    proxy_steps: float | None  # claimed step, or the step-equivalent
    extrapolated: bool

    @property
    def complete(self) -> bool:
        return self.proxy_steps is not None


def proxy_steps(verdict: stats.Verdict, train_steps: int, exchange_rate: float) -> tuple[float, bool]:
    """(the claimed step, False), or (T + (final mean - required mean) / r, True) when the set does not pass."""
    if verdict.claimed_step is not None:
        return float(verdict.claimed_step), False
    final = verdict.final
    return train_steps + (final.mean - verdict.required_mean) / exchange_rate, True


def collect(study: Study) -> list[Row]:
    from optbench.results.schema import load_results
    from optbench.sweep import open_sweep, sweep_status
    from optbench.sweep.space import decode_params
    from optbench.tracks import get_track

    track = get_track(study.track)
    rows = []
    for e in study.entries:
        st = sweep_status(open_sweep(study.sweep_name(e), study.storage_url()))
        settings = decode_params(st.best.params) if st.best is not None else {}
        res_file = study.final_dir(e) / "results.json"
        verdict, T, per_seed, finals, steps, extra = None, None, [], [], None, False
        if res_file.is_file():
            res = load_results(res_file)
            runs = [r for r in res.runs if r.seed in study.final_seeds]
            T = res.train_steps
            verdict = stats.evaluate_runs(runs, track.rule, target=track.target)
            per_seed = [stats.first_step_below(r, track.target) for r in runs]
            finals = [r.final_val_loss for r in runs]
            if len(runs) == len(study.final_seeds):
                steps, extra = proxy_steps(verdict, T, track.exchange_rate)
        rows.append(Row(e, st.finished, st.device_hours, settings, verdict, T, per_seed, finals, steps, extra))
    return rows


def _fmt_setting(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, list):
        return "(" + ", ".join(_fmt_setting(x) for x in v) + ")"
    return str(v)


def settings_text(settings: dict) -> str:
    return ", ".join(f"{k} {_fmt_setting(v)}" for k, v in settings.items()) or "—"


def ratio(rows: list[Row], num: str, den: str) -> float | None:
    by = {r.entry.name: r for r in rows}
    a, b = by[num], by[den]
    if not (a.complete and b.complete):
        return None
    return a.proxy_steps / b.proxy_steps


def write_figure(rows: list[Row], study: Study, path: Path) -> None:
    """Log-log scatter of proxy steps against full-benchmark steps, one labelled point per finished entry."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in rows if r.complete]
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=120)
    for r in done:
        marker = "^" if r.extrapolated else "o"
        ax.scatter(r.entry.full_steps, r.proxy_steps, marker=marker, s=42,
                   color="tab:orange" if r.extrapolated else "tab:blue", zorder=3)
        ax.annotate(r.entry.label, (r.entry.full_steps, r.proxy_steps), textcoords="offset points",
                    xytext=(5, 4), fontsize=8)
    ref = next((r for r in done if r.entry.name == study.reference), None)
    if ref is not None:  # proxy steps proportional to full steps, through the reference
        xs = [min(r.entry.full_steps for r in done) * 0.9, max(r.entry.full_steps for r in done) * 1.1]
        k = ref.proxy_steps / ref.entry.full_steps
        ax.plot(xs, [k * x for x in xs], ls="--", lw=1, color="gray", label=f"proportional through {ref.entry.label}")
        ax.legend(fontsize=8, loc="upper left")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("full benchmark: steps to 3.28 (published)")
    ax.set_ylabel(f"{study.track} track: steps to target (this study)")
    ax.set_title(f"{study.name}: proxy against full benchmark (triangles: extrapolated)", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)


def _mean_sd(xs: list[float]) -> str:
    if not xs:
        return "—"
    m, s = stats.mean_std(xs)
    return f"{m:,.0f} ± {s:,.0f}" if len(xs) > 1 else f"{m:,.0f}"


def run_time_text(rows: list[Row]) -> str:
    """The wall time of one proxy run: the sweeps' device time over their finished trials."""
    trials = sum(r.trials for r in rows)
    if not trials:
        return ""
    seconds = 3600 * sum(r.device_hours for r in rows) / trials
    return (f"One proxy run took {seconds:.0f} s on average over the {trials} sweep trials (one thread, on a "
            f"machine shared with other jobs).")


def markdown(study: Study, rows: list[Row], agreement, figure_name: str) -> str:
    from optbench.tracks import get_track

    track = get_track(study.track)
    rule = stats.get_rule(track.rule)
    lines = [
        f"# The proxy study `{study.name}`: does the {study.track} track rank optimizers like the full benchmark?",
        "",
        f"Generated by `python bench/proxy_study.py report` from the committed sweep storage "
        f"(`studies/{study.dir.name}/{study.storage}`) and final runs (`studies/{study.dir.name}/{study.finals}/*/"
        f"results.json`). Design and budget: `docs/proxy.md`.",
        "",
        f"Track `{track.name}`: target {track.target:g}, rule {rule.describe()}, exchange rate "
        f"{track.exchange_rate:.3g} val loss per step. Budget per optimizer: {study.trials} trials "
        f"({study.sampler} sampler, 1 seed each, objective `steps`) over lr and weight decay "
        f"(x/÷ {study.range_factor:g} around the transposed published setting), train_steps "
        f"{study.steps[0]:,}..{study.steps[1]:,} and at most one optimizer-specific knob; then the best "
        f"configuration with seeds {', '.join(map(str, study.final_seeds))}. "
        + run_time_text(rows),
        "",
        "| optimizer | tuned settings (best trial) | trials | device-h | proxy steps | per-seed steps to target, "
        "mean ± sd (n) | final val loss, mean ± sd | full benchmark steps | source |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        if r.proxy_steps is None:
            steps = "pending"
        else:
            steps = f"{r.proxy_steps:,.0f}" + (" (extrapolated)" if r.extrapolated else "")
        reached = [s for s in r.per_seed if s is not None]
        missed = len(r.per_seed) - len(reached)
        seed_txt = "—" if not r.per_seed else f"{_mean_sd([float(s) for s in reached])} ({len(reached)})" + (
            f", {missed} not reached" if missed else "")
        loss_txt = "—" if not r.finals else (f"{stats.mean_std(r.finals)[0]:.4f} ± {stats.mean_std(r.finals)[1]:.4f}"
                                             if len(r.finals) > 1 else f"{r.finals[0]:.4f}")
        note = f" ({r.entry.full_note})" if r.entry.full_note else ""
        lines.append(f"| {r.entry.label} | {settings_text(r.settings)} | {r.trials} | {r.device_hours:.2f} | "
                     f"{steps} | {seed_txt} | {loss_txt} | {r.entry.full_steps:,}{note} | {r.entry.full_source} |")
    done = [r for r in rows if r.complete]
    lines += ["", "## Agreement with the full benchmark", ""]
    if agreement is None:
        lines.append(f"Not computed yet: {len(done)} of {len(rows)} entries have all their final runs (need 3).")
    else:
        lines += [
            f"Over the {agreement.n} entries with final runs (bootstrap over entries, {agreement.resamples:,} "
            f"resamples, {agreement.confidence:.0%} percentile intervals):",
            "",
            "| coefficient | value [interval] | p (no association) |",
            "|---|---|---:|",
            f"| Kendall tau-b | {agreement.tau.fmt()} | {agreement.tau.p_value:.3g} |",
            f"| Spearman rho | {agreement.rho.fmt()} | {agreement.rho.p_value:.3g} |",
        ]
    num, den = study.ratio
    q = ratio(rows, num, den)
    by = {r.entry.name: r for r in rows}
    lines += ["", f"{by[num].entry.label}/{by[den].entry.label} step ratio: "
              + (f"**{q:.2f}** on the proxy against **{study.full_ratio:.2f}** on the full benchmark "
                 f"({by[num].entry.full_steps:,}/{by[den].entry.full_steps:,})." if q is not None else "pending.")]
    lines += ["", f"![proxy steps against full-benchmark steps]({figure_name})", "",
              "What limits these numbers, and the proxy's known distortions: `docs/proxy.md`.", ""]
    return "\n".join(lines)


def write_report(study: Study) -> tuple[Path, Path]:
    """Regenerate the study's markdown report and figure; returns their paths."""
    from optbench.fsutil import atomic_write_text
    from optbench.study.ranking import rank_agreement

    rows = collect(study)
    done = [r for r in rows if r.complete]
    agreement = None
    if len(done) >= 3:
        agreement = rank_agreement([r.proxy_steps for r in done], [r.entry.full_steps for r in done])
    md, fig = (study.dir / study.report).resolve(), (study.dir / study.figure).resolve()
    write_figure(rows, study, fig)
    rel = os.path.relpath(fig, md.parent)
    atomic_write_text(md, markdown(study, rows, agreement, rel) + "\n")
    return md, fig
