"""Reproduce the evidence column of the track-3 README from its logs.

    python bench/upstream_records.py PATH_TO_A_CLONE_OF_KellerJordan/modded-nanogpt [--out table.md]

For every row of `records/track_3_optimization/README.md`'s results table (`| # | Steps to 3.28 | Evidence |
... | Date | [log](...) |`) this finds the row's logs, parses them with optbench.results.logparse and recomputes,
with optbench.results.stats, the mean val loss and n at the row's step, the verdict there and the earliest step
at which the run set passes; it prints one markdown table row per README row with a match column, then a
summary (rows matched / rows with logs). Nothing of the clone is copied anywhere.

Which logs belong to a row (the README links one log, or a folder's README.md):
  * a log directly in `results/` is the row's evidence by itself (its trials are the row's runs);
  * a log in a record folder stands for that folder: every upstream-format log under the folder that ran the
    same schedule (run length T) as the linked log (a folder may also hold an earlier submission with another
    T: #23's 10-seed T=3200 runs beside the 30-seed T=3090 set the README counts);
  * a folder's README.md: every upstream-format log under the folder;
  * ROW_LOGS below names the rows whose evidence is something else, with the record's own words.
A row whose logs hold fewer runs than the README's n says "logs missing upstream".

The rule: the one the README names in its Rules section (`(3.28 - avg_loss) * num_runs**0.5 >= 0.004`),
mapped to the optbench preset with that target and margin. A row's mean matches when it prints as the README's
4-decimal value, directly or via the 5-decimal mean (rounding half up).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from optbench.errors import OptbenchError
from optbench.results import stats
from optbench.results.logparse import UpstreamLog, looks_like_log, parse_log

T3 = Path("records/track_3_optimization")

# rows whose evidence is not what the default mapping finds: (glob under the record folder, why)
ROW_LOGS = {
    44: ("H100_*.txt", "record README: 'On H100 (the benchmark's hardware), n = 20 seeds (0-19)'; the A40_*.txt "
                       "logs are its independent n = 8 A40 check"),
    16: ("*/seed_*/stdout.txt", "per-seed console transcripts: the linked fake_log_from_seed0.txt is seed 0's "
                                "transcript with the code prepended; the folder README: 'All eight seeds were run'"),
}
# rows whose claim is made on another eval-line field than val_loss: (field, why)
CLAIM_METRIC = {
    46: ("val_ema_loss", "record README: 'the eval model reaches 3.28 in 2690 steps: mean val_ema = 3.278329'"),
}
# README values that differ from their own logs, with what the history shows (reported, never hidden)
README_SLIPS = {
    6: "README's 3.2788 came with the log in d035e686; the log's 20 trials average 3.27893 at 3375",
    8: "README showed 3.27798 (n=10) until 8c78918e shortened it to 3.2778 (3.27798 is 3.2780 to 4 decimals)",
}

_ROW = re.compile(
    r"^\|\s*(?P<num>\d+)\s*\|\s*(?P<steps>\d+)\s*(?:\(!\))?\s*\|\s*(?P<mean>\d+\.\d+)\s*\(n=(?P<n>\d+)\)\s*"
    r"(?P<mark>✓|Ⓧ|✗)?\s*\|.*\|\s*(?P<date>\d{4}/\d{2}/\d{2})\s*\|\s*\[log\]\((?P<link>[^)]+)\)"
)
_RULE = re.compile(r"`\((?P<target>\d+\.\d+)\s*-\s*avg_loss\)\s*\*\s*num_runs\s*\*\*\s*0?\.5\s*>=\s*(?P<margin>\d*\.\d+)`")


@dataclass(frozen=True)
class Row:
    num: int
    steps: int
    mean: str  # as printed, e.g. "3.2787"
    n: int
    passed: bool  # ✓ (True) or Ⓧ/✗ (False)
    date: str
    link: str


@dataclass
class Outcome:
    row: Row
    logs: list[str] = field(default_factory=list)
    n: int = 0
    mean: float | None = None
    passes: bool | None = None
    earliest: int | None = None
    metric: str = "val_loss"
    status: str = ""  # "yes", "no: ...", "logs missing upstream ..."
    notes: list[str] = field(default_factory=list)

    @property
    def has_logs(self) -> bool:
        return not self.status.startswith("logs missing")


def readme_rows(text: str) -> list[Row]:
    """The results table's rows (OptbenchError when there are none)."""
    rows = []
    for ln in text.splitlines():
        m = _ROW.match(ln)
        if m:
            rows.append(Row(int(m["num"]), int(m["steps"]), m["mean"], int(m["n"]), m["mark"] == "✓", m["date"],
                            m["link"]))
    if not rows:
        raise OptbenchError("README: no results-table rows ('| # | steps | mean (n=N)✓ | ... | [log](...) |')")
    return rows


