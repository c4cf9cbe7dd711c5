"""The explicit target (one rule for "below", no silent 3.28), judging a record once (from curves or from mean
and n), the leaderboard's eligibility, and a run set's target resolved from its inputs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from optbench.errors import OptbenchError
from optbench.results import stats
from optbench.results.eligibility import is_official, marker_refusal, may_rank
from optbench.results.judging import judge_record
from optbench.results.runset import judge_run_set, load_run_set
from optbench.results.schema import RunRecord, parse_results, results_from_runs, save_results

FX = Path(__file__).parent / "fixtures"
LOG = FX / "upstream_two_trials.txt"
PLAIN = FX / "workspace" / "artifacts" / "muon_wd_agent-02"  # a workspace record without target or curves


def test_below_target_is_one_function_everywhere():
    import optbench.target
    import optbench.tracks

    assert optbench.tracks.below_target is optbench.target.below_target
    below = optbench.target.below_target
    assert below(3.2799, 3.28) and not below(3.28, 3.28) and not below(3.2801, 3.28)
    assert not below(float("nan"), 3.28) and not below(float("-inf"), 3.28) and not below(None, 3.28)
    assert optbench.tracks.get_track("medium").reached(2.9199) and not optbench.tracks.get_track("medium").reached(2.92)
    # the statistics use it: a NaN mean is never "below", a loss equal to the target is not below
    assert stats.first_step_below({0: 3.28, 100: float("nan"), 200: 3.2799}, 3.28) == 200
    assert stats.evaluate_runs([{0: 3.28, 100: 3.27}], target=3.28).first_below_target == 100


@pytest.mark.parametrize("call", [
    lambda: stats.passes(3.27, 1),
    lambda: stats.passes(3.27, 1, "workspace", 3.28),  # the target is keyword-only: a positional one is refused
    lambda: stats.required_mean(1),
    lambda: stats.runs_needed(3.27),
    lambda: stats.evaluate_runs([{0: 3.27}]),
    lambda: stats.claimed_step([{0: 3.27}]),
    lambda: stats.first_step_below({0: 3.27}),
    lambda: stats.steps_field(),
    lambda: RunRecord.from_curve([(0, 3.27)]),
    lambda: results_from_runs([RunRecord.from_curve([(0, 3.27)], target=3.28)], agent_id="a", experiment="e",
                              optimizer="m"),
])
def test_no_function_defaults_the_target(call):
    with pytest.raises(TypeError, match="target|positional"):
        call()


def test_a_medium_caller_gets_the_medium_bar():
    assert stats.required_mean(4, "workspace", target=2.92) == pytest.approx(2.9175)
    assert stats.passes(2.9174, 4, "workspace", target=2.92) and not stats.passes(3.27, 4, "workspace", target=2.92)


def test_only_an_old_file_without_target_is_read_as_3_28():
    from pydantic import ValidationError

    from optbench.results.schema import Results

    data = {"agent_id": "a", "experiment": "e", "optimizer": "m", "steps_to_3_28": 3000, "final_val_loss": 3.27}
    r = parse_results(data)
    assert r.target == 3.28 and r.steps_to_target == 3000 and r.steps_field == "steps_to_3_28"
    with pytest.raises(ValidationError, match="target"):  # built in code, a record must be given its target
        Results(**{k: v for k, v in data.items() if k != "steps_to_3_28"}, steps_to_target=3000)
    medium = parse_results({**data, "target": 2.92, "steps_to_2_92": 5875})
    assert medium.steps_to_target == 5875 and medium.steps_field == "steps_to_2_92"


def _record(ends, target=3.28, **kw):
    runs = [RunRecord.from_curve([(0, 10.8), (3000, target + 0.01), (3250, e)], seed=i, target=target)
            for i, e in enumerate(ends)]
    return results_from_runs(runs, agent_id="a", experiment="e", optimizer="Muon", target=target,
                             timestamp="2026-05-01T10:00:00Z", **kw)


def test_judge_record_from_curves_and_from_mean_and_n():
    # from curves: n=2 at mean 3.2761 passes the workspace bar 3.28 - 0.005/sqrt(2) = 3.27646
    rec = _record([3.2760, 3.2762])
    j = judge_record(rec, "workspace")
    assert j.from_curves and j.passed and j.reached and (j.steps, j.n) == (3250, 2)
    assert j.mean == pytest.approx(3.2761) and j.required_mean == pytest.approx(3.28 - 0.005 / math.sqrt(2))
    # without curves: the record's own step, mean and n (muon_wd: 3400 steps, mean 3.271, n=1 < 3.275 passes)
    plain = parse_results(json.loads((PLAIN / "results.json").read_text()))
    jp = judge_record(plain, "workspace")
    assert not jp.from_curves and jp.passed and (jp.steps, jp.n, jp.mean) == (3400, 1, 3.271)
    # a mean of 3.2755 is below the target but fails the n=1 bar 3.275
    worse = plain.model_copy(update={"mean_val_loss": 3.2755, "final_val_loss": 3.2755})
    assert not judge_record(worse, "workspace").passed and judge_record(worse, "workspace").reached
    # a medium record is judged at its own target
    med = _record([2.9140], target=2.92)
    assert judge_record(med, "workspace").passed and judge_record(med, "workspace").target == 2.92


def test_eligibility_policy():
    good = _record([3.2740])
    j = judge_record(good, "workspace")
    assert is_official(good) and may_rank(good, j) and marker_refusal(good, agent_id="a") is None
    assert "report only your own results" in marker_refusal(good, agent_id="b")
    unofficial = _record([3.2740], unofficial=True)
    assert not may_rank(unofficial, judge_record(unofficial)) and "unofficial" in marker_refusal(unofficial)
    failing = _record([3.2790])
    assert not may_rank(failing, judge_record(failing)) and "fails the significance rule" in marker_refusal(failing)
    never = _record([3.30])
    assert "never reached val loss < 3.28" in marker_refusal(never)


def test_a_run_set_is_judged_by_one_rule_and_target(tmp_path):
    save_results(_record([2.9140], target=2.92), tmp_path / "med")
    srcs, choice = load_run_set([tmp_path / "med"], None, None, "val_loss", None)
    assert choice.target == 2.92  # the record's own
    rep = judge_run_set(srcs, choice)
    assert rep.verdict.target == 2.92 and rep.verdict.passed and not rep.failed
    _, logs = load_run_set([LOG], None, None, "val_loss", None)
    assert logs.target == 3.28  # an upstream log names no track: small's target (rule_policy)
    _, cpu = load_run_set([LOG], None, None, "val_loss", "cpu")
    assert cpu.target == 5.0
    _, given = load_run_set([tmp_path / "med"], 3.0, None, "val_loss", None)
    assert given.target == 3.0
    with pytest.raises(OptbenchError, match="different"):  # 2.92 under `workspace` and a log at 3.28
        load_run_set([tmp_path / "med", LOG], None, None, "val_loss", None)
