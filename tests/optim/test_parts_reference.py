"""Published track-3 entries as recipes vs the entries' own optimizer code, step by step on the toy protocol.

Each ``reference_parts/<entry>.pt`` holds what the entry's code (extracted from its log, run on CPU in float32)
did to the parameters; here the bundled recipe is built by the normal path (``build_optimizers`` on a model
whose parameters are the toy tensors, driven as the training loop drives optimizers) with the toy settings
stored in the file, and compared after every step. Protocol, adaptations and tolerances:
``reference_parts/README.md``.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from optbench.optim import protocol
from optbench.optim.groups import build_optimizers
from optbench.optim.parts.settings import set_part
from optbench.optim.recipe import Recipe, load_recipe
from optbench.tracks import lr_multiplier

from . import parts_protocol as P

ATOL = 1e-6  # ~10x the float64 gap of an independent float32 implementation (../shared README); see README here

# entry file -> (recipe, toy names of w1, w2, w3, b, settings that give the toy run of the file)
TOY_NAMES = {"w1": "blocks.0.mlp.fc.weight", "w2": "blocks.0.attn.proj.weight", "w3": "blocks.0.attn.q.weight",
             "b": "blocks.0.attn.proj.bias"}
FP32_NS = {"parts.orthogonalize.ns_dtype": "float32"}
CONSTANT_LR = {"cooldown_frac": 0.0, "train_steps": P.NUM_STEPS}
ENTRIES = {
    "adamh_4": ("track3-4-adamh", {**CONSTANT_LR, "parts.split_cooldown": False}),
    "muonh_5": ("track3-5-muonh", {**CONSTANT_LR, **FP32_NS, "parts.split_cooldown": False}),
    "normuonh_8": ("track3-8-normuonh", {**CONSTANT_LR, **FP32_NS, "parts.split_cooldown": False}),
    "skylight_9": ("track3-9-skylight", {**CONSTANT_LR, **FP32_NS, "parts.uw_floor.target": 1.5}),
    "contra_11": ("track3-11-contra-muon", {**CONSTANT_LR, **FP32_NS, "parts.uw_floor.target": 1.5}),
    "spectral_22": ("track3-22-spectral", {**CONSTANT_LR, **FP32_NS}),
    "psgd_kron_h_33": ("track3-33-psgd-kron-h", {**CONSTANT_LR, "parts.split_cooldown": False}),
    "ema_nesterov_39": ("track3-39-ema-nesterov", {**FP32_NS, "train_steps": P.NUM_STEPS, "aux.scalar_lr": 0.01,
                                                   "parts.ema_nesterov.start": 3, "parts.ema_nesterov.stop": 15}),
    "record_46": ("track3-46-record", {
        **FP32_NS, "train_steps": P.NUM_STEPS,
        "parts.powercool.end": 20, "parts.powercool.matrix_c": 0.0375 / 12 ** 1.2,
        "parts.powercool.scalar_c": 0.01 / 8 ** 1.2,
        "parts.momentum_schedule.warmup": 5, "parts.momentum_schedule.cooldown": 5,
        "parts.momentum_schedule.horizon": 20,
        "parts.ema_nesterov.start": 3, "parts.ema_nesterov.stop": 15,
        "parts.tail_ema.start": 8, "parts.tail_ema.stop": 20, "parts.tail_ema.tau": 4.0,
        "parts.row_floor.target": 1.6, "parts.cautious_wd.wd": 0.5,
        "parts.soap.floor_end": 6, "parts.soap.fade_end": 10,
        "aux.overrides": [o for o in load_recipe("track3-46-record").aux.overrides if o.match == "attn.proj.bias"]}),
}


def toy_recipe(name: str, settings: dict) -> Recipe:
    """The bundled recipe with the toy settings (the same keys as `--set`)."""
    data = load_recipe(name).model_dump()
    for key, value in settings.items():
        if key.startswith("parts."):
            set_part(data["parts"], key[len("parts."):], value)
        elif key == "aux.overrides":  # the toy has one aux tensor (b, an attn.proj.bias): only its override
            data["aux"]["overrides"] = [o.model_dump() for o in value]
        elif key.startswith("aux."):
            data["aux"][key[4:]] = value
        else:
            data[key] = value
    return Recipe.model_validate(data)


class NamedParams(nn.Module):
    """Given parameters under dotted names (nested modules), with the roles build_optimizers expects: embed.weight,
    proj.weight (head), vectors (scalar), matrices."""

    def __init__(self, params: dict[str, nn.Parameter]):
        super().__init__()
        for name, p in params.items():
            *path, leaf = name.split(".")
            mod = self
            for part in path:
                if not hasattr(mod, part):
                    mod.add_module(part, nn.Module())
                mod = getattr(mod, part)
            mod.register_parameter(leaf, p)

    def param_roles(self) -> dict[str, str]:
        roles = {"embed.weight": "embed", "proj.weight": "head"}
        return {n: roles.get(n, "matrix" if p.ndim >= 2 else "scalar") for n, p in self.named_parameters()}


def toy_model(params: dict[str, nn.Parameter]) -> NamedParams:
    """The toy tensors under transformer-like names (TOY_NAMES)."""
    return NamedParams({TOY_NAMES[short]: p for short, p in params.items()})


def run_recipe(recipe: Recipe, names: list[str]) -> dict[str, list]:
    """The recipe's optimizers on the toy tensors, driven as train/loop.py drives them."""
    T = recipe.train_steps

    def setup(params):
        opts = build_optimizers(toy_model(params), recipe)

        def step(t):
            eta = lr_multiplier(t, T, recipe.cooldown_frac, recipe.warmup_steps)
            for o in opts:
                for g in o.param_groups:
                    g["lr"] = g["initial_lr"] * eta
            protocol.apply_schedules(opts, t, T)
            for o in opts:
                o.step()

        def readout():
            protocol.set_eval_mode(opts)
            view = {n: p.detach().clone() for n, p in params.items()}
            protocol.set_train_mode(opts)
            return view

        return P.Driver(step, before=lambda t: protocol.before_forward(opts), probes={"eval_after_step": readout})

    return P.run(names, setup)


