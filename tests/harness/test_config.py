"""RunConfig: run.json round trip (what `optbench run --resume` reads back) and clear errors for a bad folder."""

from __future__ import annotations

import json

import pytest

from optbench.errors import OptbenchError
from optbench.optim.recipe import load_recipe
from optbench.tracks import get_track, with_overrides
from optbench.train.config import RUN_JSON, RunConfig


def _cfg(tmp_path) -> RunConfig:
    return RunConfig(track=with_overrides(get_track("nano"), {"target": 8.0}), recipe=load_recipe("nano-adamw"),
                     recipe_text='name = "nano-adamw"\n', seeds=[3, 4], out_dir=tmp_path / "a",
                     data_dir=tmp_path / "data", device="cpu", compile=False, checkpoint_every=5, agent_id="me",
                     experiment="exp")


def test_from_json_rebuilds_the_saved_config(tmp_path):
    cfg = _cfg(tmp_path)
    data = json.loads(json.dumps(cfg.to_json()))  # as run.json holds it
    assert RunConfig.from_json(data) == cfg
    assert RunConfig.from_json(data).track.unofficial and RunConfig.from_json(data).track.target == 8.0
    moved = RunConfig.from_json(data, out_dir=tmp_path / "b", device="cuda", progress=False)
    assert (moved.out_dir, moved.device, moved.progress) == (tmp_path / "b", "cuda", False)
    assert (moved.seeds, moved.checkpoint_every, moved.recipe) == ([3, 4], 5, cfg.recipe)


def test_load_resumes_in_the_given_folder(tmp_path):
    run_dir = tmp_path / "moved-run"
    run_dir.mkdir()
    (run_dir / RUN_JSON).write_text(json.dumps(_cfg(tmp_path).to_json()))
    cfg = RunConfig.load(run_dir, device="cpu", progress=False)
    assert cfg.out_dir == run_dir and cfg.data_dir == tmp_path / "data" and not cfg.progress


def test_load_errors_name_the_problem(tmp_path):
    with pytest.raises(OptbenchError, match="has no run.json"):
        RunConfig.load(tmp_path)
    (tmp_path / RUN_JSON).write_text("{not json")
    with pytest.raises(OptbenchError, match="run.json is not valid JSON"):
        RunConfig.load(tmp_path)
    data = _cfg(tmp_path).to_json()
    del data["seeds"]
    (tmp_path / RUN_JSON).write_text(json.dumps(data))
    with pytest.raises(OptbenchError, match="field 'seeds' is missing"):
        RunConfig.load(tmp_path)


def test_loop_still_exports_run_config():
    from optbench.train import loop

    assert loop.RunConfig is RunConfig
