"""Shampoo, SOAP and PSGD Kron against the official implementations' reference trajectories.

Protocol and tolerances: ``../shared/reference_trajectories/README.md``. The well-conditioned files are checked
tightly (``shampoo_blk32_adamgraft`` / ``soap_maxdim32``: 2e-5, ``kron``: 1e-6); ``shampoo.pt`` and ``soap.pt``
are ill-conditioned (rank-deficient factors; the reference's own float32-vs-float64 gap is 8e-3 / 1.5e-2), so
they are only loose sanity checks at 5e-2.
"""

from __future__ import annotations

import pytest
import torch

from optbench.optim.kron import Kron
from optbench.optim.shampoo import Shampoo
from optbench.optim.soap import SOAP

from .trajectory import check_initial_state, load_reference, max_abs_deviation

@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny matrices: intra-op threading only adds synchronisation cost on a shared 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


CASES = {
    # name: (factory, atol)
    "shampoo_blk32_adamgraft": (
        lambda params: Shampoo(
            params,
            lr=0.01,
            betas=(0.9, 0.999),
            max_preconditioner_dim=32,
            grafting="adam",
            grafting_beta2=0.999,
            grafting_epsilon=1e-8,
            inverse_exponent_override={1: 0.0},
        ),
        2e-5,
    ),
    "shampoo": (lambda params: Shampoo(params, lr=0.01), 5e-2),
    "soap_maxdim32": (lambda params: SOAP(params, lr=3e-3, max_precond_dim=32), 2e-5),
    "soap": (lambda params: SOAP(params, lr=3e-3), 5e-2),
    "kron": (lambda params: Kron(params, lr=3e-4), 1e-6),
}


def _check_hparams(name: str, ref: dict) -> None:
    """The factories above use exactly the file's explicit hyperparameters (guards against drift)."""
    explicit = ref["hparams"]["explicit"]
    assert explicit["lr"] == {"shampoo": 0.01, "soap": 3e-3, "kron": 3e-4}[name.split("_")[0]]
    if name == "shampoo_blk32_adamgraft":
        assert explicit["max_preconditioner_dim"] == 32 and list(explicit["betas"]) == [0.9, 0.999]
        assert "beta2=0.999" in explicit["grafting_config"] and "epsilon=1e-8" in explicit["grafting_config"]
        assert "inverse_exponent_override={1: 0.0}" in explicit["preconditioner_config"]
    if name == "soap_maxdim32":
        assert explicit["max_precond_dim"] == 32


@pytest.mark.parametrize("name", list(CASES))
def test_matches_reference_trajectory(trajectories_dir, name):
    ref = load_reference(trajectories_dir, name)
    check_initial_state(ref)
    _check_hparams(name, ref)
    factory, atol = CASES[name]
    devs = max_abs_deviation(ref, factory)
    assert len(devs) == ref["num_steps"] == 20
    assert max(devs) <= atol, f"{name}: per-step max deviation {['%.2e' % d for d in devs]} > {atol}"


def test_soap_first_step_leaves_params_unchanged(trajectories_dir):
    ref = load_reference(trajectories_dir, "soap_maxdim32")
    devs = max_abs_deviation(ref, CASES["soap_maxdim32"][0], num_steps=1)
    for n in ref["param_names"]:
        assert (ref["params_after_step"][0][n] == ref["params_initial"][n]).all()
    assert devs == [0.0]
