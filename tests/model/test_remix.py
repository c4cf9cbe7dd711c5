"""The remixed A/M model (optbench/model/remix.py) on CPU: the document-causal sliding-window mask, what a token
can see through the model, rows, the tie, the soft-cap, init."""

from __future__ import annotations

import math

import pytest
import torch

from optbench.model.remix import RemixConfig, RemixGPT, init_remix_weights, window_mask

BOS = 0


pytestmark = pytest.mark.usefixtures("one_thread")


def cfg(**kw) -> RemixConfig:
    fields = dict(vocab_size=120, num_layers=1, model_dim=64, head_dim=32, window=8, bos_id=BOS)
    fields.update(kw)
    return RemixConfig(**fields)


def model(c: RemixConfig, seed: int = 0) -> RemixGPT:
    """Upstream init, then the zero-init matrices made random so that attention shows in the logits."""
    torch.manual_seed(seed)
    m = RemixGPT(c)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith("c_proj.weight") or (name == "lm_head.weight" and not c.tied):
                p.normal_(std=0.05)
    return m


def test_window_mask_is_the_mask_mod():
    """k visible from q iff k <= q, same document, q - k < window: checked entry by entry."""
    x = torch.randint(1, 50, (2, 40), generator=torch.Generator().manual_seed(0))
    x[0, [0, 13, 30]] = BOS
    x[1, [5]] = BOS
    docs = (x == BOS).cumsum(-1)
    m = window_mask(docs, 6)
    assert m.shape == (2, 1, 40, 40)
    for b in range(2):
        for q in range(40):
            for k in range(40):
                want = k <= q and docs[b, q] == docs[b, k] and q - k < 6
                assert bool(m[b, 0, q, k]) == want


def _changed(m: RemixGPT, x: torch.Tensor, pos: int) -> torch.Tensor:
    """Per position: did the logits change when token `pos` changed?"""
    with torch.no_grad():
        a = m(x)
        y = x.clone()
        y[0, pos] = 7 if x[0, pos] != 7 else 8
        b = m(y)
    return (a - b).abs().amax(-1)[0] > 1e-6


def test_a_token_sees_its_window_and_nothing_before_its_document():
    m = model(cfg(window=8))
    x = torch.randint(1, 120, (1, 48), generator=torch.Generator().manual_seed(1))
    x[0, 20] = BOS  # a second document starts at 20
    ch = _changed(m, x, 10)  # one layer: position q depends on 10 iff 10 <= q < 18 and q < 20
    assert ch.nonzero().flatten().tolist() == list(range(10, 18))
    ch = _changed(m, x, 25)
    assert ch.nonzero().flatten().tolist() == list(range(25, 33))
    ch = _changed(m, x, 20)  # the BOS itself opens the document: everything from 20 on within the window
    assert ch.nonzero().flatten().tolist() == list(range(20, 28))


def test_rows_are_independent_packed_streams():
    m = model(cfg(num_layers=2, tied=True))
    x = torch.randint(1, 120, (3, 32), generator=torch.Generator().manual_seed(2))
    x[1, 9] = BOS
    with torch.no_grad():
        whole = m(x)
        rows = torch.cat([m(x[i : i + 1]) for i in range(3)])
        loss = m(x[:, :-1], x[:, 1:])
        by_hand = torch.nn.functional.cross_entropy(m(x[:, :-1]).flatten(end_dim=1), x[:, 1:].flatten(),
                                                    reduction="sum")
    torch.testing.assert_close(whole, rows, rtol=1e-5, atol=1e-5)
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-5)  # summed, the harness's convention


def test_a_ties_the_embedding_to_the_padded_head():
    m = RemixGPT(cfg(tied=True, vocab_size=120))
    assert m.embed.weight is m.lm_head.weight and m.lm_head.weight.shape == (128, 64)
    names = [n for n, _ in m.named_parameters()]
    assert "lm_head.weight" not in names and names[0] == "embed.weight"
    assert set(m.state_dict()) >= {"embed.weight", "lm_head.weight"}  # upstream's state_dict keys
    assert m.param_roles()["embed.weight"] == "embed"
    assert all(r == "matrix" for n, r in m.param_roles().items() if n.startswith("blocks."))


def test_m_soft_caps_logits_into_0_30_and_starts_uniform():
    c = cfg(softcap=30.0)
    torch.manual_seed(0)
    m = RemixGPT(c)
    x = torch.randint(1, 120, (1, 16))
    with torch.no_grad():
        z = m(x)
        assert torch.all(z == 15.0)  # zero-init head: 30 * sigmoid(0)
        assert m(x[:, :-1], x[:, 1:]).item() / 15 == pytest.approx(math.log(128), rel=1e-6)
        m.lm_head.weight.normal_(std=100.0)
        z = m(x)
    assert z.min() >= 0 and z.max() <= 30 and z.std() > 1


def test_init_follows_upstreams_distributions():
    c = cfg(model_dim=256, head_dim=64, num_layers=2, vocab_size=1000)
    torch.manual_seed(0)
    m = RemixGPT(c, init=False)
    init_remix_weights(m)
    qkv = m.blocks[0].attn.qkv_w
    assert qkv.std().item() == pytest.approx(0.5 / math.sqrt(256), rel=0.02)  # uniform with std 0.5/sqrt(d)
    assert qkv.abs().max().item() <= math.sqrt(3) * 0.5 / math.sqrt(256)
    assert m.embed.weight.std().item() == pytest.approx(1.0, rel=0.02)  # M: N(0, 1)
    fc = m.blocks[0].mlp.c_fc.weight
    assert fc.abs().max().item() <= 1 / math.sqrt(256) and fc.std().item() == pytest.approx(1 / math.sqrt(3 * 256), rel=0.02)
    for t in (m.blocks[0].attn.c_proj.weight, m.blocks[1].mlp.c_proj.weight, m.lm_head.weight):
        assert not t.any()
    torch.manual_seed(0)
    again = RemixGPT(c)  # the constructor's init: the same draws, in the same order
    assert all(torch.equal(a, b) for a, b in zip(m.parameters(), again.parameters()))


def test_bf16_weights_draw_in_fp32_then_round():
    c = cfg(tied=True)
    torch.manual_seed(3)
    f32 = RemixGPT(c)
    torch.manual_seed(3)
    b16 = RemixGPT(c, dtype=torch.bfloat16)
    assert all(p.dtype == torch.bfloat16 for p in b16.parameters())
    assert all(torch.equal(a.bfloat16(), b) for a, b in zip(f32.parameters(), b16.parameters()))


def test_bad_config_is_named():
    with pytest.raises(ValueError, match="head_dim"):
        RemixConfig(model_dim=100, head_dim=32)
    with pytest.raises(ValueError, match="window"):
        RemixConfig(window=0)
    with pytest.raises(ValueError, match="attn_backend"):
        RemixGPT(cfg(), attn_backend="xformers")


@pytest.mark.slow
def test_flex_attention_path_equals_the_dense_mask():
    """The CUDA path (compiled create_block_mask + compiled flex_attention over the rows laid end to end) gives the
    SDPA path's logits; forward only (FlexAttention has no CPU backward). Compiles: ~20 s."""
    c = cfg(window=40)
    dense = model(c)
    flex = RemixGPT(c, attn_backend="flex")
    flex.load_state_dict(dense.state_dict())
    x = torch.randint(1, 120, (2, 256), generator=torch.Generator().manual_seed(4))
    x[0, [0, 50, 180]] = BOS
    x[1, 77] = BOS
    with torch.no_grad():
        torch.testing.assert_close(flex(x), dense(x), rtol=1e-5, atol=2e-6)
