"""results.json: round trip, validation messages naming fields, legacy files, other targets."""

from __future__ import annotations

import json

import pytest

from optbench.errors import OptbenchError
from optbench.results import (
    Provenance,
    RecipeRecord,
    Results,
    RunRecord,
    load_results,
    results_from_runs,
    save_results,
)

WORKSPACE_EXAMPLE = {
    "agent_id": "agent-01",
    "timestamp": "2026-04-30T14:30:00Z",
    "experiment": "Muon with tuned weight decay schedule",
    "optimizer": "Muon",
    "steps_to_3_28": 3400,
    "final_val_loss": 3.271,
    "num_runs": 1,
    "mean_val_loss": 3.271,
    "std_val_loss": 0.0012,
    "key_hparams": {"lr": 0.025, "wd": 0.015},
    "notes": "Weight decay warmup for first 200 steps",
}


def _curve(end: float, steps=(0, 125, 2875, 2925, 2950, 3250), t0=0.5):
    losses = [10.82584, 6.0, 3.2950, 3.2860, 3.2830, end]
    return [{"step": s, "val_loss": v, "train_time_s": t0 * s} for s, v in zip(steps, losses)]


def _runs():
    return [
        RunRecord.from_curve(_curve(3.2768), seed=0, log_path="logs/s0.txt", target=3.28),
        RunRecord.from_curve(_curve(3.2779), seed=1, log_path="logs/s1.txt", target=3.28),
        RunRecord.from_curve(_curve(3.2771), seed=2, log_path="logs/s2.txt", target=3.28),
        RunRecord.from_curve(_curve(3.2782), seed=3, log_path="logs/s3.txt", target=3.28),
    ]


def test_workspace_example_loads_and_round_trips_byte_for_byte(tmp_path):
    p = tmp_path / "results.json"
    p.write_text(json.dumps(WORKSPACE_EXAMPLE))
    r = load_results(p)
    assert r.steps_to_target == 3400 and r.target == 3.28 and r.steps_field == "steps_to_3_28"
    out = json.loads(r.to_json())
    # every workspace field written back unchanged, under its own name
    for k, v in WORKSPACE_EXAMPLE.items():
        assert out[k] == v
    assert "steps_to_target" not in out
    save_results(r, tmp_path / "again.json")
    assert load_results(tmp_path / "again.json") == r


def test_unknown_fields_are_preserved(tmp_path):
    data = dict(WORKSPACE_EXAMPLE, gpu_hours=1.5, other_tool={"x": [1, 2]})
    p = tmp_path / "results.json"
    p.write_text(json.dumps(data))
    r = load_results(p)
    save_results(r, p)
    out = json.loads(p.read_text())
    assert out["gpu_hours"] == 1.5 and out["other_tool"] == {"x": [1, 2]}


def test_builder_computes_statistics_and_round_trips(tmp_path):
    r = results_from_runs(
        _runs(),
        agent_id="agent-07",
        experiment="muon baseline",
        optimizer="Muon",
        track="small",
        key_hparams={"lr": 0.025, "wd": 0.05},
        recipe=RecipeRecord(name="muon_baseline", config={"optimizer": "muon", "lr": 0.025}),
        provenance=Provenance(git_commit="abc", torch_version="2.13", device="cpu", world_size=1),
        train_steps=3250,
        wallclock_s=12.5,
        timestamp="2026-05-01T10:00:00Z",
        target=3.28,
    )
    # mean at 3250 = (3.2768+3.2779+3.2771+3.2782)/4 = 3.2775 -> exactly the n=4 workspace bar: passes
    assert r.num_runs == 4 and r.seeds == [0, 1, 2, 3]
    assert r.mean_val_loss == pytest.approx(3.2775) and r.final_val_loss == pytest.approx(3.2775)
    # deviations (-7, +4, -4, +7)e-4: sqrt(1.3e-6 / 3) = 6.58281e-4 (sample std)
    assert r.std_val_loss == pytest.approx(6.58281e-4, abs=1e-9)
    assert r.steps_to_target == 3250 and r.claimed_step == 3250 and r.passes_rule and r.reached_target
    assert r.rule == "workspace" and r.compliant and r.compliance_notes == []
    assert r.runs[0].steps_to_target == 3250 and r.runs[0].final_val_loss == 3.2768
    p = save_results(r, tmp_path)  # a folder gets folder/results.json
    assert p.name == "results.json"
    again = load_results(tmp_path)
    assert again == r
    assert json.loads(p.read_text())["steps_to_3_28"] == 3250
    # each curve point is written on one line
    assert '{"step": 3250, "val_loss": 3.2768, "train_time_s": 1625.0}' in p.read_text()


