"""The track-3 GPT of the Modded-NanoGPT Optimization Benchmark (records/track_3_optimization).

12 x 768 at full size: biased Linears, RMSNorm with gains, QK-RMSNorm without gains, half-truncated RoPE,
attention scale 0.12, ReLU^2 MLP, untied embedding (bf16 on GPU) and LM head, ISRU soft-cap 15, summed CE.
Parameter names match upstream. This module imports only torch so a submission script can inline it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int = 50304
    num_layers: int = 12
    model_dim: int = 768
    head_dim: int = 128
    mlp_ratio: int = 4
    attn_scale: float = 0.12
    softcap: float = 15.0
    rope_base_inv: float = 1 / 1024  # angular frequencies (1/1024)^linspace(0, 1, head_dim/4)

    @property
    def num_heads(self) -> int:
        return self.model_dim // self.head_dim


class RMSNorm(nn.Module):
    """RMSNorm with learnable per-channel gains (F.rms_norm, default eps)."""

    def __init__(self, dim: int):
        super().__init__()
        self.gains = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return rms_norm(x, self.gains.type_as(x))


def rms_norm(x: Tensor, weight: Tensor | None = None) -> Tensor:
    """F.rms_norm over the last dimension (default eps); on CPU in fp32 eager mode through RMSNormCPU."""
    if x.device.type == "cpu" and x.dtype == torch.float32 and _eager():
        return RMSNormCPU.apply(x, weight)
    return F.rms_norm(x, (x.size(-1),), weight=weight)


class RMSNormCPU(torch.autograd.Function):
    """CPU F.rms_norm (a composite: pow, mean, add eps, rsqrt, mul, mul weight) with the backward that autograd
    derives for it written out op for op, so values are bitwise equal, in one autograd node instead of six."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor | None) -> Tensor:
        r = x.pow(2).mean(-1, keepdim=True).add(torch.finfo(x.dtype).eps).rsqrt()
        ctx.save_for_backward(x, r, weight)
        y = x * r
        return y if weight is None else y * weight

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, r, weight = ctx.saved_tensors
        grad_w = None
        if weight is not None:
            if ctx.needs_input_grad[1]:
                grad_w = (grad * (x * r)).sum_to_size(weight.shape)
            grad = grad * weight
        grad_r = (grad * x).sum(-1, keepdim=True)
        grad_mean = (-0.5 * grad_r) * r.pow(3) / x.size(-1)  # rsqrt's backward, then mean's (per row)
        return grad * r + grad_mean * (2.0 * x), grad_w  # mul's + pow's backward


