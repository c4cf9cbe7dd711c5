"""LEADERBOARD.md from a folder (or any fsspec URL) of results.json files.

    text = build_leaderboard("workspace/", target=3.28)            # the markdown, a pure function of the files
    write_leaderboard("workspace/", "LEADERBOARD.md", target=3.28) # local atomic write

Every results.json under the source (recursively: artifacts/*/results.json, run dirs) is read. The output is
deterministic: the same files give byte-identical markdown (rows are sorted on full keys; the only dates are
the records' own timestamps). Files that do not validate are listed at the end, not ranked.

Sections (one set per target when the source mixes targets):
  * Overall: every record sorted by steps ascending (records that never reached the target last), with the
    evidence (mean val loss, n, ✓/✗ under the rule), optimizer, hparams, date, log, contributors.
  * Best known hyperparameters per optimizer, in the NanoGPT-Medium leaderboard's form
    `Optimizer | Steps | Wallclock | Hparam summary | Log | Contributors`, with `?` rows for listed optimizers
    without a result (the zoo's names plus DistributedShampoo, PSGD Kron, Sophia, Lion).
  * Record history per optimizer: each result that beat every earlier passing result of that optimizer.
A Budget column (the sweep's trials and device-hours, from results.json `tuning_budget`) is added to the first two
tables when any record of the section carries one, so "better tuned" shows next to "better optimizer".
Only compliant, official results that pass the rule count for "best" and "record"; the others are shown
in the overall table with their marks.
"""

from __future__ import annotations

import math
import os
import posixpath
from dataclasses import dataclass
from typing import Iterable, Sequence


from optbench.clock import parse_timestamp
from optbench.errors import OptbenchError
from optbench.fsutil import atomic_write_text
from optbench.results import rule_policy, stats
from optbench.results.collection import collect_records
from optbench.results.eligibility import is_official, may_rank
from optbench.results.judging import RecordJudgement, judge_record
from optbench.results.optimizer_names import display_names, listed_optimizers, norm_name
from optbench.results.schema import Results



@dataclass(frozen=True)
class Entry:
    """One results.json as the leaderboard sees it: the record, its judgement under the leaderboard's rule."""

    path: str  # relative to the source root, posix
    results: Results
    judgement: RecordJudgement
    date: str  # YYYY-MM-DD or "?"
    when: str  # full timestamp for ordering ("" when unknown)
    log: str  # relative link

    @property
    def optimizer(self) -> str:
        return self.results.optimizer

    @property
    def steps(self) -> int | None:
        return self.judgement.steps

    @property
    def mean(self) -> float | None:
        return self.judgement.mean

    @property
    def n(self) -> int:
        return self.judgement.n

    @property
    def passes(self) -> bool:
        return self.judgement.passed

    @property
    def official(self) -> bool:
        return is_official(self.results)

    @property
    def rule(self) -> str:
        """The preset the record was judged by (optbench.results.rule_policy)."""
        return self.judgement.rule.name

    @property
    def counts(self) -> bool:
        """Eligible for best/record (optbench.results.eligibility.may_rank)."""
        return may_rank(self.results, self.judgement)


def _md(text: object) -> str:
    s = str(text).replace("\r", " ").replace("\n", " ").replace("|", "\\|")
    return s.strip()


def _fmt_value(v: object) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return "(" + ", ".join(_fmt_value(x) for x in v) + ")"
    return str(v)


def hparam_summary(r: Results) -> str:
    """`lr 0.025, wd 0.05` from key_hparams (file order), or the recipe name, or '?'; then the recipe's parts."""
    if r.key_hparams:
        text = ", ".join(f"{k} {_fmt_value(v)}" for k, v in r.key_hparams.items())
    elif r.recipe is not None:
        text = f"recipe {r.recipe.name}"
    else:
        text = "?"
    return text + (f"; parts: {', '.join(r.parts)}" if r.parts else "")


def _contributors(r: Results) -> str:
    people = [r.agent_id]
    extra = (r.model_extra or {}).get("contributors")
    if isinstance(extra, str):
        people += [extra]
    elif isinstance(extra, list):
        people += [str(x) for x in extra]
    seen: list[str] = []
    for p in people:
        if p and p not in seen:
            seen.append(p)
    return ", ".join(seen)


def _date(ts: str | None) -> tuple[str, str]:
    d = parse_timestamp(ts)
    if d is None:
        return "?", ""
    return d.strftime("%Y-%m-%d"), d.strftime("%Y-%m-%dT%H:%M:%S")


def _fmt_steps(s: int | None) -> str:
    return "—" if s is None else f"{s:,}"


def _fmt_wall(s: float | None) -> str:
    if s is None:
        return "?"
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _log_link(e: Entry) -> str:
    return f"[{_md(posixpath.basename(e.log))}]({e.log})"


