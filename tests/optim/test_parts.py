"""Composable parts: each part's equation on small tensors, the chain's rules and errors, recipes with parts,
`--set parts...`, state round trips (checkpoints), and the chain reproducing the zoo's whole Muon."""

from __future__ import annotations

import pytest
import torch

from optbench.errors import OptbenchError
from optbench.optim import Muon
from optbench.optim.parts import catalog
from optbench.optim.parts.adam import Adam
from optbench.optim.parts.aspect_scale import AspectScale
from optbench.optim.parts.cautious_wd import CautiousWeightDecay
from optbench.optim.parts.chain import Chain
from optbench.optim.parts.ema_nesterov import EMANesterov
from optbench.optim.parts.hyperball import Hyperball
from optbench.optim.parts.momentum import Momentum
from optbench.optim.parts.momentum_schedule import MomentumWarmupCooldown
from optbench.optim.parts.orthogonalize import Orthogonalize
from optbench.optim.parts.powercool import PowerCoolLR
from optbench.optim.parts.radius_pin import RadiusPin
from optbench.optim.parts.row_floor import RowFloor
from optbench.optim.parts.shampoo import Shampoo
from optbench.optim.parts.split_cooldown import WSD
from optbench.optim.parts.tail_ema import TailEMA
from optbench.optim.parts.uw_floor import UWFloor
from optbench.optim.recipe import load_recipe, parse_recipe

from .trajectory import load_reference, max_abs_deviation


class Fixed:
    """A base part that returns a given update (to test one part's equation in isolation)."""

    name, stage, knobs, matrix_only = "fixed", "base", {}, False

    def __init__(self, u):
        self.u = u

    def defaults(self):
        return {}

    def check_group(self, group):
        pass

    def direction(self, ctx):
        return self.u.clone()

    def finish(self, ctx):
        pass


def _param(*shape, seed=0):
    torch.manual_seed(seed)
    p = torch.nn.Parameter(torch.randn(*shape))
    p.grad = torch.zeros(*shape)
    return p


def test_chain_muon_reproduces_the_track3_reference(trajectories_dir):
    """momentum + orthogonalize + aspect_scale is track-3 Muon: the shared fp32-NS reference at 1e-6."""
    ref = load_reference(trajectories_dir, "muon_track3_fp32ns")
    devs = max_abs_deviation(ref, lambda ps: Chain(ps, [Momentum(), Orthogonalize(ns_dtype="float32"), AspectScale()],
                                                   lr=0.02))
    assert max(devs) <= 1e-6, devs


def test_chain_muon_equals_zoo_muon_bitwise():
    a, b = _param(64, 32), _param(64, 32)
    zoo = Muon([a], lr=0.02, weight_decay=0.1, ns_dtype=torch.float32)
    parts = catalog.chain_parts({"momentum": {}, "orthogonalize": {"ns_dtype": "float32"}, "aspect_scale": {},
                                 "weight_decay": {"wd": 0.1}})
    chain = Chain([b], parts, lr=0.02)
    for t in range(4):
        g = torch.randn(64, 32, generator=torch.Generator().manual_seed(t))
        a.grad, b.grad = g.clone(), g.clone()
        zoo.step()
        chain.step()
    assert torch.equal(a, b)


def test_hyperball_keeps_the_norm_and_moves_lr_times_norm():
    p = _param(8, 6)
    u = torch.randn(8, 6)
    w0 = p.detach().clone()
    Chain([p], [Fixed(u), Hyperball()], lr=0.1).step()
    assert p.norm().item() == pytest.approx(w0.norm().item(), rel=1e-6)
    # the raw step has size lr * ||W|| before the projection back onto the sphere
    raw = w0 - 0.1 * u * w0.norm() / u.norm()
    assert torch.allclose(p.detach(), raw / raw.norm() * w0.norm(), atol=1e-6)