def _names(ref) -> list[str]:
    names = list(ref["param_names"])
    return names if "b" in names else names + ["b"]  # the aux optimizer needs a parameter; b's noise is drawn anyway


def _same_lapack(ref) -> bool:
    """The file's eigh of a fixed rank-deficient matrix equals ours: eigenbases of null spaces (SOAP's first
    step) are then chosen identically and ill-conditioned tensors can be compared bit for bit."""
    g = torch.randn(16, 8, generator=torch.Generator().manual_seed(7))
    return torch.equal(torch.linalg.eigh(g @ g.T + 1e-30 * torch.eye(16))[1], ref["eigh_probe"])


def _tolerances(ref) -> dict[str, float]:
    """ATOL per tensor; a tensor whose float64 gap shows it ill-conditioned (SOAP's rank-deficient first Gram
    matrix) gets 2x that gap unless this machine makes the same LAPACK choices as the generating one."""
    f64 = ref["observed_tolerance"]["float64_per_tensor"] or {}
    exact = _same_lapack(ref)
    return {n: ATOL if exact or f64.get(n, 0.0) <= 1e-6 else max(ATOL, 2 * f64[n]) for n in ref["param_names"]}


def _check(ours: list[dict], theirs: list[dict], tol: dict[str, float]) -> dict[str, float]:
    worst = {n: max((a[n].float() - b[n]).abs().max().item() for a, b in zip(ours, theirs)) for n in tol}
    bad = {n: (d, tol[n]) for n, d in worst.items() if not d <= tol[n]}
    assert not bad, f"deviation above tolerance (deviation, tolerance): {bad}"
    return worst


@pytest.mark.parametrize("entry", sorted(ENTRIES))
def test_entry_recipe_matches_its_code(entry):
    ref = torch.load(P.REF_DIR / f"{entry}.pt", weights_only=True)
    recipe_name, settings = ENTRIES[entry]
    out = run_recipe(toy_recipe(recipe_name, settings), _names(ref))
    assert len(out["params_after_step"]) == len(ref["params_after_step"]) == P.NUM_STEPS
    tol = _tolerances(ref)
    _check(out["params_after_step"], ref["params_after_step"], tol)
    if "eval_after_step" in ref:  # what evaluation sees (the tail-EMA readout)
        _check(out["eval_after_step"], ref["eval_after_step"], tol)


