"""Faults of a real (tiny) nano run, in process: configuration errors leave no folder, bad shards are refused before
training, finished runs are not resumed, a resume without a checkpoint says so, resumes keep metrics, wall time and
step_avg right, the diverged step is logged, checkpoints are kept as asked."""

import json
import re
import shutil

import numpy as np
import pytest

from optbench import optim
from optbench.cli import main
from optbench.data.shards import load_shard, write_shard
from optbench.results.schema import load_results

from .test_run import _NaNAfter  # SGD that writes NaN into the weights at its 3rd step

pytestmark = pytest.mark.slow  # training runs (a few steps each)

NANO = ["run", "--track", "nano", "--optimizer", "adamw", "--quiet"]


def _main(args, capsys):
    """(exit code, stderr) of `optbench ARGS` in process."""
    code = 0
    try:
        main(args)
    except SystemExit as e:
        code = e.code or 0
    return code, capsys.readouterr().err


def _events(out):
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


def test_a_configuration_error_at_optimizer_construction_leaves_no_folder(tmp_path, capsys):
    out = tmp_path / "r"
    # ns_coefficients is a string the recipe check lets through; Muon's constructor refuses it
    code, err = _main(["run", "--track", "nano", "--recipe", "nano-muon", "--set", "ns_coefficients=bogus",
                       "--set", "train_steps=4", "--quiet", "--out", str(out)], capsys)
    assert code == 2 and "recipe hparams for muon" in err and "Traceback" not in err
    assert not out.exists()  # nothing half-written: the next run may use the same --out
    code, err = _main(["run", "--track", "nano", "--recipe", "nano-muon", "--set", "train_steps=2", "--quiet",
                       "--out", str(out)], capsys)
    assert code == 0, err


