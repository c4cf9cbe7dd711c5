"""bench/optim_step.py's bookkeeping (windows, ratios, shape sets), its --before import, and one real run."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import optim_step  # noqa: E402
from optim_peers import Impl, window  # noqa: E402
from tree_import import import_tree  # noqa: E402


def test_shape_sets_come_from_the_tracks():
    cpu = optim_step.shape_set("cpu")
    assert len(cpu) == 24 and cpu.count((128, 128)) == 16 and cpu.count((512, 128)) == cpu.count((128, 512)) == 4
    assert optim_step.shape_set("mid") == [(768, 768)] * 6 + [(3072, 768)] * 6
    assert len(optim_step.shape_set("small")) == 72


def test_amortised_time_covers_whole_preconditioner_cycles():
    t = optim_step.Timing("x", "zoo", False, steps=[1.0, 3.0] * 3)  # a refresh every other step
    assert t.median() == 2.0 and t.amortised(2) == 2.0 and t.amortised(1) == 2.0
    t = optim_step.Timing("x", "zoo", False, steps=([1.0] * 9 + [11.0]) * 3)
    assert t.median() == 1.0 and t.amortised(10) == 2.0
    t.steps[3] = 50.0  # a stray slow step (another process) does not count
    assert t.amortised(10) == 2.0 and optim_step.Timing("y", "zoo", False, steps=[1.0]).amortised(10) != 1.0
    t.steps[9] = 5.0  # --stat min: each position's least disturbed step (the refresh at 11, 5, 11 counts as 5)
    assert t.amortised(10, min) == 1.4 and t.amortised(10) == 2.0
    impls = [Impl("a", None, cadence=10), Impl("b", None, cadence=4), Impl("c", None)]
    assert window(impls) == 20


def test_ratio_is_against_the_fastest_and_smallest_peer():
    T = optim_step.Timing
    timings = [T("optbench", "zoo", False, steps=[2.0, 2.0], state=300),
               T("optbench (before)", "before", False, steps=[8.0, 8.0], state=600),
               T("peer a", "peer", False, steps=[4.0, 4.0], state=200),
               T("peer b", "peer", False, steps=[1.0, 1.0], state=400),
               T("peer c", "peer", False, error="RuntimeError: no")]
    assert optim_step.ratio_to_fastest_peer(timings, 1) == (2.0, 1.5)
    assert optim_step.ratio_to_fastest_peer(timings, 1, "before") == (8.0, 3.0)
    assert optim_step.ratio_to_fastest_peer(timings[:2], 1) == (None, None)  # no peer: no verdict


def test_state_bytes_counts_shared_storage_once_and_looks_into_objects():
    a = torch.zeros(10)
    assert optim_step.state_bytes({"p": {"m": a, "view": a[2:], "l": [torch.zeros(3, dtype=torch.float64)]}}) == 64

    class Holder:  # statistics kept in an object's attributes; a cycle back to itself
        def __init__(self):
            self.stats, self.me, self.name = torch.zeros(4, dtype=torch.float16), self, "x"

    assert optim_step.state_bytes({"p": {"pre": Holder(), "m": a}}) == 48


def test_before_tree_is_a_separate_copy_with_its_own_registry(tmp_path):
    shutil.copytree(REPO / "optbench", tmp_path / "optbench", ignore=shutil.ignore_patterns("__pycache__"))
    old = import_tree(tmp_path, "optim", alias="optbench_test_copy")
    import optbench.optim as zoo

    assert old.__name__ == "optbench_test_copy.optim"
    assert old.get("muon") is not zoo.get("muon") and old.get("muon").__module__ == "optbench_test_copy.optim.muon"
    assert old.names() == zoo.names()
    with pytest.raises(FileNotFoundError, match="optbench/__init__.py"):
        import_tree(tmp_path / "nowhere", "optim", alias="optbench_test_missing")


@pytest.mark.slow
def test_bench_runs_a_row_and_writes_the_tables(tmp_path):
    out = tmp_path / "bench.md"
    p = subprocess.run([sys.executable, str(REPO / "bench" / "optim_step.py"), "--optimizers", "lion", "--shapes", "cpu",
                        "--steps", "2", "--warmup", "1", "--out", str(out)],
                       capture_output=True, text=True, timeout=600, cwd=REPO)
    assert p.returncode == 0, p.stderr[-2000:]
    text = out.read_text()
    assert text.startswith("# Optimizer step benchmark\n\nCommand: `python bench/optim_step.py --optimizers lion")
    assert "## Summary" in text and "| Lion |" in text and "| optbench |" in text
    if optim_step.contests.__globals__["PO"] is not None:
        assert "pytorch_optimizer Lion" in text


def test_skip_leaves_a_peer_out_and_rejects_unknown_labels(tmp_path):
    def bench(*args):
        return subprocess.run([sys.executable, str(REPO / "bench" / "optim_step.py"), "--optimizers", "lion",
                               "--shapes", "cpu", "--steps", "2", "--warmup", "1", *args],
                              capture_output=True, text=True, timeout=600, cwd=REPO)

    bad = bench("--skip", "no such peer")
    assert bad.returncode == 2 and "--skip: no implementation labelled no such peer" in bad.stderr
    if optim_step.contests.__globals__["PO"] is None:
        pytest.skip("pytorch_optimizer (the bench extra) is not installed: no peer to leave out")
    out = tmp_path / "bench.md"
    p = bench("--skip", "pytorch_optimizer Lion", "--out", str(out))
    assert p.returncode == 0, p.stderr[-2000:]
    text = out.read_text()
    assert "left out: pytorch_optimizer Lion" in text and "|  | pytorch_optimizer Lion |" not in text


@pytest.mark.slow
def test_sigterm_stops_the_race_and_prints_the_rows_measured(tmp_path):
    """`kill` (SIGTERM, also what `timeout` sends) stops a long run like Ctrl-C: the rows measured so far are printed
    and written, marked as interrupted (a background job ignores SIGINT, so Ctrl-C's path alone is not enough)."""
    import signal

    out = tmp_path / "bench.md"
    proc = subprocess.Popen([sys.executable, str(REPO / "bench" / "optim_step.py"), "--optimizers", "lion",
                             "--shapes", "cpu,small", "--steps", "400", "--warmup", "1", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    for line in proc.stdout:
        if line.startswith("== shapes small"):
            proc.send_signal(signal.SIGTERM)
            break
    rest, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    text = out.read_text()
    assert "**Interrupted**" in text and "## Shapes: cpu" in text and "## Shapes: small" not in text
