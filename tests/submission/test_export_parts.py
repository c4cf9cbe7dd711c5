"""Recipes made of parts export to one self-contained script: only the parts a recipe uses are inlined, the
script passes `optbench check`, and at nano size it trains exactly as `optbench run` (the record's whole stack:
init parts, SOAP-Muon chain with per-name gates, aux chain with per-bias overrides, PowerCool and momentum
schedules, the EMA-Nesterov look-ahead and the tail-EMA readout)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from optbench.optim.recipe import load_recipe
from optbench.submission.export import export_recipe, export_script

from .conftest import optbench_run, sub_env
from .test_export import _run_val_losses, _script_val_losses


def test_only_the_parts_a_recipe_uses_are_inlined():
    text = export_script(load_recipe("track3-5-muonh"), "nano")
    opt = text[text.index("Optimizer"):text.index("Setup")]
    for cls in ("class Chain(", "class Momentum(", "class Orthogonalize(", "class AspectScale(", "class Hyperball(",
                "class Part:", "def newton_schulz("):
        assert cls in opt, cls
    for cls in ("class SoapPrecondition(", "class RowFloor(", "class EMANesterov(", "class TailEMA(",
                "class PowerCool", "class Adam(", "class PSGDKron("):
        assert cls not in text, cls
    assert "class SplitCooldown(" in opt and "class InitScale(" in opt  # its schedule and init parts
    init = text[text.index("Init & Optim Hyperparams"):text.index("Training and Validation")]
    assert "InitScale(draw=" in init and ".init_model(model)" in init and "WSD(cooldown_frac=1.0" in init


@pytest.mark.slow
def test_exported_record_passes_the_checker(tmp_path):
    """Static rules and the dynamic run (one forward-backward per step at nano size) on the exported record."""
    from optbench.submission.check import check

    script = tmp_path / "train_gpt_simple.py"
    export_recipe("track3-46-record", "small", script)
    report = check(script)
    assert report.ok, [str(v) for v in report.violations]
    assert any("dynamic" in n for n in report.notes), report.notes


# The bundled record recipe at nano size: its schedules' constants for 21 steps (PowerCool's c chosen so that
# each group's lr reaches 0 at step 21 from the same flat fraction), look-ahead, tail EMA and trust gate inside
# the run, CGI pairs from block 1 with the nano head size. The same `--set` list goes to `run` and `export`.
NANO_RECORD = ["parts.powercool.end=21", "parts.powercool.matrix_c=0.0017270274679081668",
               "parts.powercool.embed_c=0.02147980049924181", "parts.powercool.head_c=0.0002237479218671022",
               "parts.powercool.scalar_c=0.0007159933499747271", "parts.momentum_schedule.warmup=5",
               "parts.momentum_schedule.cooldown=5", "parts.momentum_schedule.horizon=21",
               "parts.ema_nesterov.start=3", "parts.ema_nesterov.stop=15", "parts.tail_ema.start=12",
               "parts.tail_ema.stop=21", "parts.tail_ema.tau=4.0", "parts.soap.floor_end=6", "parts.soap.fade_end=10",
               "parts.cgi_gains.pair_from=1", "parts.cgi_gains.head_dim=32"]


@pytest.mark.slow
def test_exported_record_stack_matches_optbench_run(nano_data, tmp_path):
    """`optbench export --recipe track3-46-record --track nano --set ...` trains as `optbench run` with the same
    `--set`: the same val loss (the tail-EMA readout's) at every eval."""
    sets = [a for s in NANO_RECORD for a in ("--set", s)]
    script = tmp_path / "train_gpt_simple.py"
    p = subprocess.run([sys.executable, "-m", "optbench", "export", "--recipe", "track3-46-record", "--track", "nano",
                        "--out", str(script), *sets], env=sub_env(), capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    want = _run_val_losses(optbench_run("track3-46-record", tmp_path / "run", steps=21, settings=NANO_RECORD))
    got, _ = _script_val_losses(script, nano_data, tmp_path, steps=21)
    assert sorted(got) == sorted(want) == [0, 20, 21]
    print("\n| step | optbench run | exported script | difference |\n|---:|---:|---:|---:|")
    for s in sorted(want):
        print(f"| {s} | {want[s]:.6f} | {got[s]:.6f} | {abs(got[s] - want[s]):.2g} |")
    diff = max(abs(got[s] - want[s]) for s in want)
    assert diff <= 1e-6, (got, want)
    assert want[21] < want[0] - 0.5  # it learns