def readme_rule(text: str) -> tuple[stats.Rule, float, str]:
    """(preset, target, the README's words) for the rule the README states."""
    m = _RULE.search(text)
    if not m:
        raise OptbenchError("README: no stated rule '`(3.28 - avg_loss) * num_runs**0.5 >= MARGIN`'")
    margin = float(m["margin"])
    hits = [r for r in stats.iter_rules() if r.name.startswith("upstream") and abs(r.margin - margin) < 1e-12]
    if not hits:
        raise OptbenchError(f"README: no optbench preset has the README's margin {margin:g}")
    return hits[-1], float(m["target"]), m.group(0)


def printed_as(mean: float, shown: str) -> bool:
    """Does `mean` print as `shown` (4 decimals), directly or via its 5-decimal value, rounding half up?"""
    places = Decimal(1).scaleb(-len(shown.split(".")[1]))
    d = Decimal(f"{mean:.9f}")  # the mean of 5-decimal losses, without binary noise
    direct = d.quantize(places, ROUND_HALF_UP)
    via = d.quantize(Decimal("0.00001"), ROUND_HALF_UP).quantize(places, ROUND_HALF_UP)
    return Decimal(shown) in (direct, via)


def _logs_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.txt") if p.is_file() and looks_like_log(p.read_text(errors="replace")))


def _same_run(a: UpstreamLog, b: UpstreamLog) -> bool:
    return {t.train_steps for t in a.trials} == {t.train_steps for t in b.trials}


def row_logs(t3: Path, row: Row) -> tuple[list[UpstreamLog], str]:
    """The row's parsed logs and how they were chosen. OptbenchError when the linked file is absent."""
    target = t3 / row.link
    folder = target.parent
    if row.num in ROW_LOGS:
        pattern, why = ROW_LOGS[row.num]
        files = sorted(folder.glob(pattern))
        return [parse_log(f, transcript=True) for f in files], f"{folder.relative_to(t3 / 'results')}/{pattern} ({why})"
    if not target.exists():
        raise OptbenchError(f"{row.link}: linked file not in the clone")
    if folder == t3 / "results":
        return [parse_log(target)], target.name
    if target.suffix != ".txt":
        return [parse_log(f) for f in _logs_under(folder)], f"{folder.name}/ (all logs)"
    linked = parse_log(target)
    logs = [lg for lg in (parse_log(f) for f in _logs_under(folder)) if _same_run(lg, linked)]
    return logs, f"{folder.relative_to(t3 / 'results')}/ (same run length as the linked log)"