def test_radius_pin_lands_on_the_first_order_radius():
    p = _param(8, 6)
    u = torch.randn(8, 6)
    w0 = p.detach().clone()
    lr = 0.05
    Chain([p], [Fixed(u), RadiusPin()], lr=lr).step()
    target = w0.norm() - lr * (u * w0).sum() / w0.norm()
    assert p.norm().item() == pytest.approx(target.item(), rel=1e-6)
    stepped = w0 - lr * u
    assert torch.allclose(p.detach(), stepped / stepped.norm() * target, atol=1e-6)  # direction of W - lr u


def test_cautious_wd_decays_only_the_coordinates_the_step_shrinks():
    p = torch.nn.Parameter(torch.tensor([[1.0, -1.0], [2.0, -2.0]]))
    p.grad = torch.zeros(2, 2)
    u = torch.tensor([[1.0, 1.0], [-1.0, -1.0]])  # mask = u * W > 0 -> [[1, 0], [0, 1]]
    Chain([p], [Fixed(u), CautiousWeightDecay(wd=0.5)], lr=0.1).step()
    stepped = torch.tensor([[0.9, -1.1], [2.1, -1.9]])
    expect = stepped * (1 - 0.1 * 0.5 * torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    assert torch.allclose(p.detach(), expect, atol=1e-7)


def test_row_floor_lifts_small_rows_to_the_target_and_leaves_the_others():
    p = torch.nn.Parameter(torch.tensor([[3.0, 4.0], [0.6, 0.8]]))  # row norms 5 and 1
    p.grad = torch.zeros(2, 2)
    u = torch.tensor([[0.3, 0.4], [0.6, 0.8]])  # row norms 0.5 and 1.0
    Chain([p], [Fixed(u), RowFloor(target=0.4)], lr=1.0).step()
    # row 0: 0.5 < 0.4 * 5 -> lifted to norm 2.0; row 1: 1.0 >= 0.4 * 1 -> unchanged
    lifted = torch.tensor([[3.0, 4.0]]) - torch.tensor([[1.2, 1.6]])
    assert torch.allclose(p.detach(), torch.cat([lifted, torch.tensor([[0.0, 0.0]])]), atol=1e-6)


def test_uw_floor_scales_the_whole_update_up_to_the_target_ratio():
    p = _param(4, 4)
    u = 1e-3 * torch.randn(4, 4)
    w0 = p.detach().clone()
    Chain([p], [Fixed(u), UWFloor(target=0.35)], lr=1.0).step()
    assert ((w0 - p.detach()).norm() / w0.norm()).item() == pytest.approx(0.35, rel=1e-5)


def test_shampoo_without_averaging_is_the_polar_factor():
    p = _param(16, 8)
    g = torch.randn(16, 8, generator=torch.Generator().manual_seed(3))
    w0 = p.detach().clone()
    p.grad = g
    Chain([p], [Shampoo(beta1=0.0, beta2=0.0)], lr=1.0).step()
    U, _, Vh = torch.linalg.svd(g, full_matrices=False)
    assert torch.allclose(w0 - p.detach(), U @ Vh, atol=1e-4)


def test_adam_part_without_bias_correction_is_m_over_sqrt_v():
    p = _param(5)
    g = torch.randn(5, generator=torch.Generator().manual_seed(1))
    w0 = p.detach().clone()
    p.grad = g
    Chain([p], [Adam(beta1=0.8, beta2=0.99, eps=1e-12, bias_correction=False)], lr=0.1).step()
    m, v = 0.2 * g, 0.01 * g * g
    assert torch.allclose(p.detach(), w0 - 0.1 * m / v.sqrt(), atol=1e-6)


# ---------------------------------------------------------------------------------------------- schedules


def test_powercool_is_flat_then_a_power_law_to_zero():
    s = PowerCoolLR(c=1e-3, power=1.2, end=100)
    g = {"initial_lr": 0.02}
    flat_until = 100 - (0.02 / 1e-3) ** (1 / 1.2)  # 87.9
    for step, expect in [(0, 0.02), (87, 0.02), (90, 1e-3 * 10 ** 1.2), (100, 0.0), (120, 0.0)]:
        s.set(g, step, 100)
        assert g["lr"] == pytest.approx(expect, rel=1e-12), step
    assert 87 < flat_until < 88


def test_wsd_replace_warmup_is_adamh_and_multiply_is_the_loop_default():
    adamh = WSD(cooldown_frac=1.0, warmup_steps=250, warmup_form="replace", warmup_offset=0)
    assert adamh.multiplier(0, 4875) == 0.0
    assert adamh.multiplier(125, 4875) == 0.5
    assert adamh.multiplier(250, 4875) == pytest.approx(1 - 250 / 4875)
    from optbench.tracks import lr_multiplier

    mult = WSD(cooldown_frac=0.7, warmup_steps=10)
    assert all(mult.multiplier(s, 100) == lr_multiplier(s, 100, 0.7, 10) for s in range(100))
    assert WSD(cooldown_frac=0.5, floor=0.1).multiplier(100, 100) == pytest.approx(0.1)


def test_momentum_schedule_warms_up_holds_and_cools_down():
    m = MomentumWarmupCooldown(start=0.85, peak=0.95, end=0.85, warmup=300, cooldown=200, horizon=2900)
    assert [m.value(s, 2900) for s in (0, 150, 300, 2700)] == pytest.approx([0.85, 0.90, 0.95, 0.95])
    assert m.value(2800, 2900) == pytest.approx(0.90)


# ------------------------------------------------------------------------------------ outer and readout


def test_ema_nesterov_looks_ahead_only_inside_its_window():
    p = torch.nn.Parameter(torch.zeros(3))
    follow = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.5)
    follow.param_groups[0]["initial_lr"] = 1.0
    en = EMANesterov([p], follow, lookahead=0.6, ema=0.5, start=1, stop=2)
    with torch.no_grad():
        p.add_(1.0)  # an inner step moved W by 1
    en.step()  # d = 0.5 * 1, step count 1
    assert torch.allclose(en.state[p]["lookahead_buffer"], torch.full((3,), 0.5))
    en.before_forward()  # step 1 is in [1, 2): W += 0.6 * 0.5 * d
    assert torch.allclose(p.detach(), torch.full((3,), 1.0 + 0.6 * 0.5 * 0.5))
    en.step()
    before = p.detach().clone()
    en.before_forward()  # step 2: outside the window
    assert torch.equal(p.detach(), before)


