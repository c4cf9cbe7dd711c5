"""Bad numbers never enter a record: NaN/Infinity are refused where results.json is read (issue 15), a binary
file is a clear error, and a diverged run does not recover (stats.curve_map)."""

from __future__ import annotations

import json
import math
import warnings

import pytest

from optbench.errors import OptbenchError
from optbench.results import stats
from optbench.results.leaderboard import entries_from
from optbench.results.logparse import parse_log
from optbench.results.plots import plot_curves
from optbench.results.schema import CurvePoint, Results, RunRecord, load_results, results_from_runs

GOOD = {
    "agent_id": "agent-01", "experiment": "e", "optimizer": "Muon", "steps_to_3_28": 3000, "final_val_loss": 3.27,
    "num_runs": 1, "mean_val_loss": 3.27, "target": 3.28,
    "runs": [{"seed": 0, "final_val_loss": 3.25, "curve": [{"step": 0, "val_loss": 10.8}, {"step": 3000, "val_loss": 3.27},
                                                         {"step": 3125, "val_loss": 3.25}]}],
}


def _with(path: tuple, value) -> dict:
    d = json.loads(json.dumps(GOOD))
    node = d
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return d


@pytest.mark.parametrize("path,field", [
    (("final_val_loss",), "final_val_loss"),
    (("mean_val_loss",), "mean_val_loss"),
    (("std_val_loss",), "std_val_loss"),
    (("wallclock_s",), "wallclock_s"),
    (("runs", 0, "final_val_loss"), "runs[0].final_val_loss"),
    (("runs", 0, "curve", 2, "val_loss"), "runs[0].curve[2].val_loss"),
    (("runs", 0, "curve", 1, "train_time_s"), "runs[0].curve[1].train_time_s"),
    (("key_hparams",), "key_hparams.lr"),
    (("target",), "target"),
])
@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_refused_naming_the_field(path, field, bad):
    value = {"lr": "@"} if path == ("key_hparams",) else "@"
    text = json.dumps(_with(path, value)).replace('"@"', bad)
    with pytest.raises(OptbenchError) as e:
        load_results(text)
    msg = str(e.value)
    assert f"{field}: " in msg and "finite" in msg, msg


def test_non_finite_string_for_a_number_is_refused():
    with pytest.raises(OptbenchError, match="final_val_loss: .*finite"):
        load_results(json.dumps(_with(("final_val_loss",), "NaN")))


def test_null_is_how_a_diverged_loss_is_written():
    d = _with(("runs", 0, "curve", 2, "val_loss"), None)
    d["runs"][0]["final_val_loss"] = None
    r = load_results(json.dumps(d))
    assert r.runs[0].curve[2].val_loss is None


def test_measured_points_store_a_non_finite_loss_as_null():
    assert CurvePoint.measured(5, float("nan")).val_loss is None
    assert CurvePoint.measured(5, float("inf"), float("nan")).train_time_s is None
    with pytest.raises(Exception):
        CurvePoint(step=5, val_loss=float("nan"))  # a model built directly refuses it: the one rule


def test_binary_results_json_is_a_clear_error(tmp_path):
    p = tmp_path / "results.json"
    p.write_bytes(bytes(range(256)))
    with pytest.raises(OptbenchError, match="not UTF-8 text"):
        load_results(p)


def test_deeply_nested_json_is_a_clear_error():
    with pytest.raises(OptbenchError, match="nested too deep"):
        load_results('{"a":' + "[" * 100_000 + "]" * 100_000 + "}")


def test_leaderboard_skips_a_nan_record(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "results.json").write_text(json.dumps(GOOD).replace("3.27,", "NaN,", 1))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "results.json").write_bytes(b"\xff\xfe\x00binary")
    entries, skipped = entries_from(str(tmp_path), None)
    assert entries == [] and len(skipped) == 2
    assert "finite" in dict(skipped)["a/results.json"] and "binary" in dict(skipped)["b/results.json"]


