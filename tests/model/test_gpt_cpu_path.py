"""The GPT's fused CPU loss (optbench/model/gpt.py): bitwise the loss and gradients of the autograd path that CUDA
takes, the loss identical to upstream's expression and its gradients within 1e-6 of upstream's autograd."""

import pytest
import torch
import torch.nn.functional as F

from optbench.model.gpt import GPT, GPTConfig, RMSNormCPU, init_weights, softcap_cross_entropy


def _model(vocab: int, seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    m = GPT(GPTConfig(vocab_size=vocab, num_layers=2, model_dim=64, head_dim=32))
    init_weights(m)
    with torch.no_grad():  # the init zeroes every proj; give the head and the blocks' outputs real values
        for n, p in m.named_parameters():
            if "proj" in n:
                p.normal_(std=0.3 if n == "proj.weight" else 0.02)
    return m


def _grads(m: GPT, loss_fn, scale: float = 1.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    m.zero_grad(set_to_none=True)
    loss = loss_fn()
    (loss * scale).backward()
    return loss.detach(), {n: p.grad.clone() for n, p in m.named_parameters()}


def _autograd_loss(m: GPT, x, y):
    """The loss through autograd, as on CUDA: soft-capped logits, then F.cross_entropy."""
    logits = m.logits(x)
    return F.cross_entropy(logits.view(-1, logits.size(-1)), y.reshape(-1), reduction="sum")


def _upstream_loss(m: GPT, x, y):
    """train_gpt_simple.py's lines, verbatim in meaning: 15 * z * (z^2 + 15^2).rsqrt(), plain autograd."""
    z = m.proj(m.features(x)).float()
    z = 15 * z * (z.square() + 15**2).rsqrt()
    return F.cross_entropy(z.view(y.numel(), -1), y.view(-1), reduction="sum")


# vocab 3000: blocks of 87 rows, so the last block of 256 rows is short; 50: one block for every row
@pytest.mark.parametrize("vocab", [3000, 50])
@pytest.mark.parametrize("scale", [1.0, 2.0])  # 2: the loop's (loss * world_size).backward() on 2 ranks
def test_fused_loss_and_gradients_are_bitwise_the_autograd_path(vocab, scale):
    m = _model(vocab)
    x, y = torch.randint(0, vocab, (2, 128)), torch.randint(0, vocab, (2, 128))
    fused, g_fused = _grads(m, lambda: m(x, y), scale)
    ref, g_ref = _grads(m, lambda: _autograd_loss(m, x, y), scale)
    assert torch.equal(fused, ref)
    assert g_fused.keys() == g_ref.keys()
    for n in g_ref:
        assert torch.equal(g_fused[n], g_ref[n]), n
    assert g_fused["proj.weight"].abs().max() > 0 and g_fused["blocks.0.attn.q.weight"].abs().max() > 0


def test_fused_loss_is_upstream_loss_and_gradients_within_1e_6():
    m = _model(3000, seed=1)
    x, y = torch.randint(0, 3000, (2, 128)), torch.randint(0, 3000, (2, 128))
    fused, g_fused = _grads(m, lambda: m(x, y))
    up, g_up = _grads(m, lambda: _upstream_loss(m, x, y))
    assert torch.equal(fused, up)
    for n in g_up:  # the analytic soft-cap backward differs from autograd's chain by rounding only
        scale = g_up[n].abs().max().clamp_min(1e-12)
        assert ((g_fused[n] - g_up[n]).abs().max() / scale).item() < 1e-6, n


def test_no_grad_loss_equals_training_loss_and_keeps_no_graph():
    m = _model(3000)
    x, y = torch.randint(0, 3000, (2, 128)), torch.randint(0, 3000, (2, 128))
    with torch.no_grad():
        evaluated = m(x, y)
    assert not evaluated.requires_grad
    assert torch.equal(evaluated, m(x, y).detach())


@pytest.mark.parametrize("grad", [True, False])
def test_fused_loss_fails_loudly_on_bad_shapes_and_targets(grad):
    """As F.linear / F.cross_entropy would: an error, never a number."""
    x, w, b = torch.randn(8, 16, requires_grad=grad), torch.randn(32, 16), torch.randn(32)
    with pytest.raises(RuntimeError):
        softcap_cross_entropy(x, w, b, torch.randint(0, 32, (9,)), 15.0)
    with pytest.raises(RuntimeError):
        softcap_cross_entropy(x, torch.randn(32, 15), b, torch.randint(0, 32, (8,)), 15.0)
    with pytest.raises(RuntimeError, match="out of bounds"):
        softcap_cross_entropy(x, w, b, torch.full((8,), 32), 15.0)


@pytest.mark.parametrize("shape, gains", [((2, 16, 64), True), ((2, 16, 2, 32), False)])  # block norms; QK-norm
def test_cpu_rms_norm_is_bitwise_f_rms_norm(shape, gains):
    torch.manual_seed(0)
    x = torch.randn(*shape, requires_grad=True)
    w = (torch.rand(shape[-1]) + 0.5).requires_grad_() if gains else None
    g = torch.randn(*shape)

    def run(fn):
        x.grad = None
        if w is not None:
            w.grad = None
        y = fn()
        y.backward(g)
        return y.detach(), x.grad.clone(), None if w is None else w.grad.clone()

    ref = run(lambda: F.rms_norm(x, (shape[-1],), weight=w))
    got = run(lambda: RMSNormCPU.apply(x, w))
    for a, b in zip(ref, got):
        assert (a is None and b is None) or torch.equal(a, b)
    assert got[1].abs().max() > 0


def _rotate(rot, x, g):
    x = x.detach().requires_grad_()
    y = rot(x)
    y.backward(g)
    return y.detach(), x.grad


def test_cpu_rotary_is_bitwise_the_generic_path_and_follows_its_frequencies(monkeypatch):
    import optbench.model.gpt as gpt

    torch.manual_seed(0)
    rot = gpt.Rotary(64)
    for T in (256, 128):  # a second length remakes the cached tables
        x, g = torch.randn(2, T, 2, 64), torch.randn(2, T, 2, 64)
        fast = _rotate(rot, x, g)
        with monkeypatch.context() as m:
            m.setattr(gpt, "_eager", lambda: False)  # the expression CUDA and torch.compile take
            generic = _rotate(rot, x, g)
        assert torch.equal(fast[0], generic[0]) and torch.equal(fast[1], generic[1])
        assert not torch.equal(fast[0], x)  # it rotates
    with torch.no_grad():  # new frequencies (as a state_dict load writes them): the cache must not serve stale ones
        rot.angular_freq.mul_(2)
    fresh = gpt.Rotary(64)
    with torch.no_grad():
        fresh.angular_freq.copy_(rot.angular_freq)
    assert torch.equal(_rotate(rot, x, g)[0], _rotate(fresh, x, g)[0])