def test_tail_ema_blends_at_eval_and_restores_exactly():
    p = torch.nn.Parameter(torch.zeros(4))
    ro = TailEMA([p], start=2, stop=None, tau=2.0, blend=0.5)
    with torch.no_grad():
        for value in (1.0, 2.0, 4.0):  # weights after steps 1, 2, 3
            p.fill_(value)
            ro.step()
    # EMA starts at step 2 (value 2), then e += (4 - 2) / 2 -> 3; eval sees 0.5 * 4 + 0.5 * 3
    ro.eval()
    assert torch.allclose(p.detach(), torch.full((4,), 3.5))
    ro.train()
    assert torch.equal(p.detach(), torch.full((4,), 4.0))


def test_readout_before_its_start_is_the_raw_weights():
    p = torch.nn.Parameter(torch.ones(2))
    ro = TailEMA([p], start=10)
    ro.step()
    ro.eval()
    assert torch.equal(p.detach(), torch.ones(2))
    ro.train()


def test_record_stack_state_round_trip_continues_bitwise():
    """What a checkpoint holds (every optimizer's state_dict) resumes the record's chain, outer and readout exactly."""
    from .test_parts_reference import ENTRIES, toy_model, toy_recipe

    from optbench.optim import protocol
    from optbench.optim.groups import build_optimizers

    recipe = toy_recipe(*ENTRIES["record_46"])

    def make(seed=0):
        torch.manual_seed(seed)
        params = {"w1": torch.nn.Parameter(0.1 * torch.randn(12, 6)), "w2": torch.nn.Parameter(0.1 * torch.randn(6, 12)),
                  "w3": torch.nn.Parameter(0.1 * torch.randn(6, 6)), "b": torch.nn.Parameter(0.1 * torch.randn(6))}
        return params, build_optimizers(toy_model(params), recipe)

    def train(params, opts, steps):
        for t in steps:
            protocol.before_forward(opts)
            for n, p in params.items():
                p.grad = torch.randn(p.shape, generator=torch.Generator().manual_seed(100 * t + len(n))) + 0.1 * p.detach()
            for o in opts:
                for g in o.param_groups:
                    g["lr"] = g["initial_lr"] * (1 - t / 20)  # a changing lr: the look-ahead follows it
            protocol.apply_schedules(opts, t, 20)
            for o in opts:
                o.step()

    p1, o1 = make()
    train(p1, o1, range(12))
    p2, o2 = make()
    train(p2, o2, range(6))
    saved = [{k: v for k, v in torch.load(_roundtrip(o.state_dict()), weights_only=True).items()} for o in o2]
    model = {n: p.detach().clone() for n, p in p2.items()}
    p3, o3 = make(seed=1)  # different init: everything must come from the checkpoint
    with torch.no_grad():
        for n, p in p3.items():
            p.copy_(model[n])
    for o, sd in zip(o3, saved):
        o.load_state_dict(sd)
    train(p3, o3, range(6, 12))
    for n in p1:
        assert torch.equal(p1[n], p3[n]), n
    protocol.set_eval_mode(o1)
    protocol.set_eval_mode(o3)
    for n in p1:
        assert torch.equal(p1[n], p3[n]), n