def _budget(e: Entry) -> str:
    tb = e.results.tuning_budget
    return tb.summary() if tb is not None else ""


def _evidence(e: Entry) -> str:
    if e.mean is None:
        return f"n={e.n} ✗"
    return f"{e.mean:.5f} n={e.n} {'✓' if e.passes else '✗'}"


def _entry(rel: str, r: Results, log: str, rule: stats.Rule) -> Entry:
    """The record as judged by `rule` (the caller chose it: rule_policy)."""
    date, when = _date(r.timestamp)
    return Entry(rel, r, judge_record(r, rule), date, when, log)


def _target_text(t: float) -> str:
    return f"{t:g}"


def _overall_key(e: Entry):
    return (
        e.steps is None,
        e.steps if e.steps is not None else 0,
        not e.counts,
        e.mean if e.mean is not None else math.inf,
        -e.n,
        e.when,
        norm_name(e.optimizer),
        e.results.agent_id,
        e.path,
    )


def _best_key(e: Entry):
    return (e.steps, e.mean if e.mean is not None else math.inf, -e.n, e.when, e.path)


def _section(entries: list[Entry], target: float, suffix: str, listed: Sequence[str]) -> list[str]:
    L: list[str] = []
    names = display_names([e.optimizer for e in sorted(entries, key=lambda x: (x.when, x.path))], listed)
    budgets = any(e.results.tuning_budget is not None for e in entries)
    # overall
    L.append(f"## Overall{suffix}")
    L.append("")
    L.append("| # | Steps | Evidence | Optimizer | Hparam summary |" + (" Budget |" if budgets else "")
             + " Date | Log | Contributors | Rule |")
    L.append("|---:|---:|---|---|---|" + ("---|" if budgets else "") + "---|---|---|---|")
    rank = 0
    for e in sorted(entries, key=_overall_key):
        if e.counts:
            rank += 1
        tags = []
        if e.results.unofficial:
            tags.append("unofficial")
        elif e.results.compliant is False:
            tags.append("non-compliant")
        opt = names[norm_name(e.optimizer)] + (f" ({', '.join(tags)})" if tags else "")
        L.append(_row([str(rank) if e.counts else "", _fmt_steps(e.steps), _evidence(e), _md(opt),
                       _md(hparam_summary(e.results)), *([_md(_budget(e))] if budgets else []), e.date, _log_link(e),
                       _md(_contributors(e.results)), f"`{e.rule}`"]))
    L.append("")
    # best per optimizer
    by_opt: dict[str, list[Entry]] = {}
    for e in entries:
        by_opt.setdefault(norm_name(e.optimizer), []).append(e)
    for name in listed:
        by_opt.setdefault(norm_name(name), [])
    L.append(f"## Best known hyperparameters per optimizer{suffix}")
    L.append("")
    L.append(
        f"Steps to val loss < {_target_text(target)}: the best result of each optimizer that passes the rule; "
        "`?` = no passing result yet."
    )
    L.append("")
    L.append("| Optimizer | Steps | Wallclock | Hparam summary |" + (" Budget |" if budgets else "")
             + " Log | Contributors |")
    L.append("|---|---:|---|---|" + ("---|" if budgets else "") + "---|---|")
    rows = []
    for key, es in by_opt.items():
        good = sorted((e for e in es if e.counts), key=_best_key)
        if good:
            b = good[0]
            rows.append(
                (
                    0,
                    b.steps,
                    key,
                    [
                        _md(names[key]),
                        _fmt_steps(b.steps),
                        _fmt_wall(b.results.wallclock_s),
                        _md(hparam_summary(b.results)),
                        *([_md(_budget(b))] if budgets else []),
                        _log_link(b),
                        _md(_contributors(b.results)),
                    ],
                )
            )
        else:
            rows.append((1, 0, key, [_md(names[key]), "?", "?", "?"] + (["?"] if budgets else []) + ["?", "?"]))
    for _, _, _, cells in sorted(rows, key=lambda x: (x[0], x[1], x[2])):
        L.append(_row(cells))
    L.append("")
    # record history
    L.append(f"## Record history per optimizer{suffix}")
    L.append("")
    any_hist = False
    for key in sorted(by_opt, key=lambda k: (names[k].lower(), k)):
        es = sorted((e for e in by_opt[key] if e.counts), key=lambda e: (e.when, e.steps, e.path))
        if not es:
            continue
        any_hist = True
        L.append(f"### {_md(names[key])}")
        L.append("")
        L.append("| Date | Steps | Evidence | Hparam summary | Log | Contributors |")
        L.append("|---|---:|---|---|---|---|")
        best = None
        for e in es:
            if best is None or e.steps < best:
                best = e.steps
                L.append(_row([e.date, _fmt_steps(e.steps), _evidence(e), _md(hparam_summary(e.results)), _log_link(e),
                               _md(_contributors(e.results))]))
        L.append("")
    if not any_hist:
        L.append("No result passes the rule yet.")
        L.append("")
    return L


