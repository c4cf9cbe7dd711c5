"""Which implementations bench/optim_step.py races against each zoo optimizer, at the same settings.

A ``Contest`` is one zoo optimizer at one setting (the cpu-track recipe's hyperparameters where a recipe exists)
with its counterparts: ``torch.optim`` (foreach, fused), pytorch_optimizer and HeavyBall (eager and compiled,
``torch.compile`` through HeavyBall's own switch). The peers are optional (``pip install optbench[bench]``);
a missing one is left out with a note. ``verdict=False`` marks rows whose peers cannot run the zoo's settings
(they are shown for information, not judged).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import math
import warnings
from dataclasses import dataclass, field
from typing import Callable

import torch

Make = Callable[[list[torch.Tensor]], torch.optim.Optimizer]


@dataclass
class Impl:
    label: str
    make: Make
    kind: str = "peer"  # "zoo" (this checkout), "before" (an older checkout, --before) or "peer"
    compiled: bool = False  # HeavyBall with its torch.compile switch on (else forced eager)
    cadence: int = 1  # steps per preconditioner cycle (timing windows cover whole cycles)


@dataclass
class Contest:
    title: str
    zoo: str  # registry name
    settings: dict
    impls: list[Impl] = field(default_factory=list)
    verdict: bool = True
    note: str = ""


def _optional(name: str):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module(name)
    except ImportError:
        return None


PO = _optional("pytorch_optimizer")
HB = _optional("heavyball")


@contextlib.contextmanager
def heavyball_compile(enabled: bool):
    """HeavyBall compiles its kernels unless ``heavyball.utils.compile_mode`` is None; set it for one step."""
    utils = importlib.import_module("heavyball.utils")
    saved = utils.compile_mode
    utils.compile_mode = (saved or "max-autotune-no-cudagraphs") if enabled else None
    try:
        yield
    finally:
        utils.compile_mode = saved


def _muon_group(ps):  # pytorch_optimizer's Muon family takes groups flagged use_muon
    return [dict(params=ps, use_muon=True)]


def _heavyball(label: str, make: Make, cadence: int = 1) -> list[Impl]:
    if HB is None:
        return []
    return [Impl(f"heavyball {label}", make, cadence=cadence),
            Impl(f"heavyball {label} (compiled)", make, compiled=True, cadence=cadence)]


def _po(label: str, make: Make, cadence: int = 1) -> list[Impl]:
    return [] if PO is None else [Impl(f"pytorch_optimizer {label}", make, cadence=cadence)]


# the cpu-track recipes' hyperparameters (optbench/optim/recipes/cpu-*.toml)
ADAMW = dict(lr=0.006, betas=(0.9, 0.95), eps=1e-10, weight_decay=0.1)
MUON = dict(lr=0.04, weight_decay=0.05, momentum=0.95)
ADAMUON = dict(lr=0.006, weight_decay=0.1, momentum=0.95)
LION = dict(lr=0.0006, betas=(0.9, 0.99), weight_decay=0.3)
ADEMAMIX = dict(lr=0.006, betas=(0.9, 0.95, 0.999), alpha=2.0, beta3_warmup=400, alpha_warmup=400, weight_decay=0.1)
MARS = dict(lr=0.006, betas=(0.95, 0.99), gamma=0.025, weight_decay=0.1)
SF = dict(lr=0.01, betas=(0.9, 0.95), weight_decay=0.1, warmup_steps=30)
SOPHIA = dict(lr=0.0006, betas=(0.965, 0.99), rho=0.04, weight_decay=0.1, hessian_interval=10, estimator="minibatch",
              batch_size=2048)
SHAMPOO = dict(lr=0.006, betas=(0.9, 0.95), epsilon=1e-8, weight_decay=0.1, precondition_frequency=10, grafting="adam",
               grafting_beta2=0.95, grafting_epsilon=1e-8)
SOAP = dict(lr=0.006, betas=(0.95, 0.95), weight_decay=0.01, precondition_frequency=10)
KRON = dict(lr=0.002, weight_decay=0.1)
F32, BF16 = torch.float32, torch.bfloat16


UPSTREAM_ROUNDING = ("upstream's bf16 arithmetic (a rounding after every operation, kept by default for bit-exact "
                     "conformance) costs 5 elementwise passes per NS step that the peers fold into their products")
NOT_FP32 = "pytorch_optimizer runs NS in bf16 only: not the same settings (the recipe's own cost)"
PO_ADAMUON = ("pytorch_optimizer's AdaMuon orthogonalises the plain momentum (no nesterov, no sign) and bias-corrects "
              "v: the zoo's AdaMuon at those settings (the reference's nesterov + sign cost two passes more)")


def _muon_family() -> list[Contest]:
    out = []
    for title, ns, steps, coeffs in [("5-step NS bf16", dict(ns_coefficients="tuned5"), 5, "original"),
                                     ("track-3 12-step NS bf16", {}, 12, (2.0, -1.5, 0.5))]:
        for fused in (True, False):
            name = f"Muon, {title}, " + ("fused products (as the peers)" if fused else "upstream rounding (default)")
            c = Contest(name, "muon", {**MUON, **ns, **({"ns_fused": True} if fused else {})}, verdict=fused,
                        note="" if fused else UPSTREAM_ROUNDING)
            c.impls += _po("Muon", lambda ps, s=steps, k=coeffs: PO.Muon(
                _muon_group(ps), lr=0.04, momentum=0.95, weight_decay=0.05, ns_steps=s, ns_coeffs=k, foreach=True))
            if steps == 5 and fused:
                c.impls += _heavyball("Muon", lambda ps: HB.Muon(ps, lr=0.04, betas=(0.95, 0.99), weight_decay=0.05))
                c.note = "HeavyBall's NS: its own 5 per-step quintics (the zoo's 'medium' preset), same cost"
            out.append(c)
    recipe = Contest("Muon as the cpu recipe (12-step NS fp32)", "muon", {**MUON, "ns_dtype": F32}, verdict=False,
                     note=NOT_FP32)
    recipe.impls += _po("Muon", lambda ps: PO.Muon(_muon_group(ps), lr=0.04, momentum=0.95, weight_decay=0.05,
                                                   ns_steps=12, ns_coeffs=(2.0, -1.5, 0.5), foreach=True))
    out.append(recipe)
    for dtype in (BF16, F32):
        tag = "5-step NS bf16, fused products (as the peers)" if dtype is BF16 else "as the cpu recipe (fp32 NS)"
        extra = {"ns_dtype": dtype, **({"ns_fused": True} if dtype is BF16 else {})}
        c = Contest(f"NorMuon, {tag}", "normuon", {**MUON, **extra}, verdict=dtype is BF16)
        c.impls += _po("NorMuon", lambda ps: PO.NorMuon(
            _muon_group(ps), lr=0.04, momentum=0.95, beta2=0.95, weight_decay=0.05, ns_steps=5, foreach=True))
        same = {"nesterov": False, "sign_input": False, "beta2": 0.95} if dtype is BF16 else {}
        title = "AdaMuon, 5-step NS bf16, fused products, no nesterov or sign (as the peer)" if same else f"AdaMuon, {tag}"
        c2 = Contest(title, "adamuon",
                     {**ADAMUON, **extra, **same}, verdict=dtype is BF16,
                     note=PO_ADAMUON if same else "")
        c2.impls += _po("AdaMuon", lambda ps: PO.AdaMuon(
            _muon_group(ps), lr=0.006, betas=(0.95, 0.95), weight_decay=0.1, ns_steps=5, foreach=True))
        if dtype is F32:
            c.note = c2.note = NOT_FP32
        out += [c, c2]
    return out


def _first_order() -> list[Contest]:
    adamw = Contest("AdamW", "adamw", ADAMW)
    adamw.impls += [Impl("torch.optim.AdamW foreach", lambda ps: torch.optim.AdamW(ps, **ADAMW, foreach=True)),
                    Impl("torch.optim.AdamW fused", lambda ps: torch.optim.AdamW(ps, **ADAMW, fused=True))]
    adamw.impls += _heavyball("AdamW", lambda ps: HB.AdamW(ps, **ADAMW))
    adam_kw = {k: v for k, v in ADAMW.items() if k != "weight_decay"}
    adam = Contest("Adam", "adam", adam_kw)
    adam.impls += [Impl("torch.optim.Adam foreach", lambda ps: torch.optim.Adam(ps, **adam_kw, foreach=True)),
                   Impl("torch.optim.Adam fused", lambda ps: torch.optim.Adam(ps, **adam_kw, fused=True))]
    lion = Contest("Lion", "lion", LION)
    lion.impls += _po("Lion", lambda ps: PO.Lion(ps, **LION, foreach=True))
    ademamix = Contest("AdEMAMix", "ademamix", ADEMAMIX)
    ademamix.impls += _po("AdEMAMix", lambda ps: PO.AdEMAMix(
        ps, lr=0.006, betas=(0.9, 0.95, 0.999), alpha=2.0, t_alpha_beta3=400, weight_decay=0.1, weight_decouple=True,
        foreach=True))
    ademamix.impls += _heavyball("AdEMAMix", lambda ps: HB.AdEMAMix(ps, **ADEMAMIX))
    mars = Contest("MARS", "mars", MARS)
    mars.impls += _po("MARS", lambda ps: PO.MARS(ps, **MARS, mars_type="adamw"))
    sf = Contest("Schedule-free AdamW", "adamw-schedulefree", SF)
    sf.impls += _po("ScheduleFreeAdamW", lambda ps: PO.ScheduleFreeAdamW(ps, **SF, foreach=True))
    sf.impls += _heavyball("SFAdamW", lambda ps: HB.SFAdamW(ps, **SF, eps=1e-8))
    sophia = Contest("SophiaG (minibatch estimator)", "sophia", SOPHIA, note="no peer implements SophiaG")
    return [adamw, adam, lion, ademamix, _compiled(ademamix), _eager(ademamix), mars, sf, _compiled(sf), _eager(sf),
            sophia]


def _compiled(c: Contest) -> Contest:
    """The same contest with the zoo's compiled update forced on (compiled=True; the default on CUDA and, from
    optim._compiled.CPU_AUTO_MIN_NUMEL elements on, on CPU): its fair opponent is HeavyBall compiled (compile time
    in "first steps", apart)."""
    return Contest(c.title + ", compiled (compiled=True)", c.zoo, {**c.settings, "compiled": True}, list(c.impls),
                   note="compile time apart, in first steps")


def _eager(c: Contest) -> Contest:
    """The same contest with the zoo's eager update forced (compiled=False: cache-sized pieces), shown (not judged)
    for the shape sets where the default compiles."""
    return Contest(c.title + ", eager (compiled=False)", c.zoo, {**c.settings, "compiled": False}, list(c.impls),
                   verdict=False, note="for information: the default row is this one below 4M elements and compiled "
                   "from 4M on")


def _second_order() -> list[Contest]:
    plain = {k: v for k, v in SHAMPOO.items() if not k.startswith("grafting")}
    shampoo = Contest("Shampoo, no grafting (roots every 10)", "shampoo", plain,
                      note="the peers implement other Shampoo variants (blocked / SVD roots)")
    grafted = Contest("Shampoo as the cpu recipe (Adam grafting)", "shampoo", SHAMPOO, verdict=False,
                      note="closest peer setting: ScalableShampoo with RMSprop grafting")
    shampoo.impls += _po("Shampoo", lambda ps: PO.Shampoo(
        ps, lr=0.006, momentum=0.9, weight_decay=0.1, preconditioning_compute_steps=10), cadence=10)
    if PO is not None:
        from pytorch_optimizer.optimizer.utils.graft import LayerWiseGrafting

        for c, graft in ((shampoo, LayerWiseGrafting.NONE), (grafted, LayerWiseGrafting.RMSPROP)):
            c.impls += _po("ScalableShampoo", lambda ps, graft=graft: PO.ScalableShampoo(
                ps, lr=0.006, betas=(0.9, 0.95), weight_decay=0.1, decoupled_weight_decay=True,
                preconditioning_compute_steps=10, start_preconditioning_step=1, block_size=1024,
                graft_type=graft), cadence=10)
    soap = Contest("SOAP (eigenbases refreshed every 10)", "soap", SOAP)
    soap.impls += _po("SOAP", lambda ps: PO.SOAP(ps, **SOAP), cadence=10)
    soap.impls += _heavyball("SOAP", lambda ps: HB.SOAP(
        ps, **SOAP, shampoo_beta=0.95, eps=1e-8, max_precond_dim=10000, merge_dims=False, use_precond_schedule=False),
        cadence=10)
    kron = Contest("PSGD Kron (preconditioner update every step)", "kron", KRON,
                   note="update probability 1.0: the zoo's default schedule for its first 500 steps")
    kron.impls += _po("Kron", lambda ps: PO.Kron(ps, lr=0.002, momentum=0.9, weight_decay=0.1,
                                                 pre_conditioner_update_probability=1.0))
    kron.impls += _heavyball("PSGDKron", lambda ps: HB.PSGDKron(
        ps, lr=0.002, beta=0.9, weight_decay=0.1, preconditioner_update_probability=1.0, max_size_triangular=8192,
        merge_dims=False))
    return [soap, kron, shampoo, grafted]


def contests(zoo, before=None) -> list[Contest]:
    """Every contest, with the zoo's implementation (and the older checkout's, if given) added first."""
    out = _first_order() + _muon_family() + _second_order()
    for c in out:
        cadence = c.settings.get("precondition_frequency", c.settings.get("hessian_interval", 1))
        mine = [Impl("optbench", _as_built(zoo, c, c.settings), kind="zoo", cadence=cadence,
                     compiled=bool(c.settings.get("compiled")))]
        if before is not None:  # settings the older checkout did not have yet (ns_fused) are left out
            mine.append(Impl("optbench (before)", _as_built(before, c, _known(before, c)), kind="before",
                             cadence=cadence))
        c.impls = mine + c.impls
    return out


def _as_built(zoo, c: Contest, settings: dict) -> Make:
    """The zoo's optimizer as build_optimizers constructs it: AdamW/Adam with torch's fused kernel where that
    checkout's rule (optim.adamw.fused_is_same_update, if it has one) says it is the same update."""
    rule = getattr(importlib.import_module(zoo.__name__ + ".adamw"), "fused_is_same_update", None)

    def make(ps):
        kw = dict(settings)
        if c.zoo in ("adamw", "adam") and rule is not None and rule(ps):
            kw.setdefault("fused", True)
        return zoo.get(c.zoo)(ps, **kw)

    return make


def _known(zoo, c: Contest) -> dict:
    params = inspect.signature(zoo.get(c.zoo).__init__).parameters
    return {k: v for k, v in c.settings.items() if k in params}


def window(impls: list[Impl]) -> int:
    """Steps per timing window: a whole number of every implementation's preconditioner cycle."""
    return math.lcm(*(i.cadence for i in impls))