def test_out_of_vocabulary_shard_is_refused_before_training(tmp_path, nano_data, capsys):
    data = tmp_path / "data"
    shutil.copytree(nano_data, data)
    train = sorted(data.glob("fineweb_train_*.bin"))[0]
    toks = load_shard(train).numpy().astype(np.int64)
    toks[len(toks) // 2] = 5000  # the nano track has 2,048 ids
    write_shard(train, toks)
    out = tmp_path / "r"
    code, err = _main([*NANO, "--unofficial", "--data", str(data), "--set", "train_steps=2", "--out", str(out)],
                      capsys)
    assert code == 2 and "holds token id 5000, outside the model's 2048-id vocabulary" in err
    assert "Traceback" not in err and not out.exists()


def test_diverged_step_is_logged_and_the_finished_run_is_not_resumed(tmp_path, capsys, scratch_registry):
    optim.register("test-nan3", _NaNAfter, family="test", reference="test only")
    out = tmp_path / "d"
    code, err = _main(["run", "--track", "nano", "--optimizer", "test-nan3", "--set", "train_steps=8",
                       "--checkpoint-every", "2", "--quiet", "--out", str(out)], capsys)
    assert code == 3 and "the run diverged at step 3 (seed 0)" in err
    assert "diverged at step 3/8: train loss (nan) is not finite" in (out / "train_log.txt").read_text()
    before = (out / "results.json").read_bytes()
    assert not (out / "checkpoints").exists()  # the run is over: no checkpoint kept by default
    code, err = _main(["run", "--resume", str(out), "--quiet"], capsys)
    assert code == 2 and "already diverged" in err
    assert (out / "results.json").read_bytes() == before  # not rewritten (wallclock_s stays)


def test_resume_without_checkpoint_restarts_openly_and_keeps_events_once(tmp_path, capsys):
    out = tmp_path / "r"
    code, err = _main([*NANO, "--set", "train_steps=4", "--out", str(out)], capsys)
    assert code == 0, err
    (out / "results.json").unlink()  # as if killed before the end, with no checkpoint
    shutil.rmtree(out / "trials")
    code, err = _main(["run", "--resume", str(out), "--quiet"], capsys)
    assert code == 0, err
    assert "seed 0 has no checkpoint" in err and "restarts from step 0" in err
    evals = [(e["seed"], e["step"]) for e in _events(out) if e["event"] == "eval"]
    assert evals == [(0, 0), (0, 4)]  # the step-0 eval once
    resume = [e for e in _events(out) if e["event"] == "resume"]
    assert resume == [dict(event="resume", seed=0, step=0, from_checkpoint=False)]


def test_resume_keeps_wall_time_step_avg_and_checkpoints_as_asked(tmp_path, capsys):
    out = tmp_path / "r"
    # nano evaluates every 20 steps: a checkpoint every 10 puts one on the eval step 20
    code, err = _main([*NANO, "--set", "train_steps=25", "--checkpoint-every", "10", "--keep-checkpoints", "2",
                       "--out", str(out)], capsys)
    assert code == 0, err
    log = (out / "train_log.txt").read_text()
    avg = float(re.search(r"step:20/25 .*step_avg:([\d.]+)ms", log).group(1))
    assert avg > 0.5  # was 0.00ms: the checkpoint at step 20 had just restarted the clock
    kept = sorted(d.name for d in (out / "checkpoints" / "seed0").iterdir())
    assert kept == ["step_000010", "step_000020"]  # asked for 2: kept after the end too
    first = load_results(out / "results.json")
    # resume from step 20 as if killed there: the wall time counts the first part too
    (out / "results.json").unlink()
    shutil.rmtree(out / "trials")
    wall_before = json.loads((out / "wallclock.json").read_text())["wallclock_s"]
    code, err = _main(["run", "--resume", str(out), "--quiet"], capsys)
    assert code == 0, err
    again = load_results(out / "results.json")
    assert again.wallclock_s > wall_before > 0
    assert again.runs[0].final_val_loss == first.runs[0].final_val_loss
    evals = [e["step"] for e in _events(out) if e["event"] == "eval"]
    assert evals == [0, 20, 25]


def test_default_keeps_the_latest_checkpoint_while_running_and_none_after(tmp_path, capsys):
    out = tmp_path / "r"
    code, err = _main([*NANO, "--set", "train_steps=6", "--checkpoint-every", "2", "--out", str(out)], capsys)
    assert code == 0, err
    assert not (out / "checkpoints").exists()  # (the latest-only while running: test_interrupt.py)
    assert load_results(out / "results.json").runs[0].curve[-1].step == 6


def test_readme_artifact_flow_works_with_the_default_agent_id(tmp_path, capsys, monkeypatch):
    """README: run, then `workspace init` and `artifacts push` with no id set: the run and the push are the same
    agent (the login name), so the push is accepted (it failed with agent 'local')."""
    monkeypatch.delenv("OPTBENCH_AGENT_ID", raising=False)
    monkeypatch.delenv("AGENT_ID", raising=False)
    monkeypatch.setattr("getpass.getuser", lambda: "ada")
    ws = tmp_path / "ws"
    monkeypatch.setenv("OPTBENCH_WORKSPACE", str(ws))
    out = tmp_path / "runs" / "adamw"
    code, err = _main([*NANO, "--set", "train_steps=2", "--out", str(out)], capsys)
    assert code == 0, err
    assert json.loads((out / "results.json").read_text())["agent_id"] == "ada"
    assert _main(["workspace", "init", str(ws)], capsys)[0] == 0
    code, err = _main(["artifacts", "push", str(out), "--name", "adamw-smoke"], capsys)
    assert code == 0, err
    assert (ws / "artifacts" / "adamw-smoke_ada" / "results.json").is_file()


def test_a_run_says_what_it_does_before_the_slow_parts(tmp_path, capsys, monkeypatch):
    """The first line comes before the data checks; a first-use corpus build and the model build say so too
    (the main job printed nothing for its first ~40 s)."""
    monkeypatch.setenv("OPTBENCH_CACHE", str(tmp_path / "cache"))  # the corpus is built on first use
    code = 0
    try:
        main(["run", "--track", "nano", "--optimizer", "adamw", "--set", "train_steps=1", "--out",
              str(tmp_path / "r")])
    except SystemExit as e:
        code = e.code
    cap = capsys.readouterr()
    assert code in (0, None), cap.err
    lines = [ln for ln in cap.err.splitlines() if ln.startswith("optbench")]
    assert lines[0].startswith("optbench run: track nano: checking data and configuration")
    assert lines[1].startswith("optbench: tokenizing the bundled corpus books19c-mini for a 2048-id vocabulary")
    first_out = cap.out.splitlines()[0]
    assert "model and optimizers built; training steps 0..1 (evaluating at step 0 first)" in first_out
