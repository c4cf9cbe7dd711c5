"""Name -> optimizer class registry that the zoo fills and the harness, CLI and exporter read."""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass, field

import torch

from optbench.errors import OptbenchError


@dataclass(frozen=True)
class OptimizerInfo:
    """What the registry knows about one optimizer."""

    name: str
    cls: type[torch.optim.Optimizer]
    family: str  # the module under optbench.optim that defines it, e.g. "muon" (derived: family_of)
    reference: str  # paper and official code (repo@commit path) it follows
    matrix_only: bool = False  # True: only for >=2-D hidden matrices; the rest goes to an aux optimizer
    aliases: tuple[str, ...] = ()
    notes: str = ""
    extra: dict = field(default_factory=dict)

    def defaults(self) -> dict:
        """Constructor defaults, read from the class signature (params excluded)."""
        sig = inspect.signature(self.cls.__init__)
        return {
            k: v.default
            for k, v in sig.parameters.items()
            if k not in ("self", "params") and v.default is not inspect.Parameter.empty
        }


_REGISTRY: dict[str, OptimizerInfo] = {}
_ALIASES: dict[str, str] = {}


def family_of(module: str) -> str | None:
    """The family of a registering module: its name relative to optbench.optim (`optbench.optim.muon` -> "muon"),
    the module the exporter inlines. None for a module outside the zoo (tests, user code)."""
    prefix = __name__.rsplit(".", 1)[0] + "."  # "optbench.optim."
    return module[len(prefix):] if module.startswith(prefix) else None


def register(
    name: str,
    cls: type[torch.optim.Optimizer],
    *,
    reference: str,
    matrix_only: bool = False,
    aliases: tuple[str, ...] = (),
    notes: str = "",
    family: str | None = None,
) -> None:
    """Add an optimizer under a lower-case name (and aliases).

    The family is the zoo module that calls register (family_of; AdamW's is "adamw", whose class is torch's): a
    zoo optimizer never states it. `family` is only for a registration from outside optbench.optim (a test's
    optimizer), which the exporter cannot inline.
    """
    key = name.lower()
    if key in _REGISTRY or key in _ALIASES:
        raise ValueError(f"optimizer {name!r} registered twice")
    caller = sys._getframe(1).f_globals.get("__name__", "")
    derived = family_of(caller)
    if derived is not None and family is not None and family != derived:
        raise ValueError(f"optimizer {name!r}: family {family!r} is not its module {derived!r} (leave family out)")
    if derived is None and family is None:
        raise ValueError(f"optimizer {name!r}: registered from {caller!r}, outside optbench.optim; "
                         "pass family=... (or move it into the zoo)")
    _REGISTRY[key] = OptimizerInfo(key, cls, derived or family, reference, matrix_only, tuple(aliases), notes)
    for a in aliases:
        _ALIASES[a.lower()] = key


def _resolve(name: str) -> str:
    key = name.lower()
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        raise OptbenchError(f"--optimizer: unknown optimizer {name!r}; known: {', '.join(names())}")
    return key


def info(name: str) -> OptimizerInfo:
    """The registry entry for a name or alias; OptbenchError if unknown."""
    return _REGISTRY[_resolve(name)]


def get(name: str) -> type[torch.optim.Optimizer]:
    """The optimizer class for a name or alias; OptbenchError if unknown."""
    return info(name).cls


def names() -> list[str]:
    """All registered names, sorted."""
    return sorted(_REGISTRY)


def registered() -> list[OptimizerInfo]:
    """Every registry entry, sorted by name."""
    return [_REGISTRY[k] for k in names()]
