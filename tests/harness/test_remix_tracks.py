"""The remix-a / remix-m / speedrun-101824 tracks, their nano sizes and recipes: fixed fields, comparability,
schedules (LR floor, momentum warmup, scaled to nano), the gradient scale, and short nano runs of every recipe."""

from __future__ import annotations

import json

import pytest

from optbench.cli import main
from optbench.optim.recipe import load_recipe, parse_recipe
from optbench.results.schema import load_results
from optbench.standalone.schedule import lr_multiplier, momentum_warmup
from optbench.tracks import comparable_tracks, fit_recipe, get_track

RECIPES = {
    "remix-a-adamw": "remix-a-nano",
    "remix-m-muon": "remix-m-nano",
    "speedrun-101824-adam": "speedrun-101824-nano",
    "speedrun-101824-shampoo": "speedrun-101824-nano",
    "speedrun-101824-soap": "speedrun-101824-nano",
    "speedrun-101824-muon": "speedrun-101824-nano",
}


pytestmark = pytest.mark.usefixtures("one_thread")


def test_full_size_fields_are_the_sources():
    a, m, s = get_track("remix-a"), get_track("remix-m"), get_track("speedrun-101824")
    for t in (a, m):
        assert (t.batch_tokens, t.seq_len, t.micro_batch_rows, t.max_world_size) == (524288, 65536, 1, 8)
        assert (t.model_config.window, t.model_config.bos_id, t.val_tokens, t.loss_reduction) == (1024, 50256, 10485760,
                                                                                                  "mean")
    assert a.model_config.tied and a.model_config.softcap is None and a.train_steps == 4375
    assert not m.model_config.tied and m.model_config.softcap == 30.0 and m.train_steps == 2500
    assert (s.seq_len, s.micro_batch_rows, s.train_steps, s.model_config.vocab_size) == (1024, 64, 5100, 50304)
    for t in (a, m, s):
        assert t.eval_steps() == list(range(0, t.train_steps, 125)) + [t.train_steps]


def test_comparability_is_a_track_field():
    assert comparable_tracks(get_track("small")) == ["speedrun-101824"]
    assert comparable_tracks(get_track("remix-a")) == ["remix-m"]
    assert comparable_tracks(get_track("nano")) == ["speedrun-101824-nano"]
    assert comparable_tracks(get_track("remix-m-nano")) == ["remix-a-nano"]
    assert comparable_tracks(get_track("medium")) == []
    assert not get_track("small").comparable_with(get_track("remix-a"))  # document context vs none
    assert get_track("remix-a").eval_context != get_track("small").eval_context


def test_mean_tracks_scale_the_backward_to_the_batch_mean():
    assert get_track("remix-a").backward_scale(8) == 8 / 524288
    assert get_track("small").backward_scale(8) == 8.0


def test_lr_floor_and_momentum_warmup_are_upstreams_formulas():
    T, cf = 2500, 0.4
    for s in (0, 1499, 1500, 2000, 2499):  # train_gpt_M.py get_lr: w = (1 - x) / cf; w + (1 - w) * 0.1
        x = s / T
        want = 1.0 if x < 1 - cf else (1 - x) / cf + (1 - (1 - x) / cf) * 0.1
        assert lr_multiplier(s, T, cf, 0, 0.1) == pytest.approx(want, rel=1e-12)
    assert lr_multiplier(2499, T, cf, 0, 0.1) == pytest.approx(0.1 + 0.9 / 1000)
    assert lr_multiplier(0, 4375, 0.3, 256, 0.1) == pytest.approx(1 / 256)  # A's warmup
    assert [momentum_warmup(s, 0.85, 0.95, 300) for s in (0, 150, 300, 1000)] == pytest.approx([0.85, 0.9, 0.95, 0.95])


