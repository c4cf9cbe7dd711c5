"""`optbench submission pack`: run folder -> artifact folder (workspace.md layout), validated, never overwriting."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from optbench.errors import OptbenchError
from optbench.optim.recipe import Recipe
from optbench.results.schema import load_results
from optbench.results.stats import steps_field
from optbench.submission.check import static_check
from optbench.submission.export import export_script
from optbench.submission.pack import ARTIFACT_FILES, pack
from optbench.tracks import get_track

from .conftest import EQ_STEPS


def test_pack_writes_the_artifact_folder(nano_run, tmp_path):
    out = pack(nano_run, tmp_path / "adamw_agent-01")
    assert sorted(p.name for p in out.iterdir()) == sorted(ARTIFACT_FILES)
    assert (out / "results.json").read_bytes() == (nano_run / "results.json").read_bytes()
    assert load_results(out / "results.json").optimizer == "adamw"
    assert (out / "train_log.txt").read_bytes() == (nano_run / "train_log.txt").read_bytes()
    cfg = json.loads((nano_run / "run.json").read_text())
    script = (out / "train_gpt_simple.py").read_text()
    assert script == export_script(Recipe.model_validate(cfg["recipe"]), "nano")
    assert f"    train_steps = {EQ_STEPS}\n" in script and "TRACK = 'nano'" in script
    assert static_check(script, "train_gpt_simple.py").ok  # against the script's own TRACK (nano)
    readme = (out / "README.md").read_text()
    for heading in ("## Approach", "## Hyperparameters", "## Runs", "## Verdict", "## Source", "## Reproduce"):
        assert heading in readme
    res = load_results(nano_run / "results.json")
    final = res.runs[0].final_val_loss
    assert f"| 0 | {final:.5f} |" in readme
    assert "| adamw lr | 0.01 |" in readme and f"| train_steps | {EQ_STEPS} |" in readme
    assert "[workspace]" in readme and ("PASS" in readme or "FAIL" in readme)
    assert "optbench calibration, docs/tracks.md" in readme


def test_pack_never_overwrites(nano_run, tmp_path):
    out = tmp_path / "art"
    out.mkdir()
    (out / "README.md").write_text("someone else's README\n")
    with pytest.raises(OptbenchError, match="already has README.md"):
        pack(nano_run, out)
    assert [p.name for p in out.iterdir()] == ["README.md"]  # nothing else written
    assert (out / "README.md").read_text() == "someone else's README\n"
    out2 = pack(nano_run, tmp_path / "art2")
    before = {p.name: p.read_bytes() for p in out2.iterdir()}
    with pytest.raises(OptbenchError, match="never overwrites"):
        pack(nano_run, out2)
    assert {p.name: p.read_bytes() for p in out2.iterdir()} == before


def test_pack_validates_inputs(nano_run, tmp_path):
    with pytest.raises(OptbenchError, match="not a folder"):
        pack(tmp_path / "missing", tmp_path / "o1")
    bad = tmp_path / "badrun"
    shutil.copytree(nano_run, bad)
    data = json.loads((bad / "results.json").read_text())
    field = steps_field(get_track("nano").target)
    data[field] = "twenty"
    (bad / "results.json").write_text(json.dumps(data))
    with pytest.raises(OptbenchError, match=field):
        pack(bad, tmp_path / "o2")
    assert not (tmp_path / "o2").exists()


def test_cli_pack(nano_run, tmp_path, capsys):
    from optbench.cli import main

    args = ["submission", "pack", str(nano_run), "--out", str(tmp_path / "a")]
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 0 and (tmp_path / "a" / "README.md").is_file()
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 2 and "never overwrites" in capsys.readouterr().err
