"""Name -> optimizer class registry that the zoo fills and the harness, CLI and exporter read."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import torch

from optbench.errors import OptbenchError


@dataclass(frozen=True)
class OptimizerInfo:
    """What the registry knows about one optimizer."""

    name: str
    cls: type[torch.optim.Optimizer]
    family: str  # module name under optbench.optim, e.g. "muon"
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


def register(
    name: str,
    cls: type[torch.optim.Optimizer],
    *,
    family: str,
    reference: str,
    matrix_only: bool = False,
    aliases: tuple[str, ...] = (),
    notes: str = "",
) -> None:
    """Add an optimizer under a lower-case name (and aliases)."""
    key = name.lower()
    if key in _REGISTRY or key in _ALIASES:
        raise ValueError(f"optimizer {name!r} registered twice")
    _REGISTRY[key] = OptimizerInfo(key, cls, family, reference, matrix_only, tuple(aliases), notes)
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