def test_recipes_carry_the_published_settings_and_figures():
    a = load_recipe("remix-a-adamw")
    assert (a.scope, a.hparams["lr"], a.hparams["weight_decay"], a.hparams["eps"]) == ("all", 0.0021, 0.1, 1e-10)
    assert (a.warmup_steps, a.cooldown_frac, a.lr_floor, a.train_steps) == (256, 0.3, 0.1, 4375)
    assert a.published.final_val_loss == 3.2809 and a.published.train_time_s == 615.334
    m = load_recipe("remix-m-muon")
    assert (m.hparams["lr"], m.hparams["ns_coefficients"], m.hparams["nd_mode"]) == (0.05, "tuned5", "batch")
    assert (m.momentum_warmup.start, m.momentum_warmup.steps, m.cooldown_frac, m.lr_floor) == (0.85, 300, 0.4, 0.1)
    assert (m.aux.optimizer, m.aux.head_lr, m.aux.embed_lr, m.aux.scalar_lr) == ("adam", 0.22, 0.6, 0.04)
    assert (m.published.steps, m.published.final_val_loss) == (2500, 3.2791)
    finals = {"adam": 3.3406, "shampoo": 3.2858, "soap": 3.2752, "muon": 3.2760}
    for opt, final in finals.items():
        r = load_recipe(f"speedrun-101824-{opt}")
        assert r.track == "speedrun-101824" and r.train_steps == 5100
        assert r.cooldown_frac * 5100 == pytest.approx(1450)
        assert r.warmup_steps == (0 if opt == "muon" else 250)
        assert (r.aux.embed_lr, r.aux.hparams["eps"]) == (0.0036, 1e-8)
        assert r.published.final_val_loss == final
    assert load_recipe("speedrun-101824-soap").hparams["weight_decay"] == 0.01  # SOAP's default: the log sets none
    assert load_recipe("speedrun-101824-soap").published.steps == 5000


def test_fit_recipe_scales_step_counts_to_the_nano_size():
    r, note = fit_recipe(load_recipe("remix-m-muon"), get_track("remix-m-nano"))
    assert (r.train_steps, r.momentum_warmup.steps, r.warmup_steps) == (100, 12, 0)
    assert "scaled to remix-m-nano" in note
    r, _ = fit_recipe(load_recipe("remix-a-adamw"), get_track("remix-a-nano"))
    assert (r.train_steps, r.warmup_steps) == (100, 6)
    same, note = fit_recipe(load_recipe("remix-a-adamw"), get_track("nano"))
    assert note is None and same.train_steps == 4375


def test_resolve_recipe_scales_before_the_settings():
    from optbench.optim.recipe import resolve_recipe

    r, text = resolve_recipe("remix-m-muon", None, get_track("remix-m-nano"), ["train_steps=12"])
    assert (r.train_steps, r.momentum_warmup.steps) == (12, 12)  # scaled to 100 steps first, then --set
    assert text.splitlines()[-2:] == ["# recipe remix-m-muon (tuned on remix-m, 2500 steps) scaled to remix-m-nano: "
                                      "100 steps, warmup 0, momentum warmup 12", "# --set train_steps=12"]
    same, _ = resolve_recipe("remix-a-adamw", None, "remix-a", ["lr_floor=0.2"])
    assert (same.train_steps, same.warmup_steps, same.lr_floor) == (4375, 256, 0.2)


def test_momentum_warmup_needs_the_end_value():
    from optbench.errors import OptbenchError

    with pytest.raises(OptbenchError, match="momentum_warmup needs"):
        parse_recipe('name = "x"\noptimizer = "adamw"\nscope = "all"\nmomentum_warmup = { start = 0.8, steps = 5 }',
                     "x")


def test_exporter_refuses_what_it_cannot_write():
    from optbench.errors import OptbenchError
    from optbench.submission.export import export_script

    with pytest.raises(OptbenchError, match="lr_floor and momentum_warmup are not exportable"):
        export_script(load_recipe("remix-m-muon"), "small")
    with pytest.raises(OptbenchError, match="export supports the track-3 GPT"):
        export_script(load_recipe("speedrun-101824-adam"), "speedrun-101824")


@pytest.mark.slow
@pytest.mark.parametrize("recipe", list(RECIPES))
def test_every_recipe_trains_at_nano_size(recipe, tmp_path, nano_data):
    """12 steps on the recipe's nano track (its schedule scaled to the track, then --set train_steps=12): learns,
    the log's recipe section notes the scaling, and its header names the track's eval context."""
    out = tmp_path / "r"
    with pytest.raises(SystemExit) as e:
        main(["run", "--track", RECIPES[recipe], "--recipe", recipe, "--set", "train_steps=12", "--out", str(out),
              "--quiet"])
    assert e.value.code == 0
    res = load_results(out / "results.json")
    curve = res.runs[0].curve
    assert [p.step for p in curve] == [0, 12]
    assert curve[-1].val_loss < curve[0].val_loss - 0.5
    header = (out / "train_log.txt").read_text().split("=" * 100)[0]
    assert f"scaled to {RECIPES[recipe]}: 100 steps" in header  # the recipe section notes the scaling
    assert json.dumps(get_track(RECIPES[recipe]).eval_context) in header
