"""Ctrl-C / SIGTERM stop a real `optbench run` at a step boundary (final checkpoint, results.json marked interrupted,
exit 130 / 143), and kill -9 while checkpoints are being written never leaves one that loads but is wrong."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from optbench.results.schema import load_results
from optbench.train import checkpoint as ckpt

pytestmark = pytest.mark.slow  # optbench run in subprocesses, signalled mid-run

ARGS = ["run", "--track", "nano", "--recipe", "nano-adamw", "--set", "train_steps=40", "--quiet"]
ENV = dict(os.environ, OMP_NUM_THREADS="1")


def _start(out, *extra):
    return subprocess.Popen([sys.executable, "-m", "optbench", *ARGS, *extra, "--out", str(out)], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(path, proc, timeout=300):
    deadline = time.time() + timeout
    while not path.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert path.exists(), f"{path} never appeared"


def _complete(out):
    return [d for d in sorted((out / "checkpoints" / "seed0").glob("step_*")) if (d / "COMPLETE").exists()]


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_at_a_step_boundary_with_a_final_checkpoint(tmp_path, nano_data, sig, code):
    out = tmp_path / "run"
    proc = _start(out, "--checkpoint-every", "5")
    _wait_for(out / "checkpoints" / "seed0" / "step_000005" / "COMPLETE", proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == code, err
    name = signal.Signals(sig).name
    assert f"interrupted by {name} at step" in err and "Traceback" not in err
    raw = json.loads((out / "results.json").read_text())
    assert raw["interrupted"] is True and raw["passes_rule"] is False and raw["reached_target"] is False
    assert raw["steps_to_5_0"] is None and not raw["runs"][0]["diverged"]  # nano: target 5.0
    stopped = raw["runs"][0]["interrupted_step"]
    assert 5 <= stopped < 40
    kept = _complete(out)
    assert [ckpt.checkpoint_step(d) for d in kept] == [stopped]  # the final checkpoint, and only the latest
    assert ckpt.load_checkpoint(kept[0], 0)["step"] == stopped
    assert f"interrupted by {name} at step {stopped}/40" in (out / "train_log.txt").read_text()
    # it resumes to the end, and an ordinary run's results follow
    res = subprocess.run([sys.executable, "-m", "optbench", "run", "--resume", str(out), "--quiet"],
                         capture_output=True, text=True, env=ENV)
    assert res.returncode == 0, res.stderr
    done = load_results(out / "results.json")
    assert [p.step for p in done.runs[0].curve] == [0, 20, 40] and not getattr(done, "interrupted", False)
    assert not (out / "checkpoints").exists()


def test_sigterm_without_checkpointing_marks_the_run_interrupted(tmp_path, nano_data):
    out = tmp_path / "run"
    proc = _start(out)
    _wait_for(out / "metrics.jsonl", proc)  # the step-0 eval is logged: training is under way
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 143, err
    raw = json.loads((out / "results.json").read_text())
    assert raw["interrupted"] is True and not (out / "checkpoints").exists()


def test_kill_9_while_checkpointing_never_leaves_a_wrong_checkpoint(tmp_path, nano_data):
    rng = random.Random(0)
    for attempt in range(3):
        out = tmp_path / f"k{attempt}"
        proc = _start(out, "--checkpoint-every", "1", "--keep-checkpoints", "100")
        _wait_for(out / "checkpoints" / "seed0" / "step_000002" / "COMPLETE", proc)
        time.sleep(rng.uniform(0.0, 0.4))  # most of a nano step is the checkpoint write
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        for d in _complete(out):  # every checkpoint marked complete loads, verified, as the state of its step
            assert ckpt.load_checkpoint(d, 0)["step"] == ckpt.checkpoint_step(d)
        for d in (out / "checkpoints" / "seed0").glob("step_*"):
            if not (d / "COMPLETE").exists():
                assert ckpt.latest_checkpoint(out, 0) != d  # never resumed from
    res = subprocess.run([sys.executable, "-m", "optbench", "run", "--resume", str(out), "--quiet"],
                         capture_output=True, text=True, env=ENV)
    assert res.returncode == 0, res.stderr
