"""The reference-trajectory protocol ("toy-synthetic-grad-v1") as a reusable test helper.

See ``../shared/reference_trajectories/README.md``: three float32 tensors drawn from ``torch.manual_seed(0)``,
a fresh generator ``1000 + t`` per step producing ``noise + 0.1 * param`` as a NEW gradient tensor for every
parameter, ``torch.manual_seed(1234)`` right after the optimizer is built, and the parameters compared with the
stored ones after every step.

Use from a test module inside ``tests/optim`` with a relative import::

    from .trajectory import load_reference, max_abs_deviation

    ref = load_reference(trajectories_dir, "lion")
    devs = max_abs_deviation(ref, lambda params: Lion(params, **ref["hparams"]["explicit"]))
    assert max(devs) <= 1e-6

``run_trajectory`` is the general form: per-step hooks (Sophia's Hessian update, schedule-free's ``train()``)
and extra stored sequences (schedule-free's ``x_after_step`` / ``z_after_step``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Mapping

import torch

SHAPES: dict[str, tuple[int, ...]] = {"w1": (64, 32), "w2": (32, 64), "b": (32,)}
ORDER = ("w1", "w2", "b")
NUM_STEPS = 20

Params = dict[str, torch.nn.Parameter]
Grads = dict[str, torch.Tensor]
# hook(opt, t, params, grads): grads are the synthetic gradients of step t (already the ones set in p.grad)
Hook = Callable[[torch.optim.Optimizer, int, Params, Grads], None]
# probe(opt, params) -> {name: tensor} compared with ref[key][t]
Probe = Callable[[torch.optim.Optimizer, Params], Mapping[str, torch.Tensor]]


def load_reference(trajectories_dir: Path, name: str) -> dict:
    """Load ``<name>.pt`` from the reference folder."""
    return torch.load(Path(trajectories_dir) / f"{name}.pt", weights_only=True)


def initial_params(names: Iterable[str] = ORDER, dtype: torch.dtype = torch.float32) -> Params:
    """The protocol's parameters: always draw w1, w2, b in order from seed 0, keep the requested names."""
    torch.manual_seed(0)
    init = {n: torch.randn(*SHAPES[n]) * 0.1 for n in ORDER}
    return {n: torch.nn.Parameter(init[n].clone().to(dtype)) for n in names}


def synthetic_grads(t: int, params: Params) -> Grads:
    """Step t's gradients: fresh generator 1000+t, all three noises drawn in order, + 0.1 * current param.

    The gradient is computed in float32 from the current value of the parameter and then cast to the
    parameter's dtype, so a bf16 run sees the same stream up to that cast.
    """
    gen = torch.Generator().manual_seed(1000 + t)
    grads: Grads = {}
    for n in ORDER:
        noise = torch.randn(SHAPES[n], generator=gen)
        if n in params:
            p = params[n].detach()
            grads[n] = (noise + 0.1 * p.float()).to(p.dtype)
    return grads


def run_trajectory(
    ref: Mapping,
    make_optimizer: Callable[[list[torch.nn.Parameter]], torch.optim.Optimizer],
    *,
    before_first_step: Callable[[torch.optim.Optimizer], None] | None = None,
    after_step: Hook | None = None,
    step_kwargs: Mapping | None = None,
    extra: Mapping[str, Probe] | None = None,
    num_steps: int = NUM_STEPS,
    dtype: torch.dtype = torch.float32,
) -> dict[str, list[float]]:
    """Run the protocol with ``make_optimizer([params in file order])``.

    Returns ``{"params_after_step": [per-step max abs deviation], <extra key>: [...]}``, where each deviation
    is the maximum over all compared tensors of ``|ours.float() - reference|``.
    """
    names = list(ref["param_names"])
    params = initial_params(names, dtype)
    opt = make_optimizer([params[n] for n in names])
    torch.manual_seed(1234)
    if before_first_step is not None:
        before_first_step(opt)
    out: dict[str, list[float]] = {"params_after_step": []}
    for key in extra or {}:
        out[key] = []
    for t in range(num_steps):
        grads = synthetic_grads(t, params)
        for n in names:
            params[n].grad = grads[n].clone()  # a new tensor every step, never written in place
        opt.step(**dict(step_kwargs or {}))
        if after_step is not None:
            after_step(opt, t, params, grads)
        out["params_after_step"].append(_max_dev(params, ref["params_after_step"][t]))
        for key, probe in (extra or {}).items():
            out[key].append(_max_dev(probe(opt, params), ref[key][t]))
    return out


def max_abs_deviation(
    ref: Mapping,
    make_optimizer: Callable[[list[torch.nn.Parameter]], torch.optim.Optimizer],
    **kwargs,
) -> list[float]:
    """Per-step max abs deviation of the parameters from ``ref["params_after_step"]`` (see run_trajectory)."""
    return run_trajectory(ref, make_optimizer, **kwargs)["params_after_step"]


def check_initial_state(ref: Mapping) -> None:
    """Assert the rebuilt initial parameters and step-0 gradients equal the file's (the stream is right)."""
    names = list(ref["param_names"])
    params = initial_params(names)
    for n in names:
        assert torch.equal(params[n].detach(), ref["params_initial"][n]), n
    grads = synthetic_grads(0, params)
    for n in names:
        assert torch.equal(grads[n], ref["grads_step0"][n]), n


def _max_dev(ours: Mapping[str, torch.Tensor], theirs: Mapping[str, torch.Tensor]) -> float:
    assert set(ours) == set(theirs), (sorted(ours), sorted(theirs))
    return max((ours[n].detach().float() - theirs[n]).abs().max().item() for n in theirs)
