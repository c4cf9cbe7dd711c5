"""First-order zoo vs the official implementations' reference trajectories, every step.

Protocol and tolerances: ../shared/reference_trajectories/README.md. ATOL = 1e-6 for these well-conditioned
files (~10x the float64 gap of every one of them). Hyperparameters come from each file's hparams["explicit"].
"""

from __future__ import annotations

import pytest

from optbench.optim import MARS, AdamWScheduleFree, AdEMAMix, Lion, SophiaG

from .trajectory import check_initial_state, load_reference, max_abs_deviation, run_trajectory

ATOL = 1e-6


def _explicit(ref) -> dict:
    return dict(ref["hparams"]["explicit"])


@pytest.mark.parametrize(
    "name, cls",
    [
        ("lion", Lion),
        ("lion_wd", Lion),
        ("ademamix", AdEMAMix),
        ("ademamix_warmup_wd", AdEMAMix),
        ("mars", MARS),
    ],
)
def test_plain_step_conformance(trajectories_dir, name, cls):
    ref = load_reference(trajectories_dir, name)
    check_initial_state(ref)
    devs = max_abs_deviation(ref, lambda ps: cls(ps, **_explicit(ref)))
    assert len(devs) == 20
    assert max(devs) <= ATOL, devs


def _x_of(opt, params):
    """x = lerp(y, z, 1 - 1/beta1) on a copy: what eval() would put in the tensor (README's definition)."""
    beta1 = opt.param_groups[0]["betas"][0]
    return {n: p.detach().clone().lerp(opt.state[p]["z"], 1 - 1 / beta1) for n, p in params.items()}


@pytest.mark.parametrize("name", ["schedulefree_adamw", "schedulefree_adamw_warmup_wd"])
def test_schedulefree_conformance_y_x_z(trajectories_dir, name):
    ref = load_reference(trajectories_dir, name)
    devs = run_trajectory(
        ref,
        lambda ps: AdamWScheduleFree(ps, **_explicit(ref)),
        before_first_step=lambda opt: opt.train(),
        extra={"x_after_step": _x_of, "z_after_step": lambda opt, ps: {n: opt.state[p]["z"] for n, p in ps.items()}},
    )
    for key in ("params_after_step", "x_after_step", "z_after_step"):
        assert max(devs[key]) <= ATOL, (key, devs[key])


def test_schedulefree_eval_matches_stored_x(trajectories_dir):
    """The real eval()/train() swap, run after every step, reproduces x and returns to y."""
    ref = load_reference(trajectories_dir, "schedulefree_adamw_warmup_wd")
    xs: list[float] = []

    def swap(opt, t, params, grads):
        opt.eval()
        xs.append(max((params[n].detach() - ref["x_after_step"][t][n]).abs().max().item() for n in params))
        opt.train()

    devs = max_abs_deviation(
        ref, lambda ps: AdamWScheduleFree(ps, **_explicit(ref)), before_first_step=lambda o: o.train(), after_step=swap
    )
    assert max(xs) <= ATOL, xs
    # the lerp round trip y -> x -> y is not exact in floating point; it must stay at rounding level
    assert max(devs) <= 1e-5, devs


def _sophia_kwargs(ref) -> tuple[dict, int, int]:
    kw = _explicit(ref)
    return kw, kw.pop("step_bs"), kw.pop("hessian_interval_k")


def test_sophia_gnb_protocol_conformance(trajectories_dir):
    """The loop protocol: hessian_update_due(t) -> put the estimator gradient in p.grad -> update_hessian().
    The file's estimator gradient is a copy of the step's own synthetic gradient (README)."""
    ref = load_reference(trajectories_dir, "sophiag")
    kw, bs, interval = _sophia_kwargs(ref)
    due_at: list[int] = []

    def hook(opt, t, params, grads):
        if opt.hessian_update_due(t):
            due_at.append(t)
            for n, p in params.items():
                p.grad = grads[n].clone()
            opt.update_hessian()

    devs = max_abs_deviation(
        ref, lambda ps: SophiaG(ps, **kw, hessian_interval=interval), after_step=hook, step_kwargs={"bs": bs}
    )
    assert due_at == [4, 9, 14, 19]
    assert max(devs) <= ATOL, devs


def test_sophia_minibatch_estimator_reproduces_file(trajectories_dir):
    """The one-pass variant squares the step's own gradient every interval inside step(); on this protocol
    (estimator gradient = the step's gradient) it must give the same trajectory with no hook at all."""
    ref = load_reference(trajectories_dir, "sophiag")
    kw, bs, interval = _sophia_kwargs(ref)
    made: list[SophiaG] = []

    def make(ps):
        made.append(SophiaG(ps, **kw, hessian_interval=interval, batch_size=bs, estimator="minibatch"))
        return made[-1]

    devs = max_abs_deviation(ref, make)
    assert max(devs) <= ATOL, devs
    assert not any(made[0].hessian_update_due(t) for t in range(20))


def test_sophia_without_hessian_is_sign_momentum(trajectories_dir):
    """Steps 0-4 of the file precede the first Hessian update: pure sign-momentum steps of size lr (with decay)."""
    ref = load_reference(trajectories_dir, "sophiag")
    kw, bs, _ = _sophia_kwargs(ref)
    devs = max_abs_deviation(ref, lambda ps: SophiaG(ps, **kw, batch_size=bs, hessian_interval=10**6), num_steps=5)
    assert max(devs) <= ATOL, devs

