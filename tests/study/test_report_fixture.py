"""The study's report from a tiny fixture (fast): sweeps with no trials yet, final runs written as results.json
files; the table, the coefficients, the ratio and the figure come out with the numbers the fixture fixes."""

import math

import pytest

from optbench.results.schema.models import CurvePoint, Results, RunRecord
from optbench.study.plan import load_study

from .studyfiles import write_study

# per entry, per seed: val loss at steps 0, 20, 40 (nano track: target 5.0, rule `workspace`: margin 0.005)
CURVES = {
    "muon": [(9.0, 5.10, 4.98), (9.0, 5.08, 4.99)],  # step 20 mean 5.09 fails; step 40 mean 4.985 passes
    "adamw": [(9.0, 4.99, 4.97), (9.0, 4.99, 4.96)],  # step 20 mean 4.99: (5 - 4.99) * sqrt(2) = 0.014 passes
    "lion": [(9.0, 5.30, 5.06), (9.0, 5.20, 5.04)],  # never passes: final mean 5.05
}

CLAIMED = {"muon": 40, "adamw": 20, "lion": None}


def write_finals(study):
    for name, curves in CURVES.items():
        runs = [RunRecord(seed=seed, final_val_loss=c[-1], curve=[CurvePoint(step=s, val_loss=v)
                for s, v in zip((0, 20, 40), c)]) for seed, c in zip((1, 2), curves)]
        res = Results(agent_id="test", experiment="fixture", optimizer=name, steps_to_target=CLAIMED[name],
                      final_val_loss=runs[-1].final_val_loss, target=5.0, track="nano", train_steps=40,
                      seeds=[1, 2], runs=runs)
        folder = study.final_dir(study.entry(name))
        folder.mkdir(parents=True)
        (folder / "results.json").write_text(res.model_dump_json(indent=1))


def test_report_from_committed_storage_and_final_runs(tmp_path):
    from optbench.study.report import collect, write_report
    from optbench.study.run import create_sweeps
    from optbench.tracks import get_track

    study = load_study(write_study(tmp_path, name="fixture", steps=[50, 100], report="report.md",
                                   figure="report.png"))
    create_sweeps(study)
    create_sweeps(study)  # idempotent: the centre is enqueued once
    from optbench.sweep import open_sweep

    queued = open_sweep("fixture-muon", study.storage_url()).study.trials
    assert [t.system_attrs["fixed_params"] for t in queued] == [{"lr": 0.05, "weight_decay": 0.05, "train_steps": 100}]
    md, fig = write_report(study)  # no final runs yet
    assert "pending" in md.read_text() and "Not computed yet: 0 of 3" in md.read_text()

    write_finals(study)
    rows = {r.entry.name: r for r in collect(study)}
    assert (rows["muon"].proxy_steps, rows["muon"].extrapolated) == (40.0, False)
    assert (rows["adamw"].proxy_steps, rows["adamw"].extrapolated) == (20.0, False)
    required = 5.0 - 0.005 / math.sqrt(2)
    lion = 40 + (5.05 - required) / get_track("nano").exchange_rate
    assert rows["lion"].extrapolated and rows["lion"].proxy_steps == pytest.approx(lion, rel=1e-12)
    assert rows["muon"].per_seed == [40, 40] and rows["adamw"].per_seed == [20, 20]
    assert rows["lion"].per_seed == [None, None]

    md, fig = write_report(study)
    text = md.read_text()
    # proxy [40, 20, 51] against full [3250, 4950, 12250]: one discordant pair of 3
    assert "| Kendall tau-b | 0.33 [" in text and "| Spearman rho | 0.50 [" in text
    assert "Muon/AdamW step ratio: **2.00** on the proxy against **0.66** on the full benchmark (3,250/4,950)" in text
    assert f"| {lion:,.0f} (extrapolated) |" in text
    assert "| 20 | 20 ± 0 (2) | 4.9650 ± 0.0071 | 4,950 | PR #353 |" in text
    assert "![proxy steps against full-benchmark steps](report.png)" in text
    assert fig.is_file() and fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
