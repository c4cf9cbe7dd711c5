"""Who may rank: the leaderboard's eligibility policy, and the reasons a record may not carry the message board's
leaderboard marker. The judging itself (steps, mean, pass) is optbench.results.judging.

A result ranks (LEADERBOARD.md's #, best per optimizer, record history; the board's marker) when it is official
(not run with changed fixed fields, not marked non-compliant), reached the target and passes the rule.
"""

from __future__ import annotations

from optbench.results import rule_policy, stats
from optbench.results.judging import RecordJudgement, judge_record
from optbench.results.schema import Results


def is_official(results: Results) -> bool:
    """Run on the fixed benchmark fields and not marked non-compliant."""
    return results.compliant is not False and not results.unofficial


def may_rank(results: Results, judgement: RecordJudgement) -> bool:
    """Eligible for best/record: passes the rule, official, compliant, reached the target."""
    return judgement.passed and is_official(results) and judgement.steps is not None


def marker_refusal(results: Results, agent_id: str | None = None, rule: str | None = None) -> str | None:
    """Why a results record may not carry the leaderboard marker (None when it may).

    The marker is for leaderboard-worthy runs only: the run set reached the target AND passes the track's
    significance rule (judged from the per-seed curves when the record has them, else from mean and n),
    is not unofficial and not marked non-compliant, and is reported by its own agent.
    """
    f = results.steps_field
    if agent_id is not None and results.agent_id != agent_id:
        return f"results.json agent_id is {results.agent_id!r}, but you are {agent_id!r}: report only your own results"
    if results.unofficial:
        return "the run is unofficial (fixed benchmark fields were changed): it cannot go on the leaderboard"
    if results.compliant is False:
        notes = "; ".join(results.compliance_notes) or "no notes"
        return f"the run is marked non-compliant ({notes})"
    rule_name = rule_policy.for_results(results, override=rule).rule.name  # the one rule policy
    j = judge_record(results, rule_name)
    if j.verdict is not None:
        if not j.reached:
            return f"the runs never reached val loss < {results.target} ({f} is null): no leaderboard marker"
        if not j.passed:
            return f"the run set fails the significance rule: {stats.format_verdict(j.verdict)}"
        return None
    if not j.reached:
        return f"the run did not reach the target val loss {results.target} ({f} is null): no leaderboard marker"
    if results.passes_rule is False:
        return f"results.json says passes_rule: false (rule {results.rule or rule_name}): no leaderboard marker"
    if j.mean is None:
        return "results.json has no mean_val_loss or final_val_loss to judge against the significance rule"
    if not j.passed:
        return (
            f"mean val loss {j.mean:.5f} over n={j.n} run(s) fails the significance rule {j.rule.describe()}: "
            f"needs mean < {j.required_mean:.5f} (or more runs)"
        )
    return None


__all__ = ["is_official", "may_rank", "marker_refusal"]
