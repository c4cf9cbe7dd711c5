"""The parts catalog: every part by name, the one canonical order a chain runs them in, and where each plugs in.

    from optbench.optim.parts import catalog
    catalog.names()                            # all part names, in canonical order
    catalog.info("hyperball").source          # where it comes from (entry, PR, paper)
    catalog.chain_parts({"momentum": {}, "orthogonalize": {"ns_dtype": "float32"}})  # -> [Momentum(), ...]

Stages: chain stages (base, transform, post, apply; see ``base.py``) build a ``Chain``; "init" parts change the
model once after the track's init; "schedule" parts set group hyperparameters every step; "outer" wraps all
optimizers; "readout" changes what evaluation sees.
A recipe names its parts in ``[parts.NAME]`` tables; their order in the file does not matter, this one does.
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass
from typing import Any

from optbench.optim.parts.adam import Adam
from optbench.optim.parts.aspect_scale import AspectScale
from optbench.optim.parts.base import STAGES as CHAIN_STAGES
from optbench.optim.parts.base import Part
from optbench.optim.parts.cautious_wd import CautiousWeightDecay
from optbench.optim.parts.cgi_gains import CGIGains
from optbench.optim.parts.contra_muon import ContraMuon
from optbench.optim.parts.depth_scale import DepthScale
from optbench.optim.parts.ema_nesterov import EMANesterovPart
from optbench.optim.parts.hyperball import Hyperball
from optbench.optim.parts.init_scale import InitScale
from optbench.optim.parts.momentum import Momentum
from optbench.optim.parts.momentum_schedule import MomentumSchedule
from optbench.optim.parts.normuon import NorMuonVariance
from optbench.optim.parts.orthogonalize import Orthogonalize
from optbench.optim.parts.powercool import PowerCool
from optbench.optim.parts.psgd_kron import PSGDKron
from optbench.optim.parts.radial_brake import RadialBrake
from optbench.optim.parts.radius_pin import RadiusPin
from optbench.optim.parts.row_floor import RowFloor
from optbench.optim.parts.shampoo import Shampoo
from optbench.optim.parts.sign import Sign
from optbench.optim.parts.soap import SoapPrecondition
from optbench.optim.parts.split_cooldown import SplitCooldown
from optbench.optim.parts.tail_ema import TailEMAPart
from optbench.optim.parts.uw_floor import UWFloor
from optbench.optim.parts.weight_decay import WeightDecay

# The canonical order: a chain runs its parts in this order, whatever order a recipe lists them in.
ORDER: tuple[type[Part], ...] = (
    Momentum, Adam, PSGDKron, Shampoo,                                 # base
    Sign, SoapPrecondition, Orthogonalize, ContraMuon, AspectScale,   # transforms ...
    NorMuonVariance, RadialBrake, UWFloor, RowFloor,                   # ... (floors last)
    WeightDecay, CautiousWeightDecay,                                  # posts
    Hyperball, RadiusPin,                                              # apply
    InitScale, DepthScale, CGIGains,                                   # init (after the track's init)
    PowerCool, SplitCooldown, MomentumSchedule,                        # schedules
    EMANesterovPart,                                                   # outer
    TailEMAPart,                                                       # readout
)
_BY_NAME: dict[str, type[Part]] = {c.name: c for c in ORDER}
GLOBAL_STAGES = ("init", "schedule", "outer", "readout")


@dataclass(frozen=True)
class PartInfo:
    name: str
    cls: type[Part]
    stage: str
    summary: str  # the module docstring's first line
    source: str  # the module docstring's "Source:" paragraph
    knobs: dict[str, Any]
    module: str


def _doc_parts(cls: type[Part]) -> tuple[str, str]:
    doc = inspect.getdoc(sys.modules[cls.__module__]) or ""
    paras = [" ".join(x.split()) for x in doc.split("\n\n")]
    summary = paras[0] if paras else ""
    source = next((p[p.index("Source:") + len("Source:"):].strip() for p in paras if "Source:" in p), "")
    return summary, source


def names() -> list[str]:
    return [c.name for c in ORDER]


def info(name: str) -> PartInfo:
    """A part's catalog entry; ValueError naming the known parts for an unknown name."""
    cls = _BY_NAME.get(name)
    if cls is None:
        raise ValueError(f"unknown part {name!r}; known: {', '.join(names())}")
    summary, source = _doc_parts(cls)
    return PartInfo(name, cls, cls.stage, summary, source, dict(cls.knobs), cls.__module__)


