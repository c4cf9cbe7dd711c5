"""Trial params become recipes through the same path as `optbench run --set`; the valid names per optimizer/track."""

from __future__ import annotations

import pytest

from optbench.assignments import parse_value
from optbench.optim.recipe import apply_settings
from optbench.optim.recipe import default_recipe, load_recipe
from optbench.sweep.settings import setting_names, toml_literal, trial_recipe
from optbench.tracks import get_track


def test_adamw_names_on_nano():
    names = setting_names(load_recipe("nano-adamw"), get_track("nano"))
    assert names == ["amsgrad", "betas", "eps", "lr", "weight_decay", "train_steps", "warmup_steps", "cooldown_frac",
                     "aux.embed_lr", "aux.head_lr", "aux.scalar_lr", "aux.amsgrad", "aux.betas", "aux.eps",
                     "aux.weight_decay"]


def test_track_derived_hparams_are_not_tunable():
    r = default_recipe("sophia", "cpu")
    names = setting_names(r, get_track("cpu"))
    assert "batch_size" not in names and {"rho", "hessian_interval", "lr"} <= set(names)


def test_trial_recipe_is_the_set_path():
    base = load_recipe("nano-adamw")
    params = {"lr": 0.0031, "weight_decay": 1e-05, "train_steps": 80, "aux.embed_lr": 0.2, "betas": [0.8, 0.9]}
    r, text = trial_recipe(base, "# base\n", params)
    same, set_text = apply_settings(base, ["lr=0.0031", "weight_decay=1e-05", "train_steps=80", "aux.embed_lr=0.2",
                                           "betas=[0.8, 0.9]"])
    assert r == same
    assert (r.hparams["lr"], r.hparams["weight_decay"], r.train_steps, r.aux.embed_lr) == (0.0031, 1e-05, 80, 0.2)
    assert text == "# base\n" + set_text and text.count("# --set ") == 5


@pytest.mark.parametrize("v", [0.1, 1e-05, 3e20, 7, True, "tuned5", [0.9, 0.95], 2.0])
def test_toml_literal_round_trips_through_set(v):
    assert parse_value(toml_literal(v)) == v


def test_an_ablation_of_the_record_is_a_sweep_over_its_parts():
    """A space may switch the recipe's parts on and off and tune their knobs (aux chain's too); a trial is the
    `--set parts...` run."""
    from optbench.sweep.space import parse_space

    base = load_recipe("track3-46-record")
    names = setting_names(base, get_track("small"))
    assert {"parts.cautious_wd", "parts.cautious_wd.wd", "parts.row_floor.target", "parts.tail_ema.blend",
            "aux.parts.adam.beta2"} <= set(names)
    assert "parts.hyperball" not in names  # not a part of this recipe
    space = parse_space('parts.cautious_wd = { categorical = [true, false] }\n'
                        'parts.row_floor.target = { uniform = [0.2, 0.5] }\n')
    space.check_names(names, "the record")
    r, text = trial_recipe(base, "# base", {"parts.cautious_wd": False, "parts.row_floor.target": 0.25})
    assert "cautious_wd" not in r.parts and r.parts["row_floor"]["target"] == 0.25
    assert text.splitlines() == ["# base", "# --set parts.cautious_wd=false", "# --set parts.row_floor.target=0.25"]