class Linear(nn.Linear):
    """Biased Linear whose weight and bias are cast to the activation dtype at use."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__(in_features, out_features, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight.type_as(x), self.bias.type_as(x))


class Rotary(nn.Module):
    """Half-truncated RoPE: head_dim/4 frequencies plus head_dim/4 zeros; pairs are (first, second half)."""

    def __init__(self, head_dim: int, base_inv: float = 1 / 1024):
        super().__init__()
        freq = base_inv ** torch.linspace(0, 1, steps=head_dim // 4, dtype=torch.float32)
        # persistent, as upstream's: its state_dicts (which hold the buffer) load strictly
        self.register_buffer("angular_freq", torch.cat([freq, freq.new_zeros(head_dim // 4)]))

    def tables(self, T: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """(cos | -sin, sin | cos) per position, shaped (1, T, 1, 2, D/2) to broadcast over (B, T, H, 2, D/2)."""
        pos = torch.arange(T, dtype=torch.float32, device=device)
        theta = torch.outer(pos, self.angular_freq)[None, :, None, None, :]
        cos, sin = theta.cos(), theta.sin()
        return torch.cat((cos, -sin), dim=-2), torch.cat((sin, cos), dim=-2)

    def forward(self, x_BTHD: Tensor) -> Tensor:
        B, T, H, D = x_BTHD.shape
        if x_BTHD.device.type == "cpu" and x_BTHD.dtype == torch.float32 and _eager():
            # CPU only: the same values, bitwise, with the tables made once per length and a one-pass backward
            return RotateCPU.apply(x_BTHD.view(B, T, H, 2, D // 2), *self._cached_tables(T)).view(B, T, H, D)
        a, b = self.tables(T, x_BTHD.device)
        # upstream's y1 = x1 cos + x2 sin, y2 = x1 (-sin) + x2 cos (same products, same order: bitwise equal), with
        # both halves in one broadcast pass and no concatenation
        x1, x2 = x_BTHD.to(dtype=torch.float32).view(B, T, H, 2, D // 2).chunk(2, dim=-2)
        y = x1 * a + x2 * b
        return y.view(B, T, H, D).type_as(x_BTHD)

    def _cached_tables(self, T: int) -> tuple[Tensor, ...]:
        """tables(T) and the backward's (cos | sin, -sin | cos), remade when the frequencies change (a state_dict
        load, a reset) or move."""
        f = self.angular_freq
        key = (T, f.device, f.data_ptr(), f._version)
        cache = getattr(self, "_tables", None)  # subclasses may skip __init__ (model/medium.py)
        if cache is None or cache[0] != key:
            with torch.inference_mode(False), torch.no_grad():
                a, b = self.tables(T, f.device)
                (cos, minus_sin), (sin, _) = a.chunk(2, dim=-2), b.chunk(2, dim=-2)
                cache = key, (a, b, torch.cat((cos, sin), dim=-2), torch.cat((minus_sin, cos), dim=-2))
            self._tables = cache
        return cache[1]


class RotateCPU(torch.autograd.Function):
    """y = x1 * a + x2 * b over the (first, second) halves of x (B, T, H, 2, D/2), as Rotary writes it; the
    backward g1 * a' + g2 * b' (a', b': the tables' transposes) gives autograd's values in one pass, without its
    broadcast reductions and the copies into the halves of the input's gradient."""

    @staticmethod
    def forward(ctx, x: Tensor, a: Tensor, b: Tensor, a_t: Tensor, b_t: Tensor) -> Tensor:
        x1, x2 = x.chunk(2, dim=-2)
        ctx.save_for_backward(a_t, b_t)
        return x1 * a + x2 * b

    @staticmethod
    def backward(ctx, grad: Tensor):
        a_t, b_t = ctx.saved_tensors
        g1, g2 = grad.chunk(2, dim=-2)
        return (g1 * a_t).add_(g2 * b_t), None, None, None, None


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.num_heads, self.head_dim, self.scale = cfg.num_heads, cfg.head_dim, cfg.attn_scale
        hdim = self.num_heads * self.head_dim
        self.q = Linear(cfg.model_dim, hdim)
        self.k = Linear(cfg.model_dim, hdim)
        self.v = Linear(cfg.model_dim, hdim)
        self.proj = Linear(hdim, cfg.model_dim)
        self.rotary = Rotary(cfg.head_dim, cfg.rope_base_inv)

    def forward(self, x: Tensor) -> Tensor:
        B, T = x.size(0), x.size(1)
        q = self.q(x).view(B, T, self.num_heads, self.head_dim)
        k = self.k(x).view(B, T, self.num_heads, self.head_dim)
        v = self.v(x).view(B, T, self.num_heads, self.head_dim)
        q, k = rms_norm(q), rms_norm(k)
        q, k = self.rotary(q), self.rotary(k)
        y = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), scale=self.scale, is_causal=True
        ).transpose(1, 2)
        return self.proj(y.contiguous().view(B, T, self.num_heads * self.head_dim))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.fc = Linear(cfg.model_dim, cfg.mlp_ratio * cfg.model_dim)
        self.proj = Linear(cfg.mlp_ratio * cfg.model_dim, cfg.model_dim)

    def forward(self, x: Tensor) -> Tensor:
        h = self.fc(x)
        return self.proj(ReLUSquare.apply(h) if _eager() else h.relu().square())


