"""Which optimizers the leaderboard lists, and which spellings name the same optimizer."""

from __future__ import annotations

from typing import Sequence

# optimizers the leaderboard always lists (with '?' until someone posts a result), besides the zoo's names
WANTED_OPTIMIZERS = ("DistributedShampoo", "PSGD Kron", "Sophia", "Lion")

# spellings that name the same optimizer (normalized: lower case, letters and digits only)
SAME_OPTIMIZER = {"kron": "psgdkron", "psgd": "psgdkron", "sophiag": "sophia", "distributedshampoo": "shampoo"}


def norm_name(name: str) -> str:
    """The key two spellings of one optimizer share: `PSGD Kron`, `kron` -> `psgdkron`."""
    key = "".join(ch for ch in name.lower() if ch.isalnum())
    return SAME_OPTIMIZER.get(key, key)


def listed_optimizers() -> list[str]:
    """The zoo's names plus the wanted external optimizers. Imports the zoo (and torch): a broken optimizer
    module fails here loudly rather than silently emptying the zoo's rows."""
    from optbench import optim

    return list(optim.names()) + list(WANTED_OPTIMIZERS)


def display_names(seen: Sequence[str], listed: Sequence[str]) -> dict[str, str]:
    """Normalized optimizer key -> display name: the first spelling in `seen` (the results' optimizers, oldest
    first), else the listed one (the wanted list's "PSGD Kron" over the zoo's "kron")."""
    out: dict[str, str] = {}
    for name in seen:
        out.setdefault(norm_name(name), name)
    for name in sorted(listed, key=lambda x: x in WANTED_OPTIMIZERS, reverse=True):
        out.setdefault(norm_name(name), name)  # the wanted list's spelling ("PSGD Kron") over the zoo's ("kron")
    return out
