"""The one decision "this val loss reached the target", shared by the tracks, the loop and the statistics.

A leaf module (no torch, no other optbench import) so the results layer can use it without loading the model;
`optbench.tracks.below_target` and `Track.reached` are this function.
"""

from __future__ import annotations

import math


def below_target(val_loss: float | None, target: float) -> bool:
    """The single decision "this val loss reached the target": finite and strictly below it (upstream: `< 3.28`)."""
    return val_loss is not None and math.isfinite(val_loss) and val_loss < target


__all__ = ["below_target"]