class ReLUSquare(torch.autograd.Function):
    """relu(x)^2 in eager mode, bitwise as autograd's x.relu().square() (up to the sign of zero gradients): the
    backward 2 relu(x) g is one pass instead of pow's and relu's backward passes and a copy."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        r = x.relu()
        ctx.save_for_backward(r)
        return r.square()

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (r,) = ctx.saved_tensors
        return torch.mul(r, 2).mul_(grad)


def _eager() -> bool:
    """Hand-fused autograd Functions only in eager mode; under torch.compile the plain expressions are kept."""
    return not torch.compiler.is_compiling()


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.attn = CausalSelfAttention(cfg)
        self.mlp = MLP(cfg)
        self.norm1 = RMSNorm(cfg.model_dim)
        self.norm2 = RMSNorm(cfg.model_dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class SoftCap(torch.autograd.Function):
    """ISRU soft-cap y = c*z / sqrt(z^2 + c^2) with fewer passes over the logits than autograd's graph.

    The forward evaluates upstream's expression (c*z) * rsqrt(z^2 + c^2) in the same order (bitwise equal);
    the backward uses dy/dz = c^3 * r^3 with r = rsqrt(z^2 + c^2), saving only r.
    """

    @staticmethod
    def forward(ctx, z: Tensor, c: float) -> Tensor:
        r = z.square().add_(c * c).rsqrt_()
        ctx.save_for_backward(r)
        ctx.c = c
        return (c * z).mul_(r)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (r,) = ctx.saved_tensors
        return grad * r.pow(3).mul_(ctx.c**3), None


def softcap(z: Tensor, c: float) -> Tensor:
    return SoftCap.apply(z, c)


def _row_block(vocab: int) -> int:
    """Rows of logits per block of the fused loss: about 1 MiB of fp32, so a block's temporaries stay in L2."""
    return max(1, (1 << 18) // vocab)


class SoftCapCrossEntropy(torch.autograd.Function):
    """Summed CE of the soft-capped logits of the biased head, fused for CPU (fp32).

    Bitwise the loss and gradients of F.cross_entropy(softcap(F.linear(x, w, b)), t, reduction="sum") with
    autograd: the same kernels on the same values (addmm, the soft-cap expression, log_softmax, its backward, the
    soft-cap backward, nll_loss's summation order), but taken over blocks of rows that stay in cache, and the
    logits' gradient is made in the forward, written over the logits, and kept instead of them. The backward is
    the head's two matmuls and the bias sum (an incoming gradient other than 1 scales the kept gradient; exact for
    the powers of two the loop uses).
    """

    @staticmethod
    def forward(ctx, x: Tensor, w: Tensor, b: Tensor, targets: Tensor, c: float, spare: list) -> Tensor:
        z = _head_logits(x, w, b, spare)
        picked = _softcap_log_probs(z, targets, c, grad_out=True)
        ctx.save_for_backward(x, w, z)
        ctx.spare = spare
        return F.nll_loss(picked, targets.new_zeros(len(picked)), reduction="sum")

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, w, dz = ctx.saved_tensors  # a second backward needs retain_graph=True, as with autograd
        if ctx.spare is None and not any(t.data_ptr() == dz.data_ptr() for t in ctx.recycled):
            raise RuntimeError("SoftCapCrossEntropy: a second backward after a later forward reused the graph's "
                               "buffer is not supported")
        kept = dz
        if grad.item() != 1.0:
            dz = dz * grad
        grads = dz.mm(w), dz.t().mm(x), dz.sum(0), None, None, None
        if ctx.spare is not None:  # the logits buffer serves the next forward (still intact until that forward)
            ctx.spare.append(kept)
            ctx.recycled, ctx.spare = ctx.spare, None
        return grads


def _head_logits(x: Tensor, w: Tensor, b: Tensor, spare: list) -> Tensor:
    """x @ w.T + b (F.linear's addmm), written into a spare buffer of the right shape when there is one: a fresh
    logits-sized tensor costs a page fault per 4 KiB on its first write (a third of the head matmul's time)."""
    shape = (x.size(0), w.size(0))
    while spare:
        buf = spare.pop()
        if buf.shape == shape and buf.dtype == x.dtype and buf.device == x.device:
            return torch.addmm(b, x, w.t(), out=buf)
    return torch.addmm(b, x, w.t())


def _softcap_log_probs(z: Tensor, targets: Tensor, c: float, grad_out: bool) -> Tensor:
    """log p(target) per row (N x 1) of softcap(z); with grad_out, z is overwritten by d(-sum log p)/dz."""
    n, block = z.size(0), _row_block(z.size(1))
    picked = z.new_empty(n, 1)
    t = targets.view(n, 1)
    # nll_loss's gradient of a block, as autograd makes it (-1 at the targets, 0 elsewhere), in one zeroed buffer
    # that gets its -1s scattered in and taken out again, instead of a fresh zero fill per block
    dlogp_buf = z.new_zeros(min(block, n), z.size(1)) if grad_out else None
    for i in range(0, n, block):
        zb, tb = z[i:i + block], t[i:i + block]
        r = zb.square().add_(c * c).rsqrt_()
        logp = torch.log_softmax((c * zb).mul_(r), dim=-1)
        torch.gather(logp, 1, tb, out=picked[i:i + block])
        if grad_out:
            dlogp = dlogp_buf[:len(zb)].scatter_(1, tb, -1.0)
            dy = torch.ops.aten._log_softmax_backward_data(dlogp, logp, 1, logp.dtype)
            dlogp.scatter_(1, tb, 0.0)
            torch.mul(dy, r.pow_(3).mul_(c**3), out=zb)  # SoftCap.backward
    return picked


def softcap_cross_entropy(x: Tensor, w: Tensor, b: Tensor, targets: Tensor, c: float,
                          spare: list | None = None) -> Tensor:
    """sum CE(softcap(x @ w.T + b), targets) for 2-D x on CPU in fp32, fused (see SoftCapCrossEntropy). `spare`:
    a list that keeps the logits buffer between calls (one per model; the graph's backward returns it)."""
    targets = targets.reshape(-1)
    spare = [] if spare is None else spare
    if torch.is_grad_enabled() and (x.requires_grad or w.requires_grad or b.requires_grad):
        return SoftCapCrossEntropy.apply(x, w, b, targets, c, spare)
    z = _head_logits(x, w, b, spare)
    picked = _softcap_log_probs(z, targets, c, grad_out=False)
    spare.append(z)
    return F.nll_loss(picked, targets.new_zeros(len(picked)), reduction="sum")


class GPT(nn.Module):
    """forward(inputs, targets) -> summed CE loss (fp32 scalar); forward(inputs) -> soft-capped fp32 logits."""

    def __init__(self, cfg: GPTConfig, embed_dtype: torch.dtype = torch.float32):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.model_dim).to(embed_dtype)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.num_layers)])
        self.proj = Linear(cfg.model_dim, cfg.vocab_size)
        self.norm1 = RMSNorm(cfg.model_dim)
        self.norm2 = RMSNorm(cfg.model_dim)
        self._spare_logits: list[Tensor] = []  # the fused CPU loss's logits buffer, reused across microbatches

    def param_roles(self) -> dict[str, str]:
        """Role of each parameter for the upstream optimizer split: embed | head | scalar | matrix."""
        roles = {}
        for name, p in self.named_parameters():
            if name == "embed.weight":
                roles[name] = "embed"
            elif name == "proj.weight":
                roles[name] = "head"
            elif p.ndim < 2:
                roles[name] = "scalar"
            else:
                roles[name] = "matrix"
        return roles

    def features(self, inputs: Tensor) -> Tensor:
        """The final normed hidden states, the LM head's input."""
        x = self.norm1(self.embed(inputs))
        for block in self.blocks:
            x = block(x)
        return self.norm2(x)

    def logits(self, inputs: Tensor) -> Tensor:
        return softcap(self.proj(self.features(inputs)).float(), self.cfg.softcap)

    def forward(self, inputs: Tensor, targets: Tensor | None = None) -> Tensor:
        if targets is None:
            return self.logits(inputs)
        x = self.features(inputs)
        if x.device.type == "cpu" and x.dtype == torch.float32 and _eager():
            # CPU only: the same loss and gradients as below, bitwise, with far fewer passes over the logits
            return softcap_cross_entropy(x.view(-1, x.size(-1)), self.proj.weight, self.proj.bias, targets,
                                         self.cfg.softcap, self._spare_logits)
        logits = softcap(self.proj(x).float(), self.cfg.softcap)
        return F.cross_entropy(logits.view(targets.numel(), -1), targets.reshape(-1), reduction="sum")


