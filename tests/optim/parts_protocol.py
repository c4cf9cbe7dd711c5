"""The parts reference protocol ("toy-synthetic-grad-v1-parts"): the shared toy protocol plus a named square
matrix w3, and per-step hooks for loop-level parts (schedules, EMA-Nesterov's look-ahead, the tail-EMA readout).

Described in ``reference_parts/README.md``. The parameters and gradients of w1, w2, b are exactly those of
``../shared/reference_trajectories`` (``trajectory.py``); w3 (32 x 32) is drawn after them from the same
generators, so adding it changes none of the other draws.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

import torch

from .trajectory import ORDER, SHAPES

REF_DIR = Path(__file__).resolve().parent / "reference_parts"
W3_SHAPE = (32, 32)
ALL = ORDER + ("w3",)
NUM_STEPS = 20

Params = dict[str, torch.nn.Parameter]


def initial_params(names: Iterable[str], dtype: torch.dtype = torch.float32) -> Params:
    """w1, w2, b from seed 0 as the shared protocol draws them, then w3; keep the requested names."""
    torch.manual_seed(0)
    init = {n: torch.randn(*SHAPES[n]) * 0.1 for n in ORDER}
    init["w3"] = torch.randn(*W3_SHAPE) * 0.1
    return {n: torch.nn.Parameter(init[n].clone().to(dtype)) for n in names}


def synthetic_grads(t: int, params: Params) -> dict[str, torch.Tensor]:
    """Step t: generator 1000 + t draws the noises of w1, w2, b, w3 in that order; grad = noise + 0.1 * param."""
    gen = torch.Generator().manual_seed(1000 + t)
    out = {}
    for n, shape in [(n, SHAPES[n]) for n in ORDER] + [("w3", W3_SHAPE)]:
        noise = torch.randn(shape, generator=gen)
        if n in params:
            out[n] = noise + 0.1 * params[n].detach()
    return out


class Driver:
    """What one trajectory does per step: ``before(t)`` (look-ahead, before the gradient), ``step(t)`` (schedules
    and optimizer steps), and ``probes`` (extra tensors recorded after each step, e.g. the readout's view)."""

    def __init__(self, step: Callable[[int], None], before: Callable[[int], None] | None = None,
                 probes: dict[str, Callable[[], dict[str, torch.Tensor]]] | None = None):
        self.step, self.before, self.probes = step, before, probes or {}


def run(names: list[str], setup: Callable[[Params], Driver], num_steps: int = NUM_STEPS,
        dtype: torch.dtype = torch.float32) -> dict[str, list]:
    """Drive one trajectory: ``setup(params)`` builds the optimizers, then ``torch.manual_seed(1234)`` (PSGD draws
    from the global generator), then per step t: ``before(t)``, fresh gradients from the current parameters
    (a new tensor each), ``step(t)``, and the parameters and probes are recorded. ``dtype=torch.float64`` is
    the conditioning check of the README (float32 noise cast up)."""
    params = initial_params(names, dtype)
    driver = setup(params)
    torch.manual_seed(1234)
    out: dict[str, list] = {"params_after_step": [], **{k: [] for k in driver.probes}}
    for t in range(num_steps):
        if driver.before is not None:
            driver.before(t)
        grads = synthetic_grads(t, params)
        for n in names:
            params[n].grad = grads[n].clone()
        driver.step(t)
        out["params_after_step"].append({n: params[n].detach().clone() for n in names})
        for key, probe in driver.probes.items():
            out[key].append({n: v.detach().clone() for n, v in probe().items()})
    return out


def max_dev(ours: list[dict[str, torch.Tensor]], ref: list[dict[str, torch.Tensor]]) -> list[float]:
    """Per-step max |ours - ref| over all tensors."""
    assert len(ours) == len(ref)
    return [max((a[n].float() - b[n]).abs().max().item() for n in b) for a, b in zip(ours, ref)]
