"""Init scaling: re-draw, scale or zero chosen weights after the track's init (non-zero hidden matrices for the
hyperball, per-module init std).

    for each parameter, in this order:  draw (first matching pattern):  "uniform" = torch's Linear default
                                        U(-1/sqrt(fan_in), 1/sqrt(fan_in));  "normal" = N(0, 1/(3 fan_in)), the
                                        same std
                                        scale (first matching pattern):  W <- c W
                                        zero (any matching pattern):     W <- 0
    patterns are shell-style (fnmatch) over parameter names, e.g. "blocks.*.mlp.proj.weight", "*proj.bias"

Source: track-3 results #4/#5/#8 (PRs #272, #267, #273: Kaiming default x 1.25 attn.proj, x 3.0 mlp.proj,
x 1.5 mlp.fc, proj biases zero), #33 (PR #316: normal with the same per-module stds); #46 zeroes every "proj"
parameter (``if "proj" in name: p.data.zero_()``).
"""

from __future__ import annotations

import fnmatch
import math

import torch

from optbench.optim.parts.base import Part


def _first(name: str, table: dict):
    return next((v for pat, v in table.items() if fnmatch.fnmatchcase(name, pat)), None)


class InitScale(Part):
    """Init part: draw / scale / zero parameters by name pattern (runs once, after the track's init)."""

    name = "init_scale"
    stage = "init"
    knobs = {"draw": {}, "scale": {}, "zero": []}

    @torch.no_grad()
    def init_model(self, model) -> None:
        draw, scale, zero = self.values["draw"], self.values["scale"], self.values["zero"]
        for kind in draw.values():
            if kind not in ("uniform", "normal"):
                raise ValueError(f"init_scale.draw: 'uniform' or 'normal', got {kind!r}")
        for name, p in model.named_parameters():
            kind = _first(name, draw)
            if kind is not None:
                bound = 1 / math.sqrt(p.size(-1))
                if kind == "uniform":
                    p.uniform_(-bound, bound)
                else:
                    p.normal_(0.0, bound / math.sqrt(3))
            c = _first(name, scale)
            if c is not None:
                p.mul_(c)
            if any(fnmatch.fnmatchcase(name, pat) for pat in zero):
                p.zero_()
