"""`optbench run` end to end on the nano track: files, formats, bad flags (exit 2), divergence (exit 3)."""

import json
import math
import subprocess
import sys

import pytest
import torch

from optbench import optim
from optbench.cli import main
from optbench.results.logparse import parse_log
from optbench.results.schema import load_results

RUN = [sys.executable, "-m", "optbench", "run"]


def _run(args, **kw):
    return subprocess.run(RUN + args, capture_output=True, text=True, **kw)


@pytest.mark.slow
def test_nano_run_writes_log_metrics_and_results(tmp_path, nano_data):
    out = tmp_path / "r"
    r = _run(["--track", "nano", "--recipe", "nano-muon", "--set", "train_steps=30", "--out", str(out), "--quiet"])
    assert r.returncode == 0, r.stderr
    res = load_results(out / "results.json")
    assert res.track == "nano" and res.optimizer == "muon" and res.train_steps == 30 and res.num_runs == 1
    curve = res.runs[0].curve
    assert [p.step for p in curve] == [0, 20, 30]
    assert curve[0].val_loss == pytest.approx(math.log(2048), abs=1e-4)  # zero-init head: uniform logits
    assert curve[-1].val_loss < curve[0].val_loss - 1.0
    assert res.provenance.torch_version == torch.__version__ and res.provenance.world_size == 1
    raw = json.loads((out / "results.json").read_text())
    from optbench.workspace.identity import resolve_agent_id

    assert "steps_to_5_0" in raw and raw["agent_id"] == resolve_agent_id(None)  # the workspace commands' own id
    log = (out / "train_log.txt").read_text()
    assert "=" * 100 + "\nRunning PyTorch" in log and "class Muon" in log and 'name = "nano-muon"' in log
    assert f"step:30/30 val_loss:{curve[-1].val_loss:.5f} train_time:" in log
    parsed = parse_log(out / "train_log.txt")
    assert [p.step for p in parsed.run_records(6.5)[0].curve] == [0, 20, 30] and parsed.world_size == 1
    events = [json.loads(line)["event"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert events.count("eval") == 3 and "train" in events


@pytest.mark.parametrize("args,message", [
    (["--track", "huge", "--optimizer", "adamw"], "unknown track 'huge'"),
    (["--track", "nano", "--optimizer", "nope"], "unknown optimizer 'nope'"),
    (["--track", "nano"], "give --optimizer NAME or --recipe"),
    (["--track", "nano", "--recipe", "no-such-recipe"], "no recipe named 'no-such-recipe'"),
    (["--track", "nano", "--optimizer", "adamw", "--override", "target=3"], "needs --unofficial"),
    (["--track", "nano", "--optimizer", "adamw", "--data", "/tmp"], "pass --unofficial"),
    (["--track", "small", "--optimizer", "adamw"], "trains on FineWeb"),
    (["--track", "nano", "--recipe", "nano-muon", "--set", "lr"], "is not KEY=VALUE"),
    (["--track", "nano", "--recipe", "nano-muon", "--set", "lr=-1"],
     "hparams.lr = -1 is not allowed for muon; allowed: a finite number in (0, inf)"),
    (["--track", "nano", "--optimizer", "adamw", "--set", "lr=abc"], "hparams.lr = 'abc' is not allowed for adamw"),
    (["--track", "nano", "--optimizer", "adamw", "--set", "=5"], "'=5' has no KEY before '='"),
    (["--track", "nano", "--optimizer", "adamw", "--set", "train_steps=0"], "train_steps: Input should be greater"),
    (["--track", "nano", "--optimizer", "adamw", "--set", "betas=[0.9, 1.5]"], "allowed: 2 numbers, each"),
    (["--track", "nano", "--optimizer", "adamw", "--keep-checkpoints", "0"], "Invalid value"),
    (["--track", "nano", "--recipe", "nano-muon", "--optimizer", "adamw"], "disagrees with recipe"),
    (["--track", "nano", "--optimizer", "adamw", "--runs", "0"], "Invalid value"),
    (["--resume", "/tmp/definitely-not-a-run"], "has no run.json"),
])
def test_bad_flags_exit_2_with_a_clear_message(args, message, tmp_path, capsys):
    # in-process through optbench.cli.main (the same OptbenchError -> one line, exit 2 mapping as the console
    # script); the real entry point is run once below
    with pytest.raises(SystemExit) as e:
        main(["run", *args, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert e.value.code == 2, err
    assert message in err
    assert "Traceback" not in err


@pytest.mark.slow
def test_bad_flag_through_the_real_entry_point(tmp_path):
    r = _run(["--track", "huge", "--optimizer", "adamw", "--out", str(tmp_path / "o")])
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "unknown track 'huge'" in r.stderr
    assert "Traceback" not in r.stderr


class _NaNAfter(torch.optim.Optimizer):
    """Test optimizer: plain SGD that writes NaN into the parameters at step `at`."""

    def __init__(self, params, lr=0.01, at=3):
        super().__init__(params, dict(lr=lr, at=at))
        self.t = 0

    @torch.no_grad()
    def step(self, closure=None):
        self.t += 1
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-g["lr"] * 1e-6)
                    if self.t == g["at"]:
                        p.fill_(float("nan"))


class _RaisesFPE(_NaNAfter):
    """Test optimizer that detects non-finite state itself and raises FloatingPointError (as Shampoo does)."""

    @torch.no_grad()
    def step(self, closure=None):
        self.t += 1
        if self.t == self.param_groups[0]["at"]:
            raise FloatingPointError("nan in an inverse root")


@pytest.mark.slow
def test_optimizer_floating_point_error_is_a_divergence(tmp_path, nano_data, capsys, scratch_registry):
    optim.register("test-fpe", _RaisesFPE, family="test", reference="test only")
    out = tmp_path / "f"
    with pytest.raises(SystemExit) as e:
        main(["run", "--track", "nano", "--optimizer", "test-fpe", "--set", "train_steps=30", "--out", str(out),
              "--quiet"])
    assert e.value.code == 3
    res = load_results(out / "results.json")
    assert res.runs[0].diverged
    div = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if '"diverged"' in x]
    assert div[0]["step"] == 2 and "_RaisesFPE state (nan in an inverse root)" in div[0]["message"]


@pytest.mark.slow
def test_divergence_stops_at_once_marks_results_and_exits_nonzero(tmp_path, nano_data, capsys, scratch_registry):
    optim.register("test-nan", _NaNAfter, family="test", reference="test only")
    out = tmp_path / "d"
    with pytest.raises(SystemExit) as e:
        main(["run", "--track", "nano", "--optimizer", "test-nan", "--set", "train_steps=30", "--out", str(out),
              "--quiet"])
    assert e.value.code == 3
    assert "diverged" in capsys.readouterr().err
    res = load_results(out / "results.json")
    assert res.runs[0].diverged and not res.reached_target
    events = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    div = [e for e in events if e["event"] == "diverged"]
    assert div and div[0]["step"] == 3  # the 4th step's loss is the first computed from NaN weights
    assert not any(e["event"] == "train" and e["step"] > 3 for e in events)