def reproduce(t3: Path, row: Row, rule: stats.Rule, target: float) -> Outcome:
    out = Outcome(row)
    try:
        logs, how = row_logs(t3, row)
    except OptbenchError as e:
        out.status = f"logs missing upstream ({e})"
        return out
    out.logs = [lg.path for lg in logs]
    out.notes.append(f"logs: {how}")
    out.metric, why = CLAIM_METRIC.get(row.num, ("val_loss", ""))
    if why:
        out.notes.append(f"claim on {out.metric}: {why}")
    runs = [r for lg in logs for r in lg.run_records(target, out.metric)]
    out.n = len(runs)
    if out.n < row.n:
        out.status = f"logs missing upstream ({out.n} of {row.n} runs)"
        return out
    v = stats.evaluate_runs(runs, rule, target=target)
    out.earliest = v.claimed_step
    at = next((p for p in v.per_step if p.step == row.steps), None)
    if at is None:
        out.status = f"no: step {row.steps} is not an eval step common to all {out.n} runs"
        return out
    out.mean, out.passes = at.mean, at.passes
    wrong = []
    if out.n != row.n:
        wrong.append(f"n {out.n}")
    if not printed_as(at.mean, row.mean):
        wrong.append(f"mean {at.mean:.6f}")
    if at.passes != row.passed:
        wrong.append("verdict")
    out.status = "yes" if not wrong else "no: " + ", ".join(wrong)
    if wrong and row.num in README_SLIPS:
        out.notes.append(README_SLIPS[row.num])
    if out.earliest is not None and out.earliest < row.steps:
        out.notes.append(f"the set already passes at step {out.earliest}; the README claims {row.steps}")
    return out


def render(outcomes: list[Outcome], rule: stats.Rule, rule_text: str) -> str:
    head = ["#", "README steps", "README evidence", "logs", "n", "mean @ steps", "verdict", "earliest pass", "match"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" if i in (0, 1, 4, 7) else "---" for i in
                                                            range(len(head))) + "|"]
    for o in outcomes:
        r = o.row
        cells = [str(r.num), str(r.steps), f"{r.mean} (n={r.n}){'✓' if r.passed else 'Ⓧ'}", str(len(o.logs)),
                 str(o.n) if o.logs else "-", f"{o.mean:.6f}" if o.mean is not None else "-",
                 "-" if o.passes is None else ("✓" if o.passes else "Ⓧ"),
                 str(o.earliest) if o.earliest is not None else "-", o.status]
        lines.append("| " + " | ".join(cells) + " |")
    with_logs = [o for o in outcomes if o.has_logs]
    matched = [o for o in with_logs if o.status == "yes"]
    lines += ["", f"rule: {rule.describe()}, named by the README: {rule_text}",
              f"rows matched: {len(matched)} / rows with logs: {len(with_logs)} "
              f"(README rows: {len(outcomes)}; logs missing upstream: {len(outcomes) - len(with_logs)})", "",
              "notes:"]
    for o in outcomes:
        for n in o.notes if (o.status != "yes" or any(not x.startswith("logs:") for x in o.notes)) else []:
            lines.append(f"- #{o.row.num}: {n}")
        if not o.has_logs:
            lines.append(f"- #{o.row.num}: {o.status}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("clone", type=Path, help="a local clone (work tree) of KellerJordan/modded-nanogpt")
    ap.add_argument("--out", type=Path, help="also write the table here")
    a = ap.parse_args(argv)
    t3 = a.clone / T3
    readme = t3 / "README.md"
    if not readme.is_file():
        print(f"upstream_records: error: {readme}: no such file (is {a.clone} a clone of modded-nanogpt?)",
              file=sys.stderr)
        return 2
    try:
        text = readme.read_text(encoding="utf-8")
        rows = readme_rows(text)
        rule, target, rule_text = readme_rule(text)
        from tqdm import tqdm

        outcomes = [reproduce(t3, r, rule, target)
                    for r in tqdm(rows, desc="README rows", unit="row", file=sys.stderr, disable=None)]
    except OptbenchError as e:
        print(f"upstream_records: error: {e}", file=sys.stderr)
        return 2
    table = render(outcomes, rule, rule_text)
    sys.stdout.write(table)
    if a.out:
        from optbench.fsutil import atomic_write_text

        atomic_write_text(a.out, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
