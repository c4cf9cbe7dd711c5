"""The contract every optimizer of the zoo keeps, checked for each registered name: a new optimizer module is picked
up by these tests by itself (no list to edit). Each one is registered from its own zoo module (its family), has a
reference and a bundled recipe, is documented in docs/optimizers.md, builds on the nano model through its default
recipe with the upstream split, takes steps, round-trips its state_dict bitwise, and exports to one script that
parses and passes the static rules."""

from __future__ import annotations

import ast
import importlib.util
import io
from pathlib import Path

import pytest
import torch

from optbench import optim
from optbench.optim import protocol
from optbench.optim.groups import build_optimizers, with_track_hparams
from optbench.optim.recipe import default_recipe, load_recipe, recipe_names
from optbench.tracks import get_track

ZOO = optim.names()  # evaluated at collection, before any test registers a test-only optimizer
DOC = Path(__file__).resolve().parents[2] / "docs" / "optimizers.md"
TRACK = get_track("nano")
# optimizers that need no bundled recipe of their own, and why
WITHOUT_RECIPE = {"adam": "torch's Adam: the comparison recipes run AdamW with weight_decay 0, the same update"}


def test_every_zoo_module_registers_an_optimizer():
    families = {optim.info(n).family for n in ZOO}
    assert set(optim.optimizer_modules()) <= families, "a module of optbench/optim that registers nothing: " \
        "name helpers _like_this.py, or add them to optim.INFRASTRUCTURE"


@pytest.mark.parametrize("name", ZOO)
def test_registered_from_its_module_with_a_reference(name):
    i = optim.info(name)
    assert importlib.util.find_spec(f"optbench.optim.{i.family}") is not None  # the module the exporter inlines
    assert len(i.reference) > 20 and issubclass(i.cls, torch.optim.Optimizer)
    assert optim.get(name.upper()) is i.cls and getattr(optim, i.cls.__name__) is i.cls


@pytest.mark.parametrize("name", ZOO)
def test_documented_and_has_a_recipe(name):
    assert f"## `{name}`" in DOC.read_text(), "run: optbench optimizers --markdown > docs/optimizers.md"
    if name in WITHOUT_RECIPE:
        return
    uses = [r for r in recipe_names() if optim.info(load_recipe(r).optimizer).name == name]
    assert uses, f"add optbench/optim/recipes/<track>-{name}.toml (a recipe that runs {name})"


def _build(name: str, seed: int = 0):
    torch.manual_seed(seed)
    model = TRACK.build_model()
    TRACK.init_model(model)
    recipe = with_track_hparams(default_recipe(name, TRACK.name), TRACK)
    return model, build_optimizers(model, recipe)


def _batches(n: int):
    gen = torch.Generator().manual_seed(1)
    rows = torch.randint(0, TRACK.vocab_size, (n, 2, 65), generator=gen)  # 2 rows of 64 tokens: enough to step
    return [(r[:, :-1], r[:, 1:]) for r in rows]


def _step(model, opts, step: int, batch) -> float:
    """One step as the loop takes it: train mode, one forward-backward, every optimizer steps, and a Hessian
    refresh for the optimizers that ask (here from a second backward on the same batch)."""
    protocol.set_train_mode(opts)
    x, y = batch
    loss = model(x, y)
    loss.backward()
    for o in opts:
        o.step()
    model.zero_grad(set_to_none=True)
    due = protocol.hessian_due(opts, step)
    if due:
        model(x, y).backward()
        for o in due:
            o.update_hessian()
        model.zero_grad(set_to_none=True)
    return loss.item() / y.numel()


@pytest.mark.parametrize("name", ZOO)
def test_builds_steps_and_learns_on_nano(name):
    model, opts = _build(name)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    batches = _batches(1) * 3  # the same batch three times: any working optimizer lowers its loss
    losses = [_step(model, opts, s, b) for s, b in enumerate(batches)]
    assert all(torch.isfinite(p).all() for p in model.parameters())
    moved = [n for n, p in model.named_parameters() if not torch.equal(p, before[n])]
    assert moved, "no parameter changed"
    assert losses[-1] < losses[0], losses


@pytest.mark.parametrize("name", ZOO)
def test_state_dict_round_trip_is_bitwise(name):
    batches = _batches(4)
    model, opts = _build(name)
    for s in range(2):
        _step(model, opts, s, batches[s])
    protocol.set_train_mode(opts)
    saved = []
    for o in opts:
        buf = io.BytesIO()
        torch.save(o.state_dict(), buf)
        buf.seek(0)
        saved.append(torch.load(buf, weights_only=True))
    model2, opts2 = _build(name, seed=123)  # other initial weights: everything must come from the saved state
    model2.load_state_dict(model.state_dict())
    for o, sd in zip(opts2, saved):
        o.load_state_dict(sd)
    for m, o in ((model, opts), (model2, opts2)):
        torch.manual_seed(7)  # the same global RNG for both continuations (Kron samples its probes from it)
        for s in range(2, 4):
            _step(m, o, s, batches[s])
    for (n, p), q in zip(model.named_parameters(), model2.parameters()):
        assert torch.equal(p, q), n


@pytest.mark.parametrize("name", ZOO)
def test_exports_a_script_that_parses_and_passes_the_static_rules(name):
    from optbench.submission.check import static_check
    from optbench.submission.export import export_script

    script = export_script(default_recipe(name, TRACK.name), TRACK.name)
    ast.parse(script)
    report = static_check(script, f"{name}.py", TRACK.name)
    assert report.ok, [str(v) for v in report.violations]