def _roundtrip(sd):
    import io

    buf = io.BytesIO()
    torch.save(sd, buf)
    buf.seek(0)
    return buf


# ------------------------------------------------------------------------------------------- chain rules


@pytest.mark.parametrize("parts, message", [
    ([], "needs at least a base"),
    ([Orthogonalize()], "exactly one base"),
    ([Momentum(), Adam()], "exactly one base"),
    ([Momentum(), Hyperball(), RadiusPin()], "at most one apply"),
    ([Momentum(), Hyperball(), Orthogonalize()], "in that order"),
    ([Momentum(), Orthogonalize(), Orthogonalize()], "given twice"),
])
def test_chain_rejects_what_is_not_a_chain(parts, message):
    with pytest.raises(ValueError, match=message):
        Chain([_param(4, 4)], parts)


def test_part_knob_errors_name_the_knob():
    with pytest.raises(ValueError, match="unknown knob.*mu, nesterov"):
        Momentum(beta=0.9)
    with pytest.raises(ValueError, match=r"momentum\.mu: must be a number in \[0.0, 1.0\)"):
        Chain([_param(4, 4)], [Momentum(mu=1.0)])
    with pytest.raises(ValueError, match="orthogonalize: only 2-D parameters"):
        Chain([_param(4)], [Momentum(), Orthogonalize()])
    with pytest.raises(ValueError, match="soap.gate"):
        Chain([_param(4, 4)], [Momentum(), catalog.info("soap").cls(gate="maybe")])
    with pytest.raises(ValueError, match="unknown part 'nope'"):
        catalog.info("nope")
    assert catalog.info("soap").cls(min_grad_align=-0.5).values["min_grad_align"] == -0.5  # a signed knob


def test_a_group_override_changes_one_knob_for_its_parameters():
    a, b = _param(4, 4), _param(4, 4, seed=1)
    opt = Chain([{"params": [a]}, {"params": [b], "momentum.mu": 0.5}], [Momentum(mu=0.9)], lr=0.1)
    assert [g["momentum.mu"] for g in opt.param_groups] == [0.9, 0.5]


# ----------------------------------------------------------------------------------------- recipes, --set

