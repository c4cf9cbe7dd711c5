"""The part protocol: what one piece of a composed optimizer (``optbench.optim.parts.chain.Chain``) may do.

A chain updates each parameter W with gradient g in five stages, in this order:

    u <- base.direction(ctx)                 exactly one base: momentum, adam, psgd_kron ...
    u <- t.transform(u, ctx)                 transforms in catalog order: soap, orthogonalize, floors ...
    post.before(u, ctx)                      posts read (W, u) before the step: weight decay, cautious decay
    apply.apply(u, ctx)                      at most one apply: W <- W - lr u by default; hyperball, radius pin
    post.after(ctx);  part.finish(ctx)       posts act after the step; finish updates statistics (SOAP)

A part's knobs are constructor keywords with defaults (``knobs``); the chain stores them in every param group
as ``"<part>.<knob>"`` so that a group override or a schedule can change one for some parameters only.
Parts of the other stages act outside the chain (``optbench.optim.parts.build``): "init" parts change the model
once after the track's init (``init_model(model)``), "schedule" parts set group values every step, the "outer"
part wraps every optimizer, the "readout" part changes what evaluation sees.
Torch and the standard library only: the exporter inlines this module into single-file scripts.
"""

from __future__ import annotations

import math

from typing import Any, ClassVar

import torch

STAGES = ("base", "transform", "post", "apply")


class StepContext:
    """What every part sees for one parameter in one step. ``memo`` passes values between parts."""

    __slots__ = ("p", "grad", "state", "group", "step", "lr", "memo")

    def __init__(self, p: torch.Tensor, grad: torch.Tensor, state: dict, group: dict, step: int):
        self.p, self.grad, self.state, self.group, self.step = p, grad, state, group, step
        self.lr = group["lr"]
        self.memo: dict[str, Any] = {}


class Part:
    """Base class of chain parts. Subclasses set ``name``, ``stage``, ``knobs`` and override their stage's hook.

    Contract: ``direction`` returns a tensor the chain owns (never a state buffer); a transform may modify its
    input in place (it is owned) and returns the next update; ``check_group`` raises ValueError naming the knob.
    """

    name: ClassVar[str] = ""
    stage: ClassVar[str] = ""
    knobs: ClassVar[dict[str, Any]] = {}
    matrix_only: ClassVar[bool] = False  # True: parameters must be 2-D
    signed: ClassVar[frozenset[str]] = frozenset()  # number knobs that may be negative (the others must be >= 0)

    def __init__(self, **values: Any):
        unknown = sorted(set(values) - set(self.knobs))
        if unknown:
            raise ValueError(f"part {self.name}: unknown knob(s) {', '.join(unknown)}; "
                             f"knobs: {', '.join(sorted(self.knobs)) or 'none'}")
        for k, v in values.items():
            _check_kind(self.name, k, v, self.knobs[k], k in self.signed)
        self.values = {**self.knobs, **values}

    def __repr__(self) -> str:
        changed = ", ".join(f"{k}={v!r}" for k, v in self.values.items() if v != self.knobs[k])
        return f"{type(self).__name__}({changed})"

    def defaults(self) -> dict[str, Any]:
        """This part's knobs as param-group entries ``"<name>.<knob>"``."""
        return {f"{self.name}.{k}": v for k, v in self.values.items()}

    def knob(self, group: dict, key: str) -> Any:
        return group[f"{self.name}.{key}"]

    def check_group(self, group: dict) -> None:
        """Validate this part's knob values in one param group (ValueError naming the knob)."""
        if self.matrix_only:
            for p in group["params"]:
                if p.ndim != 2:
                    raise ValueError(f"part {self.name}: only 2-D parameters are supported, got shape "
                                     f"{tuple(p.shape)}; give vectors to an aux optimizer")

    def direction(self, ctx: StepContext) -> torch.Tensor:  # base
        raise NotImplementedError(f"part {self.name} is not a base")

    def transform(self, u: torch.Tensor, ctx: StepContext) -> torch.Tensor:  # transform
        raise NotImplementedError(f"part {self.name} is not a transform")

    def before(self, u: torch.Tensor, ctx: StepContext) -> None:  # post, before the step
        pass

    def apply(self, u: torch.Tensor, ctx: StepContext) -> None:  # apply
        raise NotImplementedError(f"part {self.name} is not an apply part")

    def after(self, ctx: StepContext) -> None:  # post, after the step
        pass

    def finish(self, ctx: StepContext) -> None:  # any stage, after the parameter is updated
        pass


def check_range(part: str, key: str, value: Any, lo: float, hi: float = float("inf"), *,
                hi_open: bool = False) -> None:
    """ValueError unless lo <= value <= hi (or < hi when hi_open), naming ``part.key``."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and lo <= value and (
        value < hi if hi_open else value <= hi)
    if not ok:
        bound = f">= {lo}" if hi == float("inf") else f"in [{lo}, {hi})" if hi_open else f"in [{lo}, {hi}]"
        raise ValueError(f"{part}.{key}: must be a number {bound}, got {value!r}")


def _check_kind(part: str, key: str, value: Any, default: Any, signed: bool) -> None:
    """ValueError unless a knob value has its default's kind: a bool, a finite number (>= 0 unless signed; a
    whole number where the default is one; a step count where the default is None), a name, a table, a list."""
    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and (signed or v >= 0)

    if isinstance(default, bool):
        ok, want = isinstance(value, bool), "true or false"
    elif isinstance(default, int) or default is None:
        ok = value is None if default is None and value is None else (
            isinstance(value, int) and not isinstance(value, bool) and (signed or value >= 0))
        want = "a whole number" + ("" if signed else " >= 0") + (" (or unset)" if default is None else "")
    elif isinstance(default, float):
        ok, want = number(value), "a finite number" + ("" if signed else " >= 0")
    elif isinstance(default, str):  # a name (the part checks which), or Newton-Schulz coefficients as a list
        ok, want = isinstance(value, (str, list)), "a name"
    else:
        ok, want = isinstance(value, type(default)), f"a {type(default).__name__}"
    if not ok:
        raise ValueError(f"{part}.{key}: must be {want}, got {value!r}")
