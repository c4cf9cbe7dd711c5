"""Every bundled recipe loads, cites a source, builds its optimizers on (a tiny copy of) its track's model with the
upstream split, and takes a step; recipe errors are clear."""

import dataclasses

import pytest
import torch

from optbench.errors import OptbenchError
from optbench.optim import protocol
from optbench.optim.groups import build_optimizers
from optbench.optim.recipe import load_recipe, parse_recipe, recipe_names
from optbench.tracks import get_track

TINY = {"model_dim": 128, "num_layers": 2, "vocab_size": 256}


def _tiny_model(track_name: str):
    t = get_track(track_name)
    cfg = t.model_config
    if t.model == "medium":
        small = dataclasses.replace(cfg, model_dim=128, num_layers=4, vocab_size=256, bos_id=255,
                                    value_embed_layers=(0, None, None, 0), skip_map=((3, 1),), no_attn_layers=(2,),
                                    long_window_layers=(0, 3))
    else:
        small = dataclasses.replace(cfg, **TINY)
    tiny = dataclasses.replace(t, model_config=small)
    torch.manual_seed(0)
    m = tiny.build_model()
    tiny.init_model(m)
    return m


@pytest.mark.parametrize("name", recipe_names())
def test_recipe_builds_and_steps(name):
    r = load_recipe(name)
    assert r.name == name and r.source and r.description
    m = _tiny_model(r.track or "small")
    opts = build_optimizers(m, r)
    covered = {id(p) for o in opts for g in o.param_groups for p in g["params"]}
    assert covered == {id(p) for p in m.parameters()}
    if r.aux is not None:
        lrs = sorted({g["lr"] for g in opts[0].param_groups})  # [aux] overrides split groups, keeping the role's lr
        roles = set(m.param_roles().values())  # a tied model has no head, the remixed ones no scalars
        aux_lrs = {"embed": r.aux.embed_lr, "head": r.aux.head_lr, "scalar": r.aux.scalar_lr}
        assert lrs == sorted({lr for role, lr in aux_lrs.items() if role in roles})
    protocol.set_train_mode(opts)  # as the loop does (schedule-free needs it)
    x = torch.randint(0, 256, (2, 64))
    m(x, x).backward()
    before = [p.detach().clone() for p in m.parameters()]
    for o in opts:
        o.step()
    changed = sum(not torch.equal(a, p) for a, p in zip(before, m.parameters()))
    assert changed > 0


def test_published_recipes_match_the_spec():
    r = load_recipe("track3-36-muon")
    assert (r.hparams["lr"], r.hparams["weight_decay"], r.train_steps) == (0.025, 0.05, 3250)
    assert (r.aux.embed_lr, r.aux.head_lr, r.aux.scalar_lr) == (0.7, 0.004, 0.015)
    a = load_recipe("track3-2-adamw")
    assert (a.hparams["lr"], a.hparams["weight_decay"], a.warmup_steps, a.published.steps) == (0.0015, 0.1, 250, 5625)
    assert load_recipe("track3-pr353-adamw").published.steps == 4950
    assert load_recipe("medium-muon").overrides[0].hparams == {"weight_decay": 0.02}


def test_mlp_override_gets_double_weight_decay():
    m = _tiny_model("medium")
    opts = build_optimizers(m, load_recipe("medium-muon"))
    wds = sorted({g["weight_decay"] for g in opts[1].param_groups})
    assert wds == [0.01, 0.02]


def test_recipe_errors_name_the_field():
    with pytest.raises(OptbenchError, match="recipe x.toml: not valid TOML"):
        parse_recipe("name = ", "x.toml")
    with pytest.raises(OptbenchError, match="optimizer: Field required"):
        parse_recipe('name = "a"', "a")
    with pytest.raises(OptbenchError, match="needs an \\[aux\\] table"):
        parse_recipe('name = "a"\noptimizer = "muon"', "a")
    with pytest.raises(OptbenchError, match="cooldown_frac"):
        parse_recipe('name = "a"\noptimizer = "adamw"\nscope = "all"\ncooldown_frac = 2', "a")
    r = parse_recipe('name = "a"\noptimizer = "muon"\nscope = "all"', "a")
    with pytest.raises(OptbenchError, match="only handles >=2-D matrices"):
        build_optimizers(_tiny_model("small"), r)


def test_apply_settings_and_resolve_recipe_live_with_the_recipe():
    from optbench.optim.recipe import apply_settings, resolve_recipe

    r, text = apply_settings(load_recipe("nano-muon"),
                             ["lr=0.02", "train_steps=30", "aux.embed_lr=0.3", "aux.betas=[0.9, 0.95]", "ns_coefficients=tuned5"])
    assert r.name == "nano-muon+set" and r.hparams["lr"] == 0.02 and r.hparams["ns_coefficients"] == "tuned5"
    assert r.train_steps == 30 and r.aux.embed_lr == 0.3 and r.aux.hparams["betas"] == [0.9, 0.95]
    assert text == "# --set lr=0.02\n# --set train_steps=30\n# --set aux.embed_lr=0.3\n# --set aux.betas=[0.9, 0.95]\n" \
                   "# --set ns_coefficients=tuned5\n"
    with pytest.raises(OptbenchError, match="--set: 'lr' is not KEY=VALUE"):
        apply_settings(r, ["lr"])
    with pytest.raises(OptbenchError, match="^--set: train_steps: Input should be greater than 0$"):
        apply_settings(r, ["train_steps=0"])
    d, dtext = resolve_recipe(None, "adamw", "nano", ["lr=0.001"])
    assert d.optimizer == "adamw" and d.hparams["lr"] == 0.001
    assert dtext.startswith("# default recipe for --optimizer adamw\n{") and dtext.endswith("# --set lr=0.001\n")
    with pytest.raises(OptbenchError, match="disagrees with recipe nano-muon"):
        resolve_recipe("nano-muon", "adamw", "nano")