BASE = 'name = "r"\ndescription = "d"\nsource = "s"\nscope = "all"\n'


@pytest.mark.parametrize("body, message", [
    ('optimizer = "chain"\n[parts.nope]\n', "parts.nope: unknown part 'nope'"),
    ('optimizer = "adamw"\n[parts.hyperball]\n', 'parts.hyperball: a apply part needs optimizer = "chain"'),
    ('optimizer = "chain"\n[parts.hyperball]\n', "needs exactly one base part"),
    ('optimizer = "chain"\n[parts.momentum]\nmu = 0.9\nbeta = 1\n', "parts.momentum: part momentum: unknown knob"),
])
def test_recipe_part_errors_name_the_part(body, message):
    with pytest.raises(OptbenchError, match=message):
        parse_recipe(BASE + body, "r")


def test_global_parts_work_with_whole_zoo_optimizers_but_not_in_the_aux_chain():
    r = parse_recipe(BASE + 'optimizer = "adamw"\n[parts.ema_nesterov]\nlookahead = 0.3\n', "r")
    assert r.part_names() == ["ema_nesterov"]
    text = ('name = "r"\noptimizer = "muon"\n[aux]\noptimizer = "chain"\nembed_lr = 0.1\nhead_lr = 0.1\n'
            'scalar_lr = 0.1\n[aux.parts.adam]\n[aux.parts.powercool]\n')
    with pytest.raises(OptbenchError, match=r"aux.parts.powercool: a schedule part belongs in the recipe's top-level"):
        parse_recipe(text, "r")


def test_two_learning_rate_schedules_are_refused_at_build(tiny_model):
    from optbench.optim.groups import build_optimizers

    r = parse_recipe(BASE + 'optimizer = "adamw"\n[parts.powercool]\nmatrix_c = 1e-4\n[parts.split_cooldown]\n', "r")
    with pytest.raises(OptbenchError, match="powercool and split_cooldown both set the learning rate"):
        build_optimizers(tiny_model, r)


@pytest.fixture
def tiny_model():
    from optbench.tracks import get_track

    torch.manual_seed(0)
    t = get_track("nano")
    m = t.build_model()
    t.init_model(m)
    return m


def test_set_parts_switches_off_changes_and_adds_parts():
    from optbench.optim.recipe import apply_settings

    r = load_recipe("track3-46-record")
    off, _ = apply_settings(r, ["parts.cautious_wd=false", "parts.tail_ema=false"])
    assert "cautious_wd" not in off.parts and "tail_ema" not in off.parts and "row_floor" in off.parts
    knob, _ = apply_settings(r, ["parts.row_floor.target=0.5", "aux.parts.adam.beta2=0.98"])
    assert knob.parts["row_floor"] == {"target": 0.5, "rho": 1.0, "frob": False}
    assert knob.aux.parts["adam"]["beta2"] == 0.98
    floor, _ = apply_settings(r, ["parts.row_floor=false", "parts.uw_floor.target=0.3825"])
    assert floor.parts["uw_floor"] == {"target": 0.3825} and "row_floor" not in floor.parts
    on, _ = apply_settings(load_recipe("track3-12-muon"), ["parts.ema_nesterov=true"])
    assert on.parts == {"ema_nesterov": {}}


@pytest.mark.parametrize("setting, message", [
    ("parts.nope=false", "unknown part 'nope'"),
    ("parts.hyperball=false", "the recipe has no part 'hyperball'"),
    ("parts.row_floor.nope=1", "part row_floor has no knob 'nope'; knobs: target, rho, frob"),
    ("parts.row_floor=3", "give true, false or a table"),
    ("parts.hyperball=true", "at most one apply part"),
    ("parts.row_floor.target=-1", r"parts.row_floor: row_floor.target: must be a finite number >= 0, got -1"),
    ("parts.row_floor.frob=1", r"row_floor.frob: must be true or false, got 1"),
    ("parts.tail_ema.start=2.5", r"tail_ema.start: must be a whole number >= 0, got 2.5"),
    ("parts.powercool.end=-3", r"powercool.end: must be a whole number >= 0 \(or unset\), got -3"),
    ("parts.cgi_gains.alpha=nan", r"cgi_gains.alpha: must be a finite number >= 0, got nan"),
    ("parts.soap.gate=3", r"soap.gate: must be a name, got 3"),
])
def test_set_parts_errors(setting, message):
    from optbench.optim.recipe import apply_settings

    with pytest.raises(OptbenchError, match=message):
        apply_settings(load_recipe("track3-46-record"), [setting])