def init_weights(model: nn.Module) -> None:
    """Upstream init: `proj` weights (attn, MLP and LM head) zero, embedding N(0,1), other weights
    N(0, 0.33**0.5 / fan_in**0.5), biases 0, gains 1. Draws from the default torch RNG in parameter order exactly as
    upstream's loop does (gains come from `normal_(mean=1, std=0)`, which consumes random numbers), so the same
    seed gives the same tensors as upstream (tests/model/test_init_parity.py)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight"):
                if "proj" in name:
                    p.zero_()
                elif "embed" in name:
                    p.normal_()
                else:
                    p.normal_(std=0.33**0.5 / p.size(-1) ** 0.5)  # upstream's expression, bit for bit
            elif name.endswith("bias"):
                p.zero_()
            elif name.endswith("gains"):
                p.normal_(mean=1, std=0)  # = 1 exactly, and advances the RNG as upstream's does
            else:
                raise ValueError(f"uninitialized parameter: {name}")


def init_weights_torch_default(model: nn.Module) -> None:
    """Result #2's init: torch's default Linear/Embedding init, then every `proj` weight zeroed."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                module.reset_parameters()
            elif isinstance(module, RMSNorm):
                module.gains.fill_(1.0)
        for name, p in model.named_parameters():
            if name.endswith("weight") and "proj" in name:
                p.zero_()


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
