"""The optimizer zoo: each optimizer a torch.optim.Optimizer, registered by name.

    from optbench.optim import get, names, SOAP
    opt = get("muon")(matrices, lr=0.025, weight_decay=0.05)

Every module of this package is an optimizer module that registers its optimizers on import (registry.register),
except the machinery (INFRASTRUCTURE) and private helpers (a name starting with `_`); a subpackage is imported
as a whole (its __init__ imports what registers). Importing the package imports them all, so adding an
optimizer is adding its module: no list to edit. Each registered class is also an attribute of this package
(`optbench.optim.SOAP`).
"""

from __future__ import annotations

import importlib
import pkgutil

from optbench.optim.registry import OptimizerInfo, get, info, names, register, registered

#: modules of this package that are not optimizers (the registry, recipes, the parameter split, the loop protocol)
INFRASTRUCTURE = frozenset({"registry", "recipe", "groups", "protocol"})


def optimizer_modules(packages: bool = False) -> list[str]:
    """The optimizer modules of the zoo (file names without .py), sorted; with `packages`, its subpackages too."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__)
                  if (packages or not m.ispkg) and not m.name.startswith("_") and m.name not in INFRASTRUCTURE)


for _module in optimizer_modules(packages=True):
    importlib.import_module(f"{__name__}.{_module}")


def __getattr__(name: str):
    """`optbench.optim.Muon`: the registered class of that name."""
    for i in registered():
        if i.cls.__name__ == name:
            return i.cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["get", "info", "names", "register", "registered", "OptimizerInfo", "INFRASTRUCTURE",
           "optimizer_modules", *sorted({i.cls.__name__ for i in registered()})]
