"""`optbench sweep report NAME --out DIR`: README.md with the best configurations, every trial, the budget, Optuna's
parameter importances and the plots (report_plots), for one sweep or both stages of a shortcut."""

from __future__ import annotations

import json
import statistics
import warnings
from pathlib import Path

from optbench.fsutil import atomic_write_text
from optbench.sweep import report_plots
from optbench.sweep.space import decode_params
from optbench.sweep.stages import load_stages
from optbench.sweep.status import best_trial, sweep_status, trial_kind, tuning_budget
from optbench.sweep.storage import redact

TOP = 5


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def _rows(sweep, label: str) -> list[dict]:
    """One dict per trial: stage, number, kind, value, params, and the recorded user attributes."""
    trials = sweep.study.get_trials(deepcopy=False)
    retried = {t.system_attrs["retry_history"][-1]: t.number for t in trials if t.system_attrs.get("retry_history")}
    retried.update({t.user_attrs["retry_of"]: t.number for t in trials if "retry_of" in t.user_attrs})
    rows = []
    for t in trials:
        kind = trial_kind(t)
        a = t.user_attrs
        note = {"pruned": f"pruned at step {a.get('pruned_at_step')}", "failed": a.get("fail_reason", ""),
                "lost": "worker died or was interrupted" + (f"; rerun as trial {retried[t.number]}"
                                                           if t.number in retried else ""),
                "surplus": "not run: budget already spent"}.get(kind, "")
        if t.number in retried.values():
            src = next(k for k, v in retried.items() if v == t.number)
            note = (note + "; " if note else "") + f"rerun of trial {src}"
        rows.append({"stage": label, "number": t.number, "kind": kind, "value": t.value,
                     "params": decode_params(t.params), "mean_final": a.get("mean_final_val_loss"),
                     "claimed_step": a.get("claimed_step"), "device_s": a.get("device_seconds"), "note": note,
                     "run_dir": Path(a["run_dir"]).name if a.get("run_dir") else ""})
    return rows


def _importances(sweep) -> tuple[dict, str]:
    import optuna

    done = [t for t in sweep.study.get_trials(deepcopy=False) if t.value is not None and trial_kind(t) == "complete"]
    if len(done) < 3 or len(sweep.spec.space) < 2:
        return {}, "needs at least 3 complete trials and 2 hyperparameters"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            imp = optuna.importance.get_param_importances(sweep.study)  # Optuna's default: PED-ANOVA
        return {k: float(v) for k, v in imp.items()}, ""
    except (RuntimeError, ValueError, ImportError) as e:
        return {}, str(e)


def _timings(sweep) -> dict | None:
    """Mean run time and overhead per trial from the workers' timing files (when this machine has them)."""
    recs = []
    for f in sorted((sweep.runs_dir / "workers").glob("*.jsonl")):
        recs += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    recs = [r for r in recs if r.get("state") in ("complete", "pruned", "failed")]
    if not recs:
        return None
    return {"n": len(recs), "workers": len(list((sweep.runs_dir / "workers").glob("*.jsonl"))),
            "run_s": statistics.mean(r["run_s"] for r in recs),
            "overhead_s": statistics.mean(r["overhead_s"] for r in recs),
            "optbench_s": statistics.mean(r["optbench_s"] for r in recs)}


def _table(header: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_fmt(c).replace("|", "\\|") for c in r) + " |" for r in rows]
    return out


