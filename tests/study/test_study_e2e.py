"""A whole (tiny) study on the nano track: sweeps in round robin, final seeds, report, recipes, and resuming."""

import json

import pytest

from optbench.errors import OptbenchError
from optbench.study.plan import load_study

from .studyfiles import write_study

LION = {"name": "mini-lion", "track": "nano", "optimizer": "lion",
        "hparams": {"lr": 0.0006, "weight_decay": 0.3, "betas": [0.9, 0.99]},
        "aux": {"embed_lr": 0.3, "head_lr": 0.008, "scalar_lr": 0.015}}


@pytest.mark.slow
def test_a_study_runs_in_chunks_resumes_and_reports(tmp_path):
    from optbench.study.finals import write_recipes
    from optbench.study.report import write_report
    from optbench.study.run import create_sweeps, final, states, status_table, work

    path = write_study(tmp_path, lion=LION, range_factor=2.0, steps=[50, 100], report="report.md",
                       figure="report.png")
    study = load_study(path)
    assert create_sweeps(study) == ["mini-muon", "mini-adamw", "mini-lion"]
    lines = []
    assert work(study, trials=3, log=lines.append) == ["mini-muon", "mini-adamw", "mini-lion"]  # round robin
    with pytest.raises(OptbenchError, match="has 1 of its 2 trials"):
        final(study, "muon", log=lines.append)

    study = load_study(path)  # a later sitting: same file, same storage
    assert create_sweeps(study) == ["mini-muon", "mini-adamw", "mini-lion"]  # idempotent
    work(study, trials=5, log=lines.append)  # 3 left, then it says so
    assert any("every sweep has its 2 trials" in x for x in lines)
    assert [s.finished for s in states(study)] == [2, 2, 2]

    md, fig = write_report(study)  # before any final run: pending rows, no coefficients
    assert "pending" in md.read_text() and "Not computed yet" in md.read_text()

    while final(study, log=lines.append) is not None:
        pass
    assert [s.seeds_done for s in states(study)] == [[1, 2]] * 3
    res = json.loads((study.final_dir(study.entry("lion")) / "results.json").read_text())
    assert [r["seed"] for r in res["runs"]] == [1, 2] and res["tuning_budget"]["trials"] == 2

    md, fig = write_report(study)
    text = md.read_text()
    assert fig.is_file() and fig.stat().st_size > 1000
    assert "Kendall tau-b" in text and "Spearman rho" in text and "pending" not in text
    assert "Muon/AdamW step ratio" in text and "against **0.66**" in text
    assert "final seeds 2/2" in status_table(study)

    written = write_recipes(study, tmp_path / "recipes")
    assert sorted(p.name for p in written) == ["nano-adamw.toml", "nano-lion.toml", "nano-muon.toml"]
    from optbench.optim.recipe import load_recipe

    r = load_recipe(str(tmp_path / "recipes" / "nano-lion.toml"))
    assert r.tuning_budget.trials == 2 and "proxy study `mini`" in r.source