def test_builder_not_passing_reports_first_step_below_target_and_fail():
    runs = [RunRecord.from_curve(_curve(3.2790), seed=0, target=3.28)]
    r = results_from_runs(runs, agent_id="a", experiment="e", optimizer="AdamW", target=3.28)
    assert r.steps_to_target == 3250 and r.claimed_step is None
    assert r.passes_rule is False and r.reached_target is True


def test_builder_never_reaching_target_is_null_and_valid():
    runs = [RunRecord.from_curve([(0, 10.8), (100, 5.0), (200, 4.1)], seed=0, target=3.28)]
    r = results_from_runs(runs, agent_id="a", experiment="short", optimizer="SGD", target=3.28)
    assert r.steps_to_target is None and r.reached_target is False and r.passes_rule is False
    assert r.final_val_loss == pytest.approx(4.1)
    again = load_results(r.to_json())
    assert again.steps_to_target is None and json.loads(r.to_json())["steps_to_3_28"] is None


def test_builder_extra_passes_and_unofficial_make_noncompliant():
    runs = _runs()
    runs[1] = runs[1].model_copy(update={"extra_passes": 3})
    r = results_from_runs(runs, agent_id="a", experiment="e", optimizer="SophiaG", unofficial=True, target=3.28)
    assert r.compliant is False and r.unofficial
    assert any("seed 1" in n and "extra" in n for n in r.compliance_notes)
    assert any("unofficial" in n for n in r.compliance_notes)


def test_diverged_run_round_trips_as_null():
    run = RunRecord.from_curve([(0, 10.8), (125, float("nan"))], seed=5, target=3.28)
    assert run.diverged and run.final_val_loss is None
    r = results_from_runs([run], agent_id="a", experiment="e", optimizer="x", target=3.28)
    text = r.to_json()
    assert "NaN" not in text
    assert load_results(text).runs[0].diverged


def test_target_2_92_uses_steps_to_2_92(tmp_path):
    runs = [
        RunRecord.from_curve([(5000, 2.95), (5960, 2.9140)], seed=0, target=2.92),
        RunRecord.from_curve([(5000, 2.95), (5960, 2.9150)], seed=1, target=2.92),
    ]
    r = results_from_runs(runs, agent_id="a", experiment="medium", optimizer="Muon", target=2.92, track="medium")
    out = json.loads(r.to_json())
    assert out["steps_to_2_92"] == 5960 and "steps_to_3_28" not in out and out["target"] == 2.92
    save_results(r, tmp_path / "r.json")
    assert load_results(tmp_path / "r.json").steps_to_target == 5960
    # a 2.92 record without its step field is missing exactly that field
    bad = {k: v for k, v in out.items() if k != "steps_to_2_92"}
    with pytest.raises(OptbenchError, match="steps_to_2_92: required field is missing"):
        load_results(json.dumps(bad))


