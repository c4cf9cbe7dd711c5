"""Recipes made of parts export to one self-contained script: only the parts a recipe uses are inlined, the
script passes `optbench check`, and at nano size it trains exactly as `optbench run` (the record's whole stack:
init parts, SOAP-Muon chain with per-name gates, aux chain with per-bias overrides, PowerCool and momentum
schedules, the EMA-Nesterov look-ahead and the tail-EMA readout)."""

from __future__ import annotations

import pytest

from optbench.optim.recipe import load_recipe
from optbench.submission.export import export_recipe, export_script

from .conftest import FIXTURES, optbench_run
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


@pytest.mark.slow
def test_exported_record_stack_matches_optbench_run(nano_data, tmp_path):
    recipe = str(FIXTURES / "nano-record.toml")
    script = tmp_path / "train_gpt_simple.py"
    export_recipe(recipe, "nano", script)
    want = _run_val_losses(optbench_run(recipe, tmp_path / "run", steps=21))
    got, _ = _script_val_losses(script, nano_data, tmp_path, steps=21)
    assert sorted(got) == sorted(want) == [0, 20, 21]
    diff = max(abs(got[s] - want[s]) for s in want)
    print(f"max |val loss difference| export vs run (nano record stack): {diff:.3g}")
    assert diff <= 1e-6, (got, want)