def write_report(name: str, out: str | Path, storage: str | None = None) -> Path:
    """Write DIR/README.md and its PNGs; returns the README path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stages = load_stages(name, storage)
    labels = [f"stage {s.spec.stage}" if s.spec.stage else "sweep" for s in stages]
    rows, best, spaces, imps, imp_notes = [], {}, {}, {}, {}
    for s, label in zip(stages, labels):
        rows += _rows(s, label)
        spaces[label] = s.spec.space
        b = best_trial(s.study.get_trials(deepcopy=False))
        if b is not None:
            best[label] = {"number": b.number, "value": b.value, "params": decode_params(b.params)}
        imps[label], imp_notes[label] = _importances(s)
    first, last = stages[0], stages[-1]
    obj = last.spec.objective
    budget = tuning_budget(stages)
    L = [f"# Sweep {name}", ""]
    L += [f"- track: `{first.spec.track}`; base recipe: `{first.recipe.name}` ({first.recipe.optimizer})",
          f"- objective: `{obj}` ("
          + ("seed-mean final val loss" if obj == "loss" else
             f"claimed step when the seeds pass the rule, else train_steps + (mean - target) / r, "
             f"r = {first.track.exchange_rate:.3g} val loss per step") + "), lower is better",
          f"- sampler: {last.spec.sampler}; pruner: {last.spec.pruner}; {last.spec.seeds} seed(s) per trial",
          f"- storage: `{redact(last.storage_url)}`; trial run folders: `{last.runs_dir}`"]
    if len(stages) > 1:
        L.append(f"- shortcut: stage 1 tunes every knob at train_steps = {first.recipe.train_steps}; stage 2 "
                 f"retunes {', '.join(last.spec.space)} at train_steps = {last.recipe.train_steps} around the "
                 "stage-1 best")
    L += ["", "## Budget", ""]
    brows = []
    for s, label in zip(stages, labels):
        st, tm = sweep_status(s), _timings(s)
        c = st.counts
        brows.append([label, c.get("complete", 0), c.get("pruned", 0), c.get("failed", 0), c.get("lost", 0),
                      f"{st.device_hours:.4f}", f"{tm['run_s']:.2f}" if tm else "?",
                      f"{tm['overhead_s']:.3f} ({100 * tm['overhead_s'] / tm['run_s']:.2f} %)" if tm else "?"])
    L += _table(["stage", "complete", "pruned", "failed", "lost (retried)", "device-hours", "mean trial run (s)",
                 "overhead per trial (s, % of run)"], brows)
    L += ["", "Recorded as `tuning_budget` in exported recipes and their results:", "", "```json",
          json.dumps(budget.model_dump(mode="json", exclude_none=True), indent=1), "```", ""]
    L += ["## Best configurations", ""]
    for label in labels:
        done = sorted((r for r in rows if r["stage"] == label and r["kind"] == "complete"), key=lambda r: r["value"])
        if not done:
            L += [f"{label}: no complete trial yet.", ""]
            continue
        keys = list(spaces[label])
        if len(labels) > 1:
            L += [f"### {label}", ""]
        L += _table(["rank", "trial", obj, "mean final val loss", "claimed step", *keys, "run folder"],
                    [[i + 1, r["number"], r["value"], r["mean_final"], r["claimed_step"],
                      *[r["params"].get(k) for k in keys], r["run_dir"]] for i, r in enumerate(done[:TOP])])
        L.append("")
    L += ["## Plots", ""]
    p = report_plots.plot_params(rows, spaces, best, obj, out / "score_vs_params.png")
    L += [f"![score against each hyperparameter]({p.name})", ""]
    p = report_plots.plot_lr_wd(rows, spaces, best, out / "lr_wd.png")
    if p:
        L += [f"![lr against weight_decay, coloured by score]({p.name})", ""]
    p = report_plots.plot_history(rows, obj, out / "history.png")
    L += [f"![score by trial]({p.name})", ""]
    L += ["## Parameter importances (Optuna's default evaluator, PED-ANOVA)", ""]
    for label in labels:
        if imps[label]:
            L += [f"- {label}: " + ", ".join(f"{k} {v:.2f}" for k, v in imps[label].items())]
        else:
            L += [f"- {label}: not computed ({imp_notes[label]})"]
    p = report_plots.plot_importances(imps, out / "importances.png")
    L += ["", f"![importances]({p.name})" if p else "", ""]
    L += ["## Every trial", "",
          "Pruned trials stopped early and have no results.json: their numbers never reach a leaderboard.", ""]
    keys = list(dict.fromkeys(k for label in labels for k in spaces[label]))
    L += _table(["stage", "trial", "state", obj, "mean final val loss", *keys, "device-s", "note"],
                [[r["stage"], r["number"], r["kind"], r["value"], r["mean_final"],
                  *[r["params"].get(k) for k in keys], r["device_s"], r["note"]] for r in rows])
    path = atomic_write_text(out / "README.md", "\n".join(L).rstrip() + "\n")
    return path
