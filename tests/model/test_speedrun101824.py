"""The 10/18/24 record's GPT (optbench/model/speedrun101824.py) on CPU: tie, RoPE in bf16, causality, init."""

from __future__ import annotations

import math

import pytest
import torch

from optbench.model.speedrun101824 import Rotary, Speedrun101824Config, Speedrun101824GPT, init_speedrun101824_weights


def cfg(**kw) -> Speedrun101824Config:
    fields = dict(vocab_size=256, num_layers=2, model_dim=64, head_dim=32, max_seq_len=64)
    fields.update(kw)
    return Speedrun101824Config(**fields)


def test_tied_embedding_and_head():
    torch.manual_seed(0)
    m = Speedrun101824GPT(cfg())
    assert m.transformer.wte.weight is m.lm_head.weight
    names = [n for n, _ in m.named_parameters()]
    assert names[0] == "transformer.wte.weight" and "lm_head.weight" not in names
    assert m.param_roles()["transformer.wte.weight"] == "embed"
    assert {r for n, r in m.param_roles().items() if n != "transformer.wte.weight"} == {"matrix"}
    # a step on the shared weight moves both uses
    x = torch.randint(0, 256, (2, 16))
    m(x, x).backward()
    assert m.lm_head.weight.grad is m.transformer.wte.weight.grad


def test_rope_tables_are_bf16_rounded_and_bounded():
    r = Rotary(32, 10000.0, 64)
    inv = 1.0 / (10000.0 ** (torch.arange(0, 32, 2).float() / 32))
    exact = torch.outer(torch.arange(64).float(), inv)
    assert r.cos.dtype == torch.bfloat16
    torch.testing.assert_close(r.cos.float(), exact.cos().bfloat16().float(), rtol=0, atol=0)
    with pytest.raises(ValueError, match="longer than the RoPE table"):
        r(torch.zeros(1, 65, 2, 32))


def test_causal_within_each_row_no_document_masking():
    torch.manual_seed(0)
    m = Speedrun101824GPT(cfg(num_layers=1))
    with torch.no_grad():
        for blk in m.transformer.h:
            blk.attn.c_proj.weight.normal_(std=0.05)
    x = torch.randint(0, 256, (1, 32), generator=torch.Generator().manual_seed(1))
    y = x.clone()
    y[0, 10] = (x[0, 10] + 1) % 256
    with torch.no_grad():
        d = (m(x) - m(y)).abs().amax(-1)[0]
    assert (d[:10] == 0).all() and (d[10:] > 0).all()  # every later token of the row sees it, earlier ones do not


def test_init_distributions_and_seed():
    c = cfg(model_dim=256, head_dim=64, vocab_size=1024)
    torch.manual_seed(5)
    m = Speedrun101824GPT(c, init=False)
    init_speedrun101824_weights(m)
    bound = 1 / math.sqrt(256)
    for lin in (m.transformer.h[0].attn.c_q, m.transformer.h[1].mlp.c_fc, m.lm_head):
        assert lin.weight.abs().max().item() <= bound
        assert lin.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.03)
    assert not m.transformer.h[0].attn.c_proj.weight.any() and not m.transformer.h[1].mlp.c_proj.weight.any()
    torch.manual_seed(5)
    again = Speedrun101824GPT(c)
    assert all(torch.equal(a, b) for a, b in zip(m.parameters(), again.parameters()))


def test_summed_loss():
    torch.manual_seed(0)
    m = Speedrun101824GPT(cfg())
    x = torch.randint(0, 256, (2, 33))
    with torch.no_grad():
        s = m(x[:, :-1], x[:, 1:])
        mean = torch.nn.functional.cross_entropy(m(x[:, :-1]).flatten(end_dim=1), x[:, 1:].flatten())
    assert s.item() == pytest.approx(mean.item() * 64, rel=1e-5)
