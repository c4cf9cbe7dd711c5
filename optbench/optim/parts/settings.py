"""``--set parts.NAME=false | true | {table}`` and ``--set parts.NAME.KNOB=VALUE`` (also ``aux.parts...``) on a
recipe's data: how an ablation switches a part off or changes one of its knobs."""

from __future__ import annotations

from typing import Any

from optbench.errors import OptbenchError
from optbench.optim.parts import catalog


def set_part(parts: dict, key: str, value: Any, where: str = "parts") -> None:
    """Apply one setting to a recipe's parts dict in place. ``key`` is what follows ``parts.``."""
    name, _, knob = key.partition(".")
    try:
        info = catalog.info(name)
    except ValueError as e:
        raise OptbenchError(f"--set {where}.{key}: {e}") from None
    if not knob:
        if value is False:
            if name not in parts:
                raise OptbenchError(f"--set {where}.{name}=false: the recipe has no part {name!r} "
                                    f"(its parts: {', '.join(parts) or 'none'})")
            del parts[name]
        elif value is True:
            parts.setdefault(name, {})
        elif isinstance(value, dict):
            parts[name] = {**parts.get(name, {}), **value}
        else:
            raise OptbenchError(f"--set {where}.{name}: give true, false or a table of knobs, got {value!r}")
        return
    if knob not in info.knobs:
        raise OptbenchError(f"--set {where}.{key}: part {name} has no knob {knob!r}; "
                            f"knobs: {', '.join(info.knobs) or 'none'}")
    parts.setdefault(name, {})[knob] = value
