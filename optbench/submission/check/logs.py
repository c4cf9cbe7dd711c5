"""Log rules of `optbench check` for an upstream-format log: the code section equals the script (when both are
given) or passes the static rules (log alone); every trial has the same run length and the same eval steps,
complete to its end (per-trial early stopping is a violation); the statistics verdict (optbench.results.stats)
is reported, not judged as a violation."""

from __future__ import annotations

import ast
import os

from optbench.errors import OptbenchError
from optbench.submission.check.report import Report
from optbench.submission.check.static import declared_track, resolve_track, static_check

OPTBENCH_RUN_LOG = "# optbench run:"  # first line of the code section of optbench's own run logs


def log_check(log_path: str | os.PathLike, script_text: str | None = None, script_name: str | None = None,
              track=None, rule: str | None = None) -> Report:
    """Upstream-format log: code section vs script, fixed eval steps for every trial, the verdict."""
    from optbench.results import logparse, rule_policy, stats

    log = logparse.parse_log(log_path)
    name = str(log_path)
    rep = Report(name)
    code = log.code
    try:
        tree = ast.parse(code)
    except SyntaxError:
        tree = None
    if track is None:  # the script's TRACK, else the track an optbench log's header names, else small
        track = (declared_track(tree) if tree is not None else None) or log.track
    track = resolve_track(track, tree)
    if script_text is not None:
        if code.rstrip("\n") != script_text.rstrip("\n"):
            a, b = code.rstrip("\n").splitlines(), script_text.rstrip("\n").splitlines()
            first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            rep.add("log-code", f"the log's code section differs from {script_name or 'the script'} (first at "
                                f"line {first + 1}; {len(a)} vs {len(b)} lines): the log must come from this "
                                "script", f"{name}:{first + 1}")
    elif code.startswith(OPTBENCH_RUN_LOG):
        rep.notes.append(f"log: {name} is an `optbench run` log: its code section is the run's recipe and module "
                         "sources, not a training script; static checks skipped (check the exported "
                         "train_gpt_simple.py instead)")
    else:
        try:
            rep.extend(static_check(code, f"{name} (code section)", track))
        except OptbenchError as e:
            rep.add("log-code", f"the code section is not a Python script ({e})", name)
    trials = log.trials
    lengths = {t.train_steps for t in trials}
    if len(lengths) > 1:
        rep.add("fixed-eval-steps", f"trials have different run lengths {sorted(lengths)}: all trials must run the "
                                    "same schedule", f"{name}:{trials[0].evals[0].line_no}")
    ref = [e.step for e in trials[0].evals]
    for t in trials:
        steps = [e.step for e in t.evals]
        last = t.evals[-1]
        if not t.complete:
            rep.add("fixed-eval-steps", f"trial {t.index} ends at step {last.step} of {t.train_steps}: per-trial "
                                        "early stopping is not allowed (every trial runs to its end)",
                    f"{name}:{last.line_no}")
        elif steps != ref:
            rep.add("fixed-eval-steps", f"trial {t.index} evaluated at different steps than trial 0 "
                                        f"({len(steps)} vs {len(ref)} evals): the claimed step must be a fixed eval "
                                        "step shared by all trials", f"{name}:{t.evals[0].line_no}")
    c = rule_policy.for_log(log, override=rule, track=track.name)
    v = stats.evaluate_runs(log.run_records(c.target), c.rule, target=c.target)
    rep.notes.append(f"log: {len(trials)} trial(s), run length(s) {sorted(lengths)}; verdict: "
                     + stats.format_verdict(v) + f" (rule {c.describe()})")
    return rep
