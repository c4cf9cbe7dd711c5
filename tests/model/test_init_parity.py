"""Seed-for-seed parity with upstream's init: the same torch.manual_seed gives the same initial tensors, and
upstream state_dicts (which hold the rotary buffer) load strictly.

The reference numbers in fixtures/upstream_init.json were produced by running upstream's own GPT class and init
loop (records/track_3_optimization/train_gpt_simple.py @f411b3d3) on CPU; only the numbers are committed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from optbench.model.gpt import GPT, GPTConfig, init_weights

REF = json.loads((Path(__file__).parent / "fixtures" / "upstream_init.json").read_text())


def _digest(t: torch.Tensor) -> dict:
    t = t.detach().contiguous()
    raw = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()
    return {"shape": list(t.shape), "dtype": str(t.dtype).replace("torch.", ""),
            "sha256": hashlib.sha256(raw).hexdigest()[:16], "sum": float(t.double().sum()),
            "first": [float(x) for x in t.flatten()[:3].double()]}


def _ours(case: dict, embed_dtype: torch.dtype) -> GPT:
    c = case["config"]
    torch.manual_seed(case["seed"])  # before the model is built, as in optbench's loop
    model = GPT(GPTConfig(vocab_size=c["vocab_size"], num_layers=c["num_layers"], model_dim=c["model_dim"],
                          head_dim=128), embed_dtype=embed_dtype)
    init_weights(model)
    return model


def _cases(full: bool):
    return [pytest.param(c, id=f"{c['config']['num_layers']}x{c['config']['model_dim']}-seed{c['seed']}")
            for c in REF["cases"] if (c["config"]["model_dim"] == 768) == full]


def _check(case: dict) -> None:
    model = _ours(case, torch.bfloat16)  # upstream's embedding is bf16
    ours = {k: _digest(p) for k, p in model.named_parameters()}
    ref = case["params"]
    assert list(ours) == list(ref)  # same names, same order (the order the RNG is drawn in)
    equal = [k for k in ref if ours[k] == ref[k]]
    assert len(equal) == len(ref), f"{len(equal)} of {len(ref)} tensors equal upstream's; first differing: " \
                                   f"{next(k for k in ref if k not in equal)}"
    assert {k: _digest(b) for k, b in model.named_buffers()} == case["buffers"]
    # upstream's state_dict keys (parameters and the rotary buffers) are exactly ours: strict loading works
    sd = model.state_dict()
    assert list(sd) == case["state_dict_keys"]
    fresh = GPT(model.cfg, embed_dtype=torch.bfloat16)
    fresh.load_state_dict({k: sd[k] for k in case["state_dict_keys"]}, strict=True)
    # with an fp32 embedding (optbench on CPU) every other tensor is the same, and the embedding rounds to upstream's
    fp32 = _ours(case, torch.float32)
    assert _digest(fp32.embed.weight.to(torch.bfloat16)) == ref["embed.weight"]
    assert all(_digest(p) == ref[k] for k, p in fp32.named_parameters() if k != "embed.weight")


@pytest.mark.parametrize("case", _cases(full=False))
def test_reduced_shape_equals_upstream(case):
    _check(case)


@pytest.mark.slow
@pytest.mark.parametrize("case", _cases(full=True))
def test_small_track_shape_equals_upstream_all_173_tensors(case):
    assert len(case["params"]) == 173
    _check(case)


def test_gains_draw_from_the_rng_like_upstream():
    """`normal_(mean=1, std=0)` gives exactly 1 and advances the RNG; `fill_(1)` would not (then only the tensors
    drawn before the first gain would match)."""
    torch.manual_seed(3)
    g = torch.empty(8)
    g.normal_(mean=1, std=0)
    after = torch.rand(1)
    torch.manual_seed(3)
    assert torch.equal(g, torch.ones(8)) and not torch.equal(after, torch.rand(1))
