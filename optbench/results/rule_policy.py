"""Which significance rule and target judge a record: the one policy of stats, the leaderboard and check.

    c = for_results(results)                 # a results.json record
    c = for_log(log)                         # a parsed upstream-format log
    c.rule, c.target, c.reason               # stats.Rule, float, why this rule (every output prints it)

The rule, in order:
  1. the one the user gives (`--rule`);
  2. the one the record names (results.json `rule`);
  3. the upstream rule in force at the record's date, for the upstream track (`small`: KJ
     records/track_3_optimization/README.md history, track3.md section 7; a date without a time is 00:00 UTC);
  4. the record's track's default rule (`Track.rule`); a workspace record without a track is judged by the
     workspace format's rule (spec/workspace.md 'statistical bar').
An upstream-format log names no rule; it names a track only when it is an optbench run log (its header); any
other log is a `small` (track 3) log, dated by its `Run UTC timestamp=` line when it prints one.
The target: the user's (`--target`), else the record's own, else its track's. Never a built-in constant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from optbench.errors import OptbenchError
from optbench.results import stats

if TYPE_CHECKING:  # pragma: no cover
    from optbench.results.logparse import UpstreamLog
    from optbench.results.schema import Results

WORKSPACE_RULE = "workspace"  # spec/workspace.md: the rule of a workspace record that names no track
LOG_TRACK = "small"  # an upstream-format log that names no track is a track-3 log

# Upstream's rule history (UTC start, preset, the README commit that put it in force). Before the first entry
# the README stated no rule, so a record from then falls through to its track's default.
UPSTREAM_HISTORY: dict[str, tuple[tuple[datetime, str, str], ...]] = {
    "small": (
        (datetime(2026, 4, 30, 3, 21, 0), "upstream-2026-04-29", "29925d96 (2026-04-29 20:21 -0700)"),
        (datetime(2026, 4, 30, 7, 38, 35), "workspace", "5bfd7fe0 (2026-04-30 00:38 -0700)"),
        (datetime(2026, 5, 1, 5, 59, 35), "upstream-2026-04-30", "52929885 (2026-04-30 22:59 -0700)"),
    ),
}


@dataclass(frozen=True)
class RuleChoice:
    """The rule and target a record is judged by, and why."""

    rule: stats.Rule
    target: float
    track: str | None
    reason: str  # e.g. "named by the record", "in force upstream since README 52929885 (...)"
    dates: tuple[str, ...] = ()  # the records' dates (YYYY-MM-DD) when the rule came from them

    def describe(self) -> str:
        """`upstream-2026-04-30 (sigma 0.0013, p < 0.001, margin 0.004): track small's default; target 3.28`."""
        when = ""
        if self.dates:
            span = self.dates[0] if len(self.dates) == 1 else f"{self.dates[0]}..{self.dates[-1]}"
            when = f" at the record date {span}" if len(self.dates) == 1 else f" at the record dates {span}"
        return f"{self.rule.describe()}: {self.reason}{when}; target {self.target:g}"


def parse_when(when: str | datetime | None) -> datetime | None:
    """A naive UTC datetime from an ISO time or date (`2026-05-03`, `2026/05/03`, `...T14:30:00Z`); None if none."""
    if when is None or isinstance(when, datetime):
        return when
    from optbench.results.schema import parse_timestamp

    text = when.strip().replace("/", "-")
    return parse_timestamp(text)


def rule_in_force(track: str | None, when: str | datetime | None) -> tuple[str, str] | None:
    """(preset, README commit) of the upstream rule in force for `track` at `when`; None when the track has no
    dated history, the time is unknown, or it predates the first rule."""
    t = parse_when(when)
    if t is None or track not in UPSTREAM_HISTORY:
        return None
    found = None
    for start, preset, commit in UPSTREAM_HISTORY[track]:
        if t >= start:
            found = (preset, commit)
    return found


def _track(name: str):
    from optbench.tracks import TRACK_NAMES, get_track  # lazy: tracks imports the model (torch)

    try:
        return get_track(name)
    except OptbenchError:
        raise OptbenchError(f"track: {name!r} is not a track optbench knows ({', '.join(TRACK_NAMES)})") from None


def choose(
    *,
    override: str | None = None,
    named: str | None = None,
    when: str | datetime | None = None,
    track: str | None = None,
    target: float | None = None,
    target_override: float | None = None,
) -> RuleChoice:
    """The policy (module docstring) from a record's facts. OptbenchError for an unknown rule or track, or when
    nothing gives a target."""
    tr = _track(track) if track else None
    dates: tuple[str, ...] = ()
    if override:
        rule, reason = stats.get_rule(override), "given with --rule"
    elif named:
        rule, reason = stats.get_rule(named), "named by the record"
    elif (hit := rule_in_force(track, when)) is not None:
        dates = (parse_when(when).strftime("%Y-%m-%d"),)
        rule, reason = stats.get_rule(hit[0]), f"in force upstream since README {hit[1]}"
    elif tr is not None:
        rule, reason = stats.get_rule(tr.rule), f"track {tr.name}'s default"
    else:
        rule, reason = stats.get_rule(WORKSPACE_RULE), "a workspace record without a track: the workspace rule"
    if target_override is not None:
        tgt = target_override
    elif target is not None:
        tgt = target
    elif tr is not None:
        tgt = tr.target
    else:
        raise OptbenchError("target: the record names neither a target nor a track; pass --target")
    return RuleChoice(rule, float(tgt), tr.name if tr else track, reason, dates)


def for_results(r: "Results", override: str | None = None, target: float | None = None) -> RuleChoice:
    """The rule and target of a results.json record."""
    return choose(override=override, named=r.rule, when=r.timestamp, track=r.track, target=r.target,
                  target_override=target)


def for_log(log: "UpstreamLog", override: str | None = None, track: str | None = None,
            target: float | None = None) -> RuleChoice:
    """The rule and target of an upstream-format log: its track (the given one, the one an optbench header
    names, else small), dated by its timestamp line when it has one."""
    return choose(override=override, when=log.timestamp, track=track or log.track or LOG_TRACK,
                  target_override=target)


def common(choices: list[RuleChoice], what: str = "inputs") -> RuleChoice:
    """The one choice shared by several sources judged together; OptbenchError naming the disagreement."""
    if not choices:
        raise OptbenchError(f"{what}: nothing to judge")
    rules = sorted({c.rule.name for c in choices})
    if len(rules) > 1:
        raise OptbenchError(f"--rule: the {what} are judged by different rules ({', '.join(rules)}); pass --rule")
    targets = sorted({c.target for c in choices})
    if len(targets) > 1:
        raise OptbenchError(f"--target: the {what} have different targets {targets}; pass --target")
    reasons = sorted({c.reason for c in choices})
    dates = tuple(sorted({d for c in choices for d in c.dates}))
    first = choices[0]
    return RuleChoice(first.rule, first.target, first.track, "; ".join(reasons), dates)


__all__ = ["RuleChoice", "choose", "for_results", "for_log", "common", "rule_in_force", "UPSTREAM_HISTORY",
           "WORKSPACE_RULE", "LOG_TRACK"]
