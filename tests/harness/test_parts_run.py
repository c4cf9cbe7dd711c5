"""The record recipe (every kind of part: init, chain, aux chain, schedules, outer look-ahead, readout) trains in the
real loop on the nano track, with a part ablated from the command line; results and log name the parts."""

import math

import pytest

from optbench.cli import main
from optbench.optim.recipe import load_recipe
from optbench.results.schema import load_results

NANO = ["--set", "train_steps=40", "--set", "parts.powercool=false", "--set", "cooldown_frac=0.5",
        "--set", "parts.momentum_schedule.horizon=40", "--set", "parts.momentum_schedule.warmup=10",
        "--set", "parts.momentum_schedule.cooldown=10", "--set", "parts.ema_nesterov.start=5",
        "--set", "parts.ema_nesterov.stop=30", "--set", "parts.tail_ema.start=30", "--set", "parts.tail_ema.stop=40",
        "--set", "parts.tail_ema.tau=5.0", "--set", "parts.cgi_gains.pair_from=1", "--set", "parts.cgi_gains.head_dim=32"]


@pytest.mark.slow
def test_record_recipe_trains_on_nano_with_a_part_ablated(tmp_path, nano_data):
    out = tmp_path / "rec"
    try:
        main(["run", "--track", "nano", "--recipe", "track3-46-record", *NANO, "--set", "parts.cautious_wd=false",
              "--out", str(out), "--quiet"])
    except SystemExit as e:
        assert e.code in (0, None)
    res = load_results(out / "results.json")
    expect = [n for n in load_recipe("track3-46-record").part_names() if n not in ("cautious_wd", "powercool")]
    assert res.parts == expect
    curve = res.runs[0].curve
    assert all(math.isfinite(p.val_loss) for p in curve)
    assert curve[-1].val_loss < curve[0].val_loss - 0.1
    log = (out / "train_log.txt").read_text()
    assert "class RowFloor" in log and "class TailEMA" in log and "class CautiousWeightDecay" not in log
    assert "# --set parts.cautious_wd=false" in log
