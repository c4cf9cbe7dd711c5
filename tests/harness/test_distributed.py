"""torchrun with 2 gloo ranks on CPU gives the same val losses as 1 rank (Muon sharded across ranks, DDP)."""

import os
import subprocess
import sys

import pytest

from optbench.results.schema import load_results

pytestmark = pytest.mark.slow  # torchrun with 2 ranks in subprocesses

ARGS = ["run", "--track", "nano", "--recipe", "nano-muon", "--set", "train_steps=30", "--quiet"]


def test_two_ranks_match_one_rank(tmp_path, nano_data):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    one = subprocess.run([sys.executable, "-m", "optbench", *ARGS, "--out", str(tmp_path / "one")],
                         capture_output=True, text=True, env=env)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "optbench", *ARGS, "--out", str(tmp_path / "two")],
                         capture_output=True, text=True, env=env, timeout=600)
    assert two.returncode == 0, two.stderr[-3000:]
    r1, r2 = load_results(tmp_path / "one" / "results.json"), load_results(tmp_path / "two" / "results.json")
    assert r2.provenance.world_size == 2 and r1.provenance.world_size == 1
    c1, c2 = r1.runs[0].curve, r2.runs[0].curve
    assert [p.step for p in c1] == [p.step for p in c2] == [0, 20, 30]
    rel = max(abs(a.val_loss - b.val_loss) / abs(a.val_loss) for a, b in zip(c1, c2))
    print(f"max relative val-loss difference 1 vs 2 ranks: {rel:.3e}")
    assert rel < 1e-5
    assert "with world_size 2" in (tmp_path / "two" / "train_log.txt").read_text()