def test_recipe_parts_are_listed_in_canonical_order_with_aux_parts_last():
    r = load_recipe("track3-46-record")
    names = r.part_names()
    assert names[0] == "momentum" and names[-1] == "aux.adam"
    order = catalog.names()
    assert [order.index(n) for n in names[:-1]] == sorted(order.index(n) for n in names[:-1])


def test_recipes_parts_command_lists_parts_with_sources():
    from typer.testing import CliRunner

    from optbench.cli import app

    res = CliRunner().invoke(app, ["recipes", "--parts", "track3-46-record"], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    for part in ("row_floor", "cautious_wd", "tail_ema", "ema_nesterov", "aux.adam"):
        assert part in res.output
    assert "PR #328" in res.output and "target=0.3825" in res.output
    res = CliRunner().invoke(app, ["recipes", "--parts", "track3-36-muon"])
    assert res.exit_code == 0 and "no parts" in res.output


def test_every_part_module_cites_a_source_and_has_equations():
    for name in catalog.names():
        i = catalog.info(name)
        assert i.source and i.summary, name
        doc = __import__(i.module, fromlist=["x"]).__doc__
        assert "<-" in doc or "=" in doc, name  # its equations


def test_parts_modules_import_only_torch_stdlib_and_inlinable_optbench_modules():
    """The exporter inlines part modules: no optbench imports except the chain's own (and the NS in muon.py)."""
    import ast
    import importlib
    import inspect
    import sys

    allowed = {"optbench.optim.parts.base", "optbench.optim.muon", "optbench.optim.registry"}
    for name in catalog.names() + ["chain"]:
        mod = importlib.import_module(catalog.info(name).module if name != "chain" else "optbench.optim.parts.chain")
        for node in ast.parse(inspect.getsource(mod)).body:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("optbench"):
                assert node.module in allowed, (mod.__name__, node.module)
            if isinstance(node, ast.Import):
                assert all(a.name.split(".")[0] == "torch" or a.name.split(".")[0] in sys.stdlib_module_names
                           for a in node.names), mod.__name__


@pytest.mark.slow
def test_nano_chain_is_nano_muon_composed(tiny_model):
    """The chain's default recipe on nano (Muon as parts) moves the nano model as the zoo's Muon recipe does."""
    import copy

    from optbench.optim.groups import build_optimizers

    models = [tiny_model, copy.deepcopy(tiny_model)]
    before = {n: p.detach().clone() for n, p in tiny_model.named_parameters()}
    opts = [build_optimizers(m, load_recipe(r)) for m, r in zip(models, ("nano-chain", "nano-muon"))]
    x = torch.randint(0, 64, (2, 16), generator=torch.Generator().manual_seed(0))
    for _ in range(3):
        for m, os_ in zip(models, opts):
            m(x[:, :-1], x[:, 1:]).backward()
            for o in os_:
                o.step()
            m.zero_grad(set_to_none=True)
    a, b = (dict(m.named_parameters()) for m in models)
    worst = max((a[n] - b[n]).abs().max().item() for n in a)
    assert worst <= 1e-5, worst  # fp32 rounding: the zoo batches Newton-Schulz over same-shape matrices, the chain not
    assert not torch.equal(a["blocks.0.mlp.fc.weight"], before["blocks.0.mlp.fc.weight"])  # the chain did step
