"""Report (markdown, plots, importances, budget), export to a recipe with tuning_budget, runs of that recipe,
the leaderboard's budget column, status, and the shortcut's two stages."""

from __future__ import annotations

import json

import matplotlib.image as mpimg
import pytest

from optbench.errors import OptbenchError
from optbench.optim.recipe import load_recipe
from optbench.results.leaderboard import build_leaderboard
from optbench.results.schema import load_results
from optbench.sweep import export_recipe, open_sweep, run_shortcut, run_worker, write_report
from tests.sweep.conftest import cli, tiny_sweep

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def done_sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rep")
    url = f"sqlite:///{tmp / 'sweeps.db'}"
    tiny_sweep("rep", url, tmp, max_trials=5)
    run_worker("rep", url, threads=1, log=lambda line: None)
    return url, tmp


def test_report_has_every_part(done_sweep, tmp_path):
    url, _ = done_sweep
    readme = write_report("rep", tmp_path / "report", url)
    text = readme.read_text()
    for part in ("# Sweep rep", "## Budget", "## Best configurations", "## Plots", "## Parameter importances",
                 "## Every trial", "tuning_budget", '"trials": 5'):
        assert part in text, part
    study = open_sweep("rep", url).study
    best = min(study.trials, key=lambda t: t.value)
    best_row = next(line for line in text.splitlines() if line.startswith("| 1 | "))
    assert f"| 1 | {best.number} | {best.value:.4g} |" in best_row
    trial_rows = [line for line in text.split("## Every trial")[1].splitlines() if line.startswith("| sweep |")]
    assert len(trial_rows) == 5
    for png in ("score_vs_params.png", "lr_wd.png", "history.png", "importances.png"):
        img = mpimg.imread(str(tmp_path / "report" / png))
        assert img.shape[0] > 200 and img.std() > 0.02, png  # a real picture, not blank
        assert f"]({png})" in text


def test_export_recipe_carries_the_budget_into_results(done_sweep, tmp_path):
    url, tmp = done_sweep
    out = export_recipe("rep", tmp_path / "nano-tuned.toml", url)
    r = load_recipe(str(out))
    best = min(open_sweep("rep", url).study.trials, key=lambda t: t.value)
    assert r.name == "nano-tuned" and r.hparams["lr"] == pytest.approx(best.params["lr"]) and r.train_steps == 20
    assert r.tuning_budget.sweep == "rep" and r.tuning_budget.trials == 5 and r.tuning_budget.sampler == "tpe"
    assert r.tuning_budget.space == {"lr": {"log": [1e-3, 3e-2]}, "weight_decay": {"log": [1e-3, 0.3]}}
    assert r.tuning_budget.device_hours > 0 and "optbench sweep rep" in r.source
    # a run of the exported recipe carries tuning_budget in its results.json, and the leaderboard shows it
    res = cli("run", "--track", "nano", "--recipe", str(out), "--set", "train_steps=10", "--out", str(tmp_path / "run"),
              "--quiet")
    assert res.returncode == 0, res.stderr
    rec = load_results(tmp_path / "run" / "results.json")
    assert rec.tuning_budget == r.tuning_budget
    assert json.loads((tmp_path / "run" / "results.json").read_text())["tuning_budget"]["trials"] == 5
    board = build_leaderboard(tmp_path / "run", target=5.0)
    assert "| Budget |" in board.replace("Budget |", "Budget |") and "5 trials" in board


