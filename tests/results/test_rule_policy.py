"""One rule policy: the rule a record names, else the upstream rule in force at its date, else its track's default;
the target from the record or its track, never a built-in 3.28."""

from __future__ import annotations

from datetime import datetime

import pytest

from optbench.errors import OptbenchError
from optbench.results import rule_policy, stats
from optbench.results.logparse import parse_log_text
from optbench.results.schema import Results

from .upstream_logs import curve, log_text


def _results(**kw) -> Results:
    base = dict(agent_id="a", experiment="e", optimizer="Muon", steps_to_target=3250, final_val_loss=3.2779, target=3.28)
    return Results(**{**base, **kw})


@pytest.mark.parametrize(
    "when,preset",
    [
        ("2026-04-26T12:00:00Z", None),  # before the README stated any rule
        ("2026-04-30T03:20:59Z", None),
        ("2026-04-30T03:21:00Z", "upstream-2026-04-29"),  # 29925d96, 2026-04-29 20:21 -0700
        ("2026-04-30T07:38:35Z", "workspace"),  # 5bfd7fe0: sigma 0.0016, margin 0.005 (the workspace's rule)
        ("2026-04-30 22:59 UTC", "workspace"),
        ("2026-04-30T22:59:34-07:00", "workspace"),  # one second before 52929885, in upstream's own time zone
        ("2026-04-30T22:59:35-07:00", "upstream-2026-04-30"),
        ("2026/06/19", "upstream-2026-04-30"),  # a README date: 00:00 UTC
    ],
)
def test_upstream_rule_in_force_at_a_date(when, preset):
    hit = rule_policy.rule_in_force("small", when)
    assert (hit[0] if hit else None) == preset


def test_only_the_upstream_track_has_a_dated_history():
    assert rule_policy.rule_in_force("cpu", "2026-05-03") is None
    assert rule_policy.rule_in_force("small", None) is None and rule_policy.rule_in_force("small", "soon") is None


def test_results_named_rule_wins_then_date_then_track_default():
    named = rule_policy.for_results(_results(track="small", rule="workspace", timestamp="2026-06-01T00:00:00Z"))
    assert named.rule.name == "workspace" and named.reason == "named by the record" and named.target == 3.28
    dated = rule_policy.for_results(_results(track="small", timestamp="2026-04-30T12:00:00Z"))
    assert dated.rule.name == "workspace" and "5bfd7fe0" in dated.reason and dated.dates == ("2026-04-30",)
    assert "at the record date 2026-04-30" in dated.describe()
    early = rule_policy.for_results(_results(track="small", timestamp="2026-04-26T08:00:00Z"))
    assert early.rule.name == "upstream-2026-04-30" and early.reason == "track small's default"
    cpu = rule_policy.for_results(_results(track="cpu", target=5.0, timestamp="2026-04-30T12:00:00Z"))
    assert cpu.rule.name == "workspace" and cpu.reason == "track cpu's default" and cpu.target == 5.0
    bare = rule_policy.for_results(_results())
    assert bare.rule.name == "workspace" and "without a track" in bare.reason
    given = rule_policy.for_results(_results(rule="workspace"), override="upstream-2026-04-30", target=3.3)
    assert given.rule.name == "upstream-2026-04-30" and given.reason == "given with --rule" and given.target == 3.3


def test_target_comes_from_the_track_or_the_record_never_a_default():
    assert rule_policy.choose(track="medium").target == 2.92
    assert rule_policy.choose(track="nano").target == 5.0
    assert rule_policy.choose(target=4.2).target == 4.2
    with pytest.raises(OptbenchError, match="names neither a target nor a track"):
        rule_policy.choose()
    with pytest.raises(OptbenchError, match="track: 'huge' is not a track optbench knows"):
        rule_policy.choose(track="huge")
    with pytest.raises(OptbenchError, match="unknown stats rule 'lenient'"):
        rule_policy.choose(named="lenient", track="small")


def test_logs_upstream_dated_and_optbench_runs():
    up = parse_log_text(log_text([(500, curve(500, 3.9))], version="short"), "u.txt")
    c = rule_policy.for_log(up)
    assert (c.rule.name, c.target, c.track, c.reason) == ("upstream-2026-04-30", 3.28, "small", "track small's default")
    dated = parse_log_text(log_text([(500, curve(500, 3.9))], pre=["Run UTC timestamp=2026-04-30T10:00:00Z"]), "d.txt")
    assert rule_policy.for_log(dated).rule.name == "workspace"
    code = "# optbench run: track=nano recipe=nano-muon seeds=[0] train_steps=100\n"
    nano = parse_log_text(log_text([(100, {0: 7.6, 100: 4.9})], code=code), "n.txt")
    c = rule_policy.for_log(nano)
    assert (c.rule.name, c.target, c.track) == ("workspace", 5.0, "nano")
    assert rule_policy.for_log(nano, track="medium").target == 2.92


def test_common_choice_of_several_sources():
    a = rule_policy.choose(track="small", when="2026-05-03")
    b = rule_policy.choose(track="small", when="2026-06-19")
    both = rule_policy.common([a, b])
    assert both.rule.name == "upstream-2026-04-30" and both.dates == ("2026-05-03", "2026-06-19")
    assert "at the record dates 2026-05-03..2026-06-19" in both.describe()
    with pytest.raises(OptbenchError, match=r"different rules \(upstream-2026-04-30, workspace\); pass --rule"):
        rule_policy.common([a, rule_policy.choose(track="cpu")])
    with pytest.raises(OptbenchError, match="different targets"):
        rule_policy.common([a, rule_policy.choose(track="small", target=3.3)])


def test_every_history_preset_exists_and_is_ordered():
    for track, hist in rule_policy.UPSTREAM_HISTORY.items():
        starts = [h[0] for h in hist]
        assert starts == sorted(starts) and all(isinstance(s, datetime) for s in starts)
        for _, preset, _ in hist:
            assert preset in stats.RULES
    first = stats.get_rule("upstream-2026-04-29")
    # published thresholds of the first rule: n=1 < 3.275, n=4 < 3.2775
    assert stats.required_mean(1, first, target=3.28) == pytest.approx(3.275)
    assert stats.required_mean(4, first, target=3.28) == pytest.approx(3.2775)