def require(name: str, where: str) -> PartInfo:
    """``info(name)``, or an OptbenchError ``"WHERE: unknown part ..."`` for the command line."""
    from optbench.errors import OptbenchError

    try:
        return info(name)
    except ValueError as e:
        raise OptbenchError(f"{where}: {e}") from None


def _sorted(spec: dict[str, dict]) -> list[tuple[type[Part], dict]]:
    items = []
    for name, knobs in spec.items():
        items.append((info(name).cls, dict(knobs or {})))
    return sorted(items, key=lambda x: ORDER.index(x[0]))


def instantiate(spec: dict[str, dict], stages: tuple[str, ...]) -> list[Part]:
    """Parts of the given stages from {name: knobs}, in canonical order (ValueError for a part of another stage)."""
    out = []
    for cls, knobs in _sorted(spec):
        if cls.stage not in stages:
            raise ValueError(f"part {cls.name} ({cls.stage}) cannot be used here (allowed stages: {', '.join(stages)})")
        out.append(cls(**knobs))
    return out


def chain_parts(spec: dict[str, dict]) -> list[Part]:
    """The chain-stage parts of a spec as instances, in canonical order (global parts are skipped)."""
    return instantiate({n: k for n, k in spec.items() if info(n).stage in CHAIN_STAGES}, CHAIN_STAGES)


def global_parts(spec: dict[str, dict]) -> list[Part]:
    """The schedule, outer and readout parts of a spec as instances, in canonical order."""
    return instantiate({n: k for n, k in spec.items() if info(n).stage in GLOBAL_STAGES}, GLOBAL_STAGES)


def check_spec(spec: dict[str, dict], *, chain: bool, allow_global: bool, where: str = "parts") -> None:
    """ValueError (naming ``where.NAME``) for an unknown part or knob, a part in the wrong place, or a chain
    that is not one (no base, two applies). ``chain``: the optimizer is "chain", so chain-stage parts are expected."""
    from optbench.optim.parts.chain import check_chain

    for name, knobs in spec.items():
        try:
            i = info(name)
        except ValueError as e:
            raise ValueError(f"{where}.{name}: {e}") from None
        if i.stage in GLOBAL_STAGES and not allow_global:
            raise ValueError(f"{where}.{name}: a {i.stage} part belongs in the recipe's top-level [parts]")
        if i.stage in CHAIN_STAGES and not chain:
            raise ValueError(f"{where}.{name}: a {i.stage} part needs optimizer = \"chain\" "
                             f"(whole zoo optimizers take only init, schedule, outer and readout parts)")
        try:
            i.cls(**dict(knobs or {}))
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}.{name}: {e}") from None
    if chain:
        try:
            check_chain(chain_parts(spec))
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None


def describe(recipe) -> list[dict[str, str]]:
    """One row per part of a recipe (aux chain parts prefixed "aux."): name, stage, knobs (the recipe's values,
    defaults in brackets), summary and source, in canonical order."""
    rows = []
    for prefix, spec in [("", recipe.parts)] + ([("aux.", recipe.aux.parts)] if recipe.aux is not None else []):
        for cls, knobs in _sorted(spec):
            i = info(cls.name)
            shown = []
            for k, default in i.knobs.items():
                if k in knobs and knobs[k] != default:
                    shown.append(f"{k}={knobs[k]!r} [{default!r}]")
                else:
                    shown.append(f"{k}={default!r}")
            rows.append({"part": prefix + i.name, "stage": i.stage, "knobs": ", ".join(shown),
                         "summary": i.summary, "source": i.source})
    return rows