@pytest.mark.parametrize(
    "change,expected",
    [
        ({"agent_id": None}, "agent_id: "),
        ({"experiment": 3}, "experiment: value is not a string"),
        ({"optimizer": ""}, "optimizer: "),
        ({"steps_to_3_28": "3400"}, "steps_to_3_28: value is not an integer"),
        ({"steps_to_3_28": 3400.5}, "steps_to_3_28: value is not an integer"),
        ({"steps_to_3_28": -1}, "steps_to_3_28: "),
        ({"final_val_loss": "low"}, "final_val_loss: value is not a number"),
        ({"final_val_loss": 0.0}, "final_val_loss: "),
        ({"num_runs": 0}, "num_runs: "),
        ({"std_val_loss": -0.1}, "std_val_loss: "),
        ({"key_hparams": [1, 2]}, "key_hparams: "),
        ({"timestamp": "yesterday"}, "timestamp: "),
        ({"rule": "strictest"}, "rule: unknown stats rule"),
        ({"target": -3}, "target: "),
        ({"runs": [{"seed": 0, "curve": [{"step": "x", "val_loss": 3.2}]}]}, "runs[0].curve[0].step: value is not an integer"),
        ({"provenance": {"world_size": 0}}, "provenance.world_size: "),
        ({"train_steps": 3000}, "steps_to_3_28: 3400 is beyond train_steps 3000"),
    ],
)
def test_every_validation_error_names_its_field(change, expected):
    data = dict(WORKSPACE_EXAMPLE, **change)
    with pytest.raises(OptbenchError) as e:
        load_results(json.dumps(data))
    assert expected in str(e.value)


def test_missing_required_fields_each_named():
    with pytest.raises(OptbenchError) as e:
        load_results('{"notes": "x"}')
    msg = str(e.value)
    for f in ("agent_id", "experiment", "optimizer", "steps_to_3_28", "final_val_loss"):
        assert f"{f}: required field is missing" in msg
    assert "5 problem(s)" in msg


def test_all_problems_reported_at_once(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(dict(WORKSPACE_EXAMPLE, steps_to_3_28="x", num_runs="four")))
    with pytest.raises(OptbenchError) as e:
        load_results(p)
    msg = str(e.value)
    assert str(p) in msg and "steps_to_3_28" in msg and "num_runs" in msg


def test_inconsistent_runs_are_problems():
    r = results_from_runs(_runs(), agent_id="a", experiment="e", optimizer="Muon", target=3.28)
    data = json.loads(r.to_json())
    data["steps_to_3_28"] = 2950
    data["claimed_step"] = 2950
    data["num_runs"] = 3
    with pytest.raises(OptbenchError) as e:
        load_results(json.dumps(data))
    msg = str(e.value)
    assert "steps_to_3_28: 2950 does not match the runs" in msg
    assert "claimed_step: 2950 does not match" in msg
    assert "num_runs: 3 but runs lists 4" in msg


def test_not_json_and_missing_file(tmp_path):
    with pytest.raises(OptbenchError, match="not valid JSON"):
        load_results("{not json")
    with pytest.raises(OptbenchError, match="no such file"):
        load_results(tmp_path / "missing.json")
    (tmp_path / "list.json").write_text("[1]")
    with pytest.raises(OptbenchError, match="expected a JSON object"):
        load_results(tmp_path / "list.json")


def test_results_model_accepts_steps_field_by_name():
    r = Results(agent_id="a", experiment="e", optimizer="m", steps_to_3_28=3000, final_val_loss=3.27, target=3.28)
    assert r.steps_to_target == 3000


def test_timestamps_iso_and_board_form():
    from optbench.results.schema import parse_timestamp

    assert parse_timestamp("2026-04-30T14:30:00Z").isoformat() == "2026-04-30T14:30:00"
    assert parse_timestamp("2026-04-30T16:30:00+02:00").isoformat() == "2026-04-30T14:30:00"
    assert parse_timestamp("2026-04-30 14:30 UTC").isoformat() == "2026-04-30T14:30:00"
    assert parse_timestamp("last tuesday") is None
    assert load_results(json.dumps(dict(WORKSPACE_EXAMPLE, timestamp="2026-04-30 14:30 UTC"))).timestamp