def entries_from(source: str | os.PathLike, rule: str | stats.Rule | None = None,
                 uses: str | None = None) -> tuple[list[Entry], list[tuple[str, str]]]:
    """The leaderboard's view of every results.json under source, and the files it skipped (path, reason).

    Each record is judged by `rule` when given, else by its own rule (rule_policy); a record whose rule or track
    is unknown is skipped with the reason. ``uses``: only the records whose recipe uses that part (e.g.
    "hyperball")."""
    override = stats.get_rule(rule) if rule is not None else None
    records, skipped = collect_records(source)
    entries = []
    for rel, res, log in records:
        if uses is not None and not res.uses_part(uses):
            continue
        try:
            r = override or rule_policy.for_results(res).rule
        except OptbenchError as e:
            skipped.append((rel, str(e)))
            continue
        entries.append(_entry(rel, res, log, r))
    return entries, skipped


def render_leaderboard(
    entries: Sequence[Entry],
    skipped: Sequence[tuple[str, str]] = (),
    rule: str | stats.Rule | None = None,
    listed: Iterable[str] | None = None,
    title: str = "Leaderboard",
    *,
    target: float,
) -> str:
    """The markdown for already-collected entries (build_leaderboard = entries_from + this).

    `target`: the board's own target (its track's): its sections come first, then those of any other target
    among the records, ascending; an empty board shows its own target's sections.
    """
    listed = list(listed_optimizers() if listed is None else listed)
    targets = sorted({e.results.target for e in entries} | {target}, key=lambda t: (t != target, t))
    if not any(e.results.target == target for e in entries) and entries:
        targets.remove(target)
    L = [f"# {title}", ""]
    tt = ", ".join(_target_text(t) for t in targets)
    if rule is not None:
        how = f"every record judged by the `{stats.get_rule(rule).name}` rule (given)"
    else:
        how = ("each record judged by its own rule (the one it names, else the upstream rule in force at its date, "
               "else its track's default)")
    L.append(
        f"Steps to reach val loss < {tt} (fewer is better). Evidence: mean val loss over n runs at the reported "
        f"step; ✓ = passes the rule in the Rule column, ✗ = does not; {how}. Ranked (#) results pass their rule "
        "and are official and compliant."
    )
    L.append("")
    used = sorted({e.rule for e in entries} | ({stats.get_rule(rule).name} if rule is not None else set()))
    for name in used:
        x = stats.get_rule(name)
        L.append(f"- `{x.name}`: one-sided z-test, sigma {x.sigma:g}, p < {x.p:g}: (target − mean)·√n ≥ {x.margin:g}")
    if used:
        L.append("")
    L.append(
        f"Regenerated by `optbench leaderboard` from {len(entries)} results.json file(s); do not edit by hand."
    )
    L.append("")
    for t in targets:
        suffix = f" (target {_target_text(t)})" if len(targets) > 1 else ""
        L += _section([e for e in entries if e.results.target == t], t, suffix, listed)
    if skipped:
        L.append("## Skipped files")
        L.append("")
        for rel, why in sorted(skipped):
            L.append(f"- `{rel}`: {_md(why)}")
        L.append("")
    return "\n".join(L).rstrip("\n") + "\n"


def build_leaderboard(
    source: str | os.PathLike,
    rule: str | stats.Rule | None = None,
    listed: Iterable[str] | None = None,
    title: str = "Leaderboard",
    *,
    target: float,
) -> str:
    """LEADERBOARD.md text for every results.json under `source` (folder, file or fsspec URL). Deterministic.
    `target`: the board's own target (see render_leaderboard)."""
    entries, skipped = entries_from(source, rule)
    return render_leaderboard(entries, skipped, rule, listed, title, target=target)


def write_leaderboard(
    source: str | os.PathLike,
    dest: str | os.PathLike,
    rule: str | stats.Rule | None = None,
    listed: Iterable[str] | None = None,
    *,
    target: float,
) -> str:
    """Build and write the leaderboard to a local path atomically; returns the text.

    For remote destinations (create-only stores) call build_leaderboard and write it with your own rules.
    """
    d = os.fspath(dest)
    if "://" in d:
        raise OptbenchError(
            f"--out: {d} is a URL; write_leaderboard writes local files only (use build_leaderboard for remote stores)"
        )
    text = build_leaderboard(source, rule, listed, target=target)
    atomic_write_text(d, text)
    return text