def test_record_readout_is_exercised():
    """The record file's readout differs from the raw weights after the EMA starts (step 8) and not before."""
    ref = torch.load(P.REF_DIR / "record_46.pt", weights_only=True)
    raw, ev = ref["params_after_step"], ref["eval_after_step"]
    diff = [max((raw[t][n] - ev[t][n]).abs().max().item() for n in raw[t]) for t in range(P.NUM_STEPS)]
    assert all(d == 0.0 for d in diff[:7]) and all(d > 1e-4 for d in diff[8:]), diff


# one parameter per role and aux family, under the names the recipes' overrides match
SCHED_NAMES = {"embed.weight": (8, 4), "proj.weight": (8, 4), "blocks.0.mlp.fc.weight": (4, 4),
               "blocks.0.attn.proj.weight": (4, 4), "blocks.0.attn.q.weight": (4, 4), "blocks.0.norm1.gains": (4,),
               "blocks.0.attn.proj.bias": (4,), "blocks.0.mlp.fc.bias": (4,)}


SCHEDULE_RECIPES = {k: v[0] for k, v in ENTRIES.items()}


@pytest.mark.parametrize("entry", sorted(SCHEDULE_RECIPES))
def test_entry_schedule_matches_its_code(entry):
    """Every group's lr (and #46's momentum) at every step of the real run, vs the entry's own schedule code."""
    ref = torch.load(P.REF_DIR / "schedules.pt", weights_only=True)["entries"][entry]
    recipe = load_recipe(SCHEDULE_RECIPES[entry])
    T = ref["train_steps"]
    assert (recipe.train_steps or T) == T
    model = NamedParams({n: nn.Parameter(torch.ones(shape)) for n, shape in SCHED_NAMES.items()})
    roles = model.param_roles()
    opts = build_optimizers(model, recipe)
    role_of = {id(p): roles[n] for n, p in model.named_parameters()}
    groups = [(role_of[id(g["params"][0])], g) for o in opts[:2] for g in o.param_groups]
    got = {r: [] for r in ref["lr"]}
    mu = []
    for s in range(T):
        eta = lr_multiplier(s, T, recipe.cooldown_frac, recipe.warmup_steps)
        for o in opts:
            for g in o.param_groups:
                g["lr"] = g["initial_lr"] * eta
        protocol.apply_schedules(opts, s, T)
        seen = set()
        for role, g in groups:
            if role not in seen:
                seen.add(role)
                got[role].append(g["lr"])
        if "mu" in ref:
            mu.append(next(g["momentum.mu"] for r, g in groups if r == "matrix"))
    for role, theirs in ref["lr"].items():
        ours = torch.tensor(got[role], dtype=torch.float64)
        rel = ((ours - theirs).abs() / theirs.abs().clamp_min(1e-30)).max().item()
        assert rel <= 1e-12, (role, rel)
    if "mu" in ref:
        assert torch.equal(torch.tensor(mu, dtype=torch.float64), ref["mu"])


def test_record_cgi_gains_match_its_code():
    """The record recipe's cgi_gains part draws the same RMSNorm gains as the record's own init loop."""
    from optbench.optim.parts import catalog

    ref = torch.load(P.REF_DIR / "cgi_gains_46.pt", weights_only=True)
    blocks = nn.ModuleList()
    for _ in range(ref["norm1"].size(0)):
        b = nn.Module()
        for n in ("norm1", "norm2"):
            norm = nn.Module()
            norm.gains = nn.Parameter(torch.ones(ref["norm1"].size(1)))
            b.add_module(n, norm)
        blocks.append(b)
    model = nn.Module()
    model.blocks = blocks
    part = next(p for p in catalog.global_parts(load_recipe("track3-46-record").parts) if p.name == "cgi_gains")
    torch.manual_seed(ref["seed"])
    part.init_model(model)
    assert torch.equal(torch.stack([b.norm1.gains.detach() for b in blocks]), ref["norm1"])
    assert torch.equal(torch.stack([b.norm2.gains.detach() for b in blocks]), ref["norm2"])
