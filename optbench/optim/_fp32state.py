"""Helper for optimizers that keep their state in float32 regardless of the parameter dtype.

``torch.optim.Optimizer.load_state_dict`` casts every floating-point state tensor to the parameter's dtype
(except the key ``step``). For a bf16 parameter with float32 statistics that cast would silently lose precision,
so Shampoo, SOAP and Kron restore their state through :func:`load_state_dict_keep_dtype`.
"""

from __future__ import annotations

import copy

import torch


def _restore(value, device):
    if isinstance(value, torch.Tensor):
        return value.detach().to(device=device, copy=True)
    if isinstance(value, dict):
        return {k: _restore(v, device) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore(v, device) for v in value]
    if isinstance(value, tuple):
        return tuple(_restore(v, device) for v in value)
    return copy.deepcopy(value)


def load_state_dict_keep_dtype(opt: torch.optim.Optimizer, state_dict: dict, load) -> None:
    """Call ``load(state_dict)`` (the base implementation), then put back each state value with its saved dtype."""
    saved_state = state_dict["state"]
    saved_ids = [pid for g in state_dict["param_groups"] for pid in g["params"]]
    load(state_dict)
    params = [p for g in opt.param_groups for p in g["params"]]
    for pid, p in zip(saved_ids, params):
        if pid in saved_state:
            opt.state[p] = _restore(saved_state[pid], p.device)
