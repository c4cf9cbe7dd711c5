"""SIGKILL a CPU run after a checkpoint, resume it, and get bitwise the same val losses as an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from optbench.results.schema import load_results

pytestmark = pytest.mark.slow  # optbench run in subprocesses, one killed mid-run

ARGS = ["run", "--track", "nano", "--recipe", "nano-adamw", "--set", "train_steps=60", "--quiet"]


def test_sigkill_then_resume_is_bitwise_identical(tmp_path, nano_data):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    ref = subprocess.run([sys.executable, "-m", "optbench", *ARGS, "--out", str(tmp_path / "ref")],
                         capture_output=True, text=True, env=env)
    assert ref.returncode == 0, ref.stderr
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "optbench", *ARGS, "--checkpoint-every", "10", "--out", str(out)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = out / "checkpoints" / "seed0" / "step_000010" / "COMPLETE"  # 50 steps still to go
    deadline = time.time() + 300
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "no checkpoint at step 10"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "results.json").exists()
    # the checkpoint loads with weights_only=True
    state = torch.load(marker.parent / "rank0.pt", weights_only=True)
    assert state["step"] == 10 and len(state["optimizers"]) == 2
    res = subprocess.run([sys.executable, "-m", "optbench", "run", "--resume", str(out), "--quiet"],
                         capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    a, b = load_results(tmp_path / "ref" / "results.json"), load_results(out / "results.json")
    assert [(p.step, p.val_loss) for p in a.runs[0].curve] == [(p.step, p.val_loss) for p in b.runs[0].curve]
    assert a.runs[0].final_val_loss == b.runs[0].final_val_loss  # bitwise, not approximately
    log = (out / "train_log.txt").read_text().splitlines()
    assert sum(line.startswith("step:") for line in log) == len(a.runs[0].curve)  # no duplicated eval lines
    events = [json.loads(x)["event"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert "resume" in events