def test_status_and_bad_inputs_on_the_command_line(done_sweep, tmp_path):
    url, _ = done_sweep
    r = cli("sweep", "status", "rep", "--storage", url)
    assert r.returncode == 0 and "rep: 5 of 5 trials done (5 complete, 0 pruned, 0 failed)" in r.stdout
    assert "budget spent" in r.stdout and "best: " in r.stdout
    r = cli("sweep", "budget", "rep", "--storage", url, "--max-trials", "5")  # the same budget: nothing changes
    assert r.returncode == 0 and "sweep rep: budget 5 trials -> 5 trials;" in r.stdout, r.stderr
    (tmp_path / "space.toml").write_text("lr = { log = [1e-3, 1e-1] }\n")
    (tmp_path / "bad.toml").write_text("weight_decay = { uniform = [0.3] }\n")
    (tmp_path / "unknown.toml").write_text("learning_rate = { log = [1e-3, 1e-1] }\n")
    base = ["sweep", "create", "x", "--track", "nano", "--optimizer", "adamw", "--storage", url, "--space"]
    cases = [
        (base + [str(tmp_path / "bad.toml")], "key 'weight_decay': uniform needs [low, high]"),
        (base + [str(tmp_path / "unknown.toml")], "unknown hyperparameter 'learning_rate' for adamw"),
        (["sweep", "create", "rep", "--track", "nano", "--optimizer", "adamw", "--storage", url, "--space",
          str(tmp_path / "space.toml")], "sweep 'rep' already exists"),
        (base[:-1] + ["--space", str(tmp_path / "space.toml"), "--storage", "postgresql://u:pw@127.0.0.1:9/db"],
         "cannot open the sweep database"),
        (["sweep", "status", "nope", "--storage", url], "no sweep 'nope'"),
        (base + [str(tmp_path / "space.toml"), "--sampler", "bayes"], "--sampler: 'bayes' is not one of"),
        (["sweep", "budget", "rep", "--storage", url], "give --max-trials and/or --max-device-hours"),
        (["sweep", "budget", "nope", "--storage", url, "--max-trials", "9"], "no sweep 'nope'"),
        (["sweep", "budget", "rep", "--storage", url, "--max-device-hours", "-1"], "a budget must be positive"),
    ]
    for args, message in cases:
        r = cli(*args)
        assert r.returncode == 2, (args, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0] and "Traceback" not in r.stderr, r.stderr
    assert "valid names: amsgrad, betas, eps, lr, weight_decay, train_steps" in cli(*cases[1][0]).stderr
    assert "pw" not in cli(*cases[3][0]).stderr  # the password is never printed


def test_shortcut_runs_both_stages_and_reports_them(tmp_path):
    url = f"sqlite:///{tmp_path / 'sc.db'}"
    from optbench.optim.recipe import RECIPE_DIR

    recipe = tmp_path / "nano-short.toml"  # nano-adamw at 40 steps: stage 1 runs 20
    recipe.write_text((RECIPE_DIR / "nano-adamw.toml").read_text().replace('name = "nano-adamw"', 'name = "nano-short"\ntrain_steps = 40'))
    space = tmp_path / "space.toml"
    space.write_text("lr = { log = [1e-3, 3e-2] }\nweight_decay = { log = [1e-3, 0.3] }\nwarmup_steps = { categorical = [0, 5] }\n")
    s1, s2 = run_shortcut("sc", track="nano", recipe=str(recipe), space=space, fraction=0.5, storage=url,
                          stage1_trials=3, stage2_trials=2, runs_dir=tmp_path / "sc", threads=1,
                          log=lambda line: None)
    assert s1.recipe.train_steps == 20 and s2.recipe.train_steps == 40  # half length, then the recipe's own
    assert list(s2.spec.space) == ["lr", "weight_decay"] and len(s1.study.trials) == 3 and len(s2.study.trials) == 2
    b1 = min(s1.study.trials, key=lambda t: t.value).params
    assert s2.spec.space["lr"] == {"log": [pytest.approx(b1["lr"] / 3), pytest.approx(b1["lr"] * 3)]}
    assert s2.recipe.warmup_steps == b1["warmup_steps"]  # the other knobs are fixed at the stage-1 best
    text = write_report("sc", tmp_path / "rep", url).read_text()
    assert "### stage 1" in text and "### stage 2" in text and "| stage 1 |" in text and "| stage 2 |" in text
    r = load_recipe(str(export_recipe("sc", tmp_path / "sc.toml", url)))
    assert r.tuning_budget.sweep == "sc" and r.tuning_budget.trials == 5 and len(r.tuning_budget.stages) == 2
    with pytest.raises(OptbenchError, match="--fraction 1.5"):
        run_shortcut("sc2", track="nano", recipe="nano-adamw", space=space, fraction=1.5, storage=url)


def test_resume_reads_an_older_sweeps_recipe_with_todays_defaults_and_refuses_a_real_change(tmp_path):
    from optbench.sweep import create_sweep
    from optbench.sweep.study import SPEC_ATTR

    url = f"sqlite:///{tmp_path / 'old.db'}"
    s = tiny_sweep("old", url, tmp_path, max_trials=1)
    stored = s.spec.model_dump(mode="json")
    for key in ("parts", "lr_floor"):  # recipe fields a later optbench added (with defaults)
        stored["recipe"].pop(key)
    s.study.set_user_attr(SPEC_ATTR, stored)
    assert "parts" not in open_sweep("old", url).spec.recipe
    assert tiny_sweep("old", url, tmp_path, resume=True).name == "old"  # the same sweep, opened
    space = tmp_path / "old-space.toml"
    with pytest.raises(OptbenchError, match="sweep 'old' exists with a different recipe"):
        create_sweep("old", track="nano", space=space, recipe="nano-adamw", storage=url,
                     settings=["train_steps=30"], runs_dir=tmp_path / "old", resume=True)