# ---- a diverged run does not recover ------------------------------------------------------------------------

def test_nan_then_recovery_has_no_step_below_target():
    run = RunRecord.from_curve([(0, 10.8), (1000, float("nan")), (2000, 3.20)], target=3.28)
    assert run.diverged and run.steps_to_target is None and run.final_val_loss is None
    assert stats.curve_map(run) == {0: 10.8, 1000: stats.curve_map(run)[1000], 2000: stats.curve_map(run)[2000]}
    assert math.isnan(stats.curve_map(run)[2000])
    assert stats.diverged_at(run) == 1000
    v = stats.evaluate_runs([run], target=3.28)
    assert v.claimed_step is None and v.first_below_target is None


def test_below_target_before_divergence_still_counts():
    run = RunRecord.from_curve([(0, 10.8), (1000, 3.20), (2000, float("nan"))], target=3.28)
    assert run.steps_to_target == 1000 and stats.diverged_at(run) == 2000
    r = results_from_runs([run], agent_id="a", experiment="e", optimizer="x", target=3.28)
    assert r.claimed_step == 1000


LOG_NAN_RECOVERS = """print('the training script')
{sep}
Running PyTorch 2.10.0 compiled for CUDA 12.8 on NVIDIA H100 with world_size 8
{sep}
step:0/4000 val_loss:10.8 train_time:0.0s step_avg:0.00ms
step:1000/4000 val_loss:4.0 train_time:10s step_avg:10ms
step:2000/4000 val_loss:nan train_time:20s step_avg:10ms
step:3000/4000 val_loss:3.25 train_time:30s step_avg:10ms
step:4000/4000 val_loss:3.20 train_time:40s step_avg:10ms
""".format(sep="=" * 100)


def test_log_nan_then_recovery_is_judged_diverged(tmp_path):
    p = tmp_path / "log.txt"
    p.write_text(LOG_NAN_RECOVERS)
    run = parse_log(p).run_records(3.28)[0]
    assert run.diverged and run.steps_to_target is None
    assert stats.evaluate_runs([run], target=3.28).reported_step is None


# ---- plots of diverged runs -----------------------------------------------------------------------------------

def test_plot_of_a_run_that_diverged_after_its_first_eval_has_no_warning(tmp_path):
    run = RunRecord(seed=0, final_val_loss=None, curve=[CurvePoint(step=0, val_loss=10.83)], diverged=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = plot_curves({"adamw": [run]}, 3.28, tmp_path / "p.png")
    assert p.stat().st_size > 0


def test_plot_legend_names_the_divergence(tmp_path, monkeypatch):
    import matplotlib.axes

    labels = []
    orig = matplotlib.axes.Axes.plot

    def spy(self, *a, **k):
        if "label" in k:
            labels.append(k["label"])
        return orig(self, *a, **k)

    monkeypatch.setattr(matplotlib.axes.Axes, "plot", spy)
    run = RunRecord.from_curve([(0, 10.8), (1000, 4.0), (2000, float("nan")), (3000, 3.2)], target=3.28)
    plot_curves({"x": [run]}, 3.28, tmp_path / "p.png")
    assert labels and "diverged at step 2,000" in labels[0] and "target not reached" in labels[0]


def test_plot_with_nothing_finite_is_a_clear_error(tmp_path):
    run = RunRecord.from_curve([(0, float("nan")), (100, float("nan"))], target=3.28)
    with pytest.raises(OptbenchError, match="nothing to draw"):
        plot_curves({"x": [run]}, 3.28, tmp_path / "p.png")
    assert not (tmp_path / "p.png").exists()


# ---- the top-level final_val_loss, named ----------------------------------------------------------------------

def test_loss_summary_says_what_final_val_loss_is():
    r = load_results(json.dumps(GOOD))
    s = r.loss_summary()
    assert "final_val_loss 3.27000 (mean val loss at step 3000, n=1)" in s
    assert "last eval of each run (runs[].final_val_loss): 3.25000" in s
