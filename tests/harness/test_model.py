"""The track-3 GPT: exact parameter count, upstream names, init, and the untrained loss ln(50304)."""

import math

import pytest
import torch

from optbench.model.gpt import GPT, GPTConfig, init_weights
from optbench.tracks import get_track


def test_small_has_exactly_162354816_params_with_upstream_split():
    with torch.device("meta"):
        m = GPT(GPTConfig())
    assert sum(p.numel() for p in m.parameters()) == 162_354_816
    roles = m.param_roles()
    named = dict(m.named_parameters())
    matrices = [n for n, r in roles.items() if r == "matrix"]
    assert len(matrices) == 72 and sum(named[n].numel() for n in matrices) == 84_934_656
    assert sum(named[n].numel() for n, r in roles.items() if r != "matrix") == 77_420_160
    assert roles["embed.weight"] == "embed" and roles["proj.weight"] == "head" and roles["proj.bias"] == "scalar"
    assert sum(1 for r in roles.values() if r == "scalar") == 99


def test_parameter_names_match_upstream():
    with torch.device("meta"):
        m = GPT(GPTConfig(num_layers=1))
    assert [n for n, _ in m.named_parameters()] == [
        "embed.weight",
        "blocks.0.attn.q.weight", "blocks.0.attn.q.bias", "blocks.0.attn.k.weight", "blocks.0.attn.k.bias",
        "blocks.0.attn.v.weight", "blocks.0.attn.v.bias", "blocks.0.attn.proj.weight", "blocks.0.attn.proj.bias",
        "blocks.0.mlp.fc.weight", "blocks.0.mlp.fc.bias", "blocks.0.mlp.proj.weight", "blocks.0.mlp.proj.bias",
        "blocks.0.norm1.gains", "blocks.0.norm2.gains",
        "proj.weight", "proj.bias", "norm1.gains", "norm2.gains",
    ]


def test_init_follows_upstream():
    torch.manual_seed(0)
    m = GPT(GPTConfig(vocab_size=512, num_layers=2, model_dim=256))
    init_weights(m)
    for n, p in m.named_parameters():
        if n.endswith("weight") and "proj" in n or n.endswith("bias"):
            assert torch.count_nonzero(p) == 0, n
        if n.endswith("gains"):
            assert torch.all(p == 1), n
    assert m.embed.weight.std().item() == pytest.approx(1.0, rel=0.02)
    assert m.blocks[0].attn.q.weight.std().item() == pytest.approx(math.sqrt(0.33 / 256), rel=0.03)
    assert m.blocks[0].mlp.fc.weight.std().item() == pytest.approx(math.sqrt(0.33 / 256), rel=0.03)


def test_small_untrained_loss_is_ln_vocab_on_any_batch():
    torch.manual_seed(1)
    t = get_track("small")
    m = t.build_model()
    t.init_model(m)
    x = torch.randint(0, 50257, (2, 32))
    y = torch.randint(0, 50257, (2, 32))
    with torch.no_grad():
        loss = m(x, y).item() / y.numel()
    assert loss == pytest.approx(math.log(50304), abs=1e-5)
    assert f"{loss:.5f}" == "10.82584"


def test_softcap_bounds_logits_and_rope_leaves_half_the_pairs_unrotated():
    torch.manual_seed(0)
    m = GPT(GPTConfig(vocab_size=64, num_layers=1, model_dim=128, head_dim=64))
    init_weights(m)
    with torch.no_grad():
        m.proj.weight.normal_(std=100.0)
        z = m(torch.randint(0, 64, (1, 16)))
    assert z.abs().max().item() < 15.0 and z.abs().max().item() > 14.0
    rot = m.blocks[0].attn.rotary
    freq = rot.angular_freq
    assert freq.shape == (32,) and torch.all(freq[16:] == 0) and freq[0] == 1.0
    assert freq[15].item() == pytest.approx(1 / 1024)


def test_softcap_function_matches_upstream_expression():
    from optbench.model.gpt import softcap

    torch.manual_seed(0)
    z = (torch.randn(64, 512) * 30).requires_grad_()
    z2 = z.detach().clone().requires_grad_()
    y = softcap(z, 15.0)
    y_ref = 15 * z2 * (z2.square() + 15**2).rsqrt()
    assert torch.equal(y, y_ref)  # forward bitwise equal to upstream
    g = torch.randn_like(y)
    y.backward(g)
    y_ref.backward(g)
    assert torch.allclose(z.grad, z2.grad, rtol=1e-5, atol=1e-7)
    assert torch.autograd.gradcheck(lambda t: softcap(t, 3.0), torch.randn(6, 5, dtype=torch.float64,
                                                                            requires_grad=True))
