"""Study definitions (optbench.study.plan): validation and the one rule that makes every entry's space."""

from pathlib import Path

import pytest

from optbench.errors import OptbenchError
from optbench.study.plan import load_study

from .studyfiles import LION, write_study

REPO = Path(__file__).resolve().parents[2]

def test_every_entry_gets_the_same_space_shape_around_its_recipe(tmp_path):
    study = load_study(write_study(tmp_path))
    assert study.names == ["muon", "adamw", "lion"]
    lion = study.space(study.entry("lion"))
    assert lion == {"lr": {"log": [0.0002, 0.0032]}, "weight_decay": {"log": [0.003125, 0.05]},
                    "train_steps": {"int": [50, 200], "log": True}}
    muon = study.space(study.entry("muon"))  # nano-muon: lr 0.05, weight_decay 0.05
    assert muon["lr"] == {"log": [0.0125, 0.2]} and muon["weight_decay"] == {"log": [0.0125, 0.2]}
    assert {tuple(study.space(e)) for e in study.entries} == {("lr", "weight_decay", "train_steps")}


def test_paths_are_relative_to_the_study_file(tmp_path):
    study = load_study(write_study(tmp_path))
    assert study.recipe_ref(study.entry("lion")) == str(tmp_path.resolve() / "lion.toml")
    assert study.recipe_ref(study.entry("muon")) == "nano-muon"  # bundled names stay names
    assert study.storage_url() == f"sqlite:///{tmp_path.resolve() / 'sweeps.db'}"
    assert study.final_dir(study.entry("adamw")) == tmp_path.resolve() / "finals" / "adamw"
    assert study.sweep_name(study.entry("adamw")) == "mini-adamw"


def test_one_knob_joins_the_space(tmp_path):
    study = load_study(write_study(tmp_path, {"betas": {"categorical": [[0.9, 0.99], [0.95, 0.98]]}}))
    assert study.space(study.entry("lion"))["betas"] == {"categorical": [[0.9, 0.99], [0.95, 0.98]]}


@pytest.mark.parametrize("knob, head, msg", [
    ({"betas": {"categorical": [[0.9, 0.99]]}, "eps": {"log": [1e-9, 1e-7]}}, {}, "at most one"),
    ({"lr": {"log": [1e-4, 1e-3]}}, {}, "knob must be another"),
    (None, {"reference": "sgd"}, "'sgd' is not an entry"),
    (None, {"steps": [200, 50]}, "0 < low < high"),
    (None, {"trials": 0}, "trials"),
])
def test_bad_studies_are_one_line_errors(tmp_path, knob, head, msg):
    with pytest.raises(OptbenchError, match=msg):
        load_study(write_study(tmp_path, knob, **head))


def test_a_recipe_without_weight_decay_cannot_centre_the_search(tmp_path):
    lion = {**LION, "hparams": {"lr": 0.0008, "betas": [0.9, 0.99]}}
    study = load_study(write_study(tmp_path, lion=lion))
    with pytest.raises(OptbenchError, match="needs a positive weight_decay"):
        study.space(study.entry("lion"))


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(OptbenchError, match="cannot read"):
        load_study(tmp_path / "nope.toml")
    (tmp_path / "bad.toml").write_text("name = ")
    with pytest.raises(OptbenchError, match="not valid TOML"):
        load_study(tmp_path / "bad.toml")


def test_the_committed_proxy_study_loads_and_every_space_is_valid_for_its_sweep():
    from optbench.optim.recipe import load_recipe
    from optbench.sweep.settings import setting_names
    from optbench.sweep.space import space_from_dict
    from optbench.tracks import get_track

    study = load_study(REPO / "studies" / "proxy" / "study.toml")
    assert len(study.entries) >= 8 and study.track == "proxy"
    track = get_track(study.track)
    for e in study.entries:
        recipe = load_recipe(study.recipe_ref(e))
        space_from_dict(study.space(e)).check_names(setting_names(recipe, track), e.name)


def test_the_centre_is_the_base_recipe_at_the_track_length(tmp_path):
    study = load_study(write_study(tmp_path))
    assert study.centre(study.entry("lion")) == {"lr": 0.0008, "weight_decay": 0.0125, "train_steps": 100}
    narrow = load_study(write_study(tmp_path, steps=[150, 200]))
    with pytest.raises(OptbenchError, match="train_steps 100 is outside steps"):
        narrow.centre(narrow.entry("lion"))
