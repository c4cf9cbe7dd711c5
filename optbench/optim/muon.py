"""Muon: momentum, then Newton-Schulz orthogonalisation of each hidden matrix's update (track-3 variant).

Follows the ``Muon`` class of modded-nanogpt's ``records/track_3_optimization/train_gpt_simple.py`` (and, with
``ns_coefficients="tuned5"``, KellerJordan/Muon's ``muon.py``). Per matrix W with gradient g:

    m <- lerp(m, g, 1 - mu)                      (EMA-form momentum)
    u <- lerp(g, m, mu)   if nesterov else m     (a new tensor; p.grad is left untouched)
    O <- NS(u)                                   (approximate polar factor, see newton_schulz)
    O <- O * sqrt(max(1, rows / cols))
    W <- W * (1 - lr * wd);  W <- W - lr * O

Tensors with more than two dimensions are flattened to (shape[0], rest) for NS and for the shape scale
(nd_mode="flatten", KellerJordan/Muon's rule for conv filters), or treated as a batch of matrices over the last
two dims (nd_mode="batch", the medium record's batched NS on its stacked (4, d, d) attention weights).
"""

from __future__ import annotations

from typing import Sequence, Union

import torch
import torch.distributed as dist

from optbench.optim._args import check_nonneg
from optbench.optim._compiled import check_compiled, compile_once, use_compiled
from optbench.optim.registry import COUNT, NONNEG, POSITIVE, UNIT, register

Coeffs = tuple[float, float, float]
CoeffSpec = Union[str, Coeffs, Sequence[Coeffs]]

TRACK3_COEFFS: Coeffs = (2.0, -1.5, 0.5)
TRACK3_STEPS = 12
TUNED5_COEFFS: Coeffs = (3.4445, -4.7750, 2.0315)
MEDIUM_COEFFS: tuple[Coeffs, ...] = (
    (4.0848, -6.8946, 2.9270),
    (3.9505, -6.3029, 2.6377),
    (3.7418, -5.5913, 2.3037),
    (2.8769, -3.1427, 1.2046),
    (2.8366, -3.0525, 1.2012),
)

#: named coefficient presets: name -> per-step list of (a, b, c)
NS_PRESETS: dict[str, tuple[Coeffs, ...]] = {
    # track 3 (modded-nanogpt train_gpt_simple.py): 12 steps of p(x) = 2x - 1.5x^3 + 0.5x^5 -> true polar factor
    "track3": (TRACK3_COEFFS,) * TRACK3_STEPS,
    # KellerJordan/Muon: 5 steps of the slope-maximising quintic (singular values end up spread around 1)
    "tuned5": (TUNED5_COEFFS,) * 5,
    # medium-track record (04/22/25): 5 per-step tuned quintics
    "medium": MEDIUM_COEFFS,
}


def resolve_ns_schedule(ns_coefficients: CoeffSpec, ns_steps: int | None) -> list[Coeffs]:
    """The per-step (a, b, c) list for a preset name, one triple (repeated ns_steps times) or a per-step list.

    ``ns_steps=None`` means: 12 for a single triple, the preset's / list's own length otherwise. Raises
    ValueError for an unknown preset, a malformed triple, or ns_steps that contradicts a per-step list.
    """
    if isinstance(ns_coefficients, str):
        key = ns_coefficients.lower()
        if key not in NS_PRESETS:
            raise ValueError(
                f"ns_coefficients: unknown preset {ns_coefficients!r}; known: {', '.join(sorted(NS_PRESETS))}"
            )
        sched = list(NS_PRESETS[key])
        if ns_steps is not None and ns_steps != len(sched):
            if len(set(sched)) != 1:
                raise ValueError(
                    f"ns_steps={ns_steps} contradicts preset {key!r}, which has {len(sched)} distinct steps"
                )
            sched = [sched[0]] * ns_steps
    else:
        seq = list(ns_coefficients)
        if len(seq) == 3 and all(isinstance(x, (int, float)) for x in seq):
            sched = [tuple(float(x) for x in seq)] * (TRACK3_STEPS if ns_steps is None else ns_steps)
        else:
            sched = []
            for c in seq:
                c = tuple(c)
                if len(c) != 3 or not all(isinstance(x, (int, float)) for x in c):
                    raise ValueError(f"ns_coefficients: each step needs three numbers (a, b, c), got {c!r}")
                sched.append(tuple(float(x) for x in c))
            if ns_steps is not None and ns_steps != len(sched):
                raise ValueError(f"ns_steps={ns_steps} contradicts a per-step ns_coefficients list of {len(sched)}")
    if len(sched) < 1:
        raise ValueError("ns_coefficients/ns_steps: need at least one Newton-Schulz step")
    return [tuple(c) for c in sched]  # type: ignore[misc]


def fused_default(dtype: torch.dtype) -> bool:
    """Whether Newton-Schulz folds its scalings and sums into the matrix products by default for this dtype:
    yes in float32 / float64 (the same iteration up to float rounding); no in bf16 / fp16, where upstream's
    arithmetic (a rounding after every operation) is kept so the bf16 reference runs are matched bit for bit."""
    return dtype not in (torch.bfloat16, torch.float16)


def newton_schulz_(X: torch.Tensor, schedule: Sequence[Coeffs], eps: float = 1e-7, fused: bool = False,
                   normalize: bool = True) -> torch.Tensor:
    """On a wide (rows <= cols), contiguous X (or a batch of them), overwriting it: divide by (Frobenius norm +
    eps), then X <- aX + (bA + (cA)A)X, A = X X^T, for each (a, b, c). Returns the result (X or a buffer like X).

    ``fused=False``: every product and sum rounded as upstream's ``a * X + B @ X`` with ``B = b * A + c * A @ A``
    (a bf16 run matches it bit for bit), into buffers allocated once. ``fused=True``: ``B = bA + cA^2`` in one
    ``baddbmm``, then ``(B + aI) X`` in one ``bmm`` (a added to B's diagonal), the scalings and sums done inside
    the products (fewer roundings and passes; in bf16 as accurate as upstream's arithmetic, measured against a
    float64 run).
    """
    if normalize:  # False: the caller has normalised X (newton_schulz's norm="gram")
        X.div_(X.norm(dim=(-2, -1), keepdim=True) + eps)
    A = X.new_empty((*X.shape[:-1], X.size(-2)))
    B = torch.empty_like(A)
    if fused:
        X3, A3, B3 = X.view(-1, *X.shape[-2:]), A.view(-1, *A.shape[-2:]), B.view(-1, *B.shape[-2:])
        Y3 = torch.empty_like(X3)
        for a, b, c in schedule:
            torch.bmm(X3, X3.mT, out=A3)
            torch.baddbmm(A3, A3, A3, beta=b, alpha=c, out=B3)
            # aX + BX as (B + aI)X: one product and no pass over X (torch's CPU baddbmm(X, B, X) first copies X
            # into its output)
            B3.diagonal(dim1=-2, dim2=-1).add_(a)
            torch.bmm(B3, X3, out=Y3)
            X3, Y3 = Y3, X3
        return X3.view(X.shape)
    cA, BX = torch.empty_like(A), torch.empty_like(X)
    for a, b, c in schedule:
        torch.matmul(X, X.mT, out=A)
        torch.matmul(torch.mul(A, c, out=cA), A, out=B)
        B.add_(torch.mul(A, b, out=cA))
        torch.matmul(B, X, out=BX)
        X.mul_(a).add_(BX)
    return X


def newton_schulz(
    G: torch.Tensor, schedule: Sequence[Coeffs], dtype: torch.dtype = torch.bfloat16, eps: float = 1e-7,
    norm: str = "frobenius", *, fused: bool | None = None,
) -> torch.Tensor:
    """Approximate polar factor U V^T of G (2-D, or a batch of matrices over the last two dims) with the quintic
    X <- aX + (bA + cA^2)X, A = X X^T.

    Computed in ``dtype`` (a new tensor; G is not modified), on the wide orientation (transposed when
    rows > cols), after a normalisation that bounds the spectral norm by 1:

    - ``norm="frobenius"``: X / (||X||_F + eps) (track 3, KellerJordan/Muon);
    - ``norm="gram"``: X / max(||X X^T||_F^(1/2), eps), with the Gram product in float32 (a tighter bound,
      (sum sigma^4)^(1/4) <= ||X||_F; the track-3 record #44/#46 ``gram_frobenius_norm_estimate``).

    Returns a tensor of ``dtype``. ``fused``: see ``newton_schulz_`` (None: ``fused_default(dtype)``).
    """
    if G.ndim < 2:
        raise ValueError(f"newton_schulz expects a tensor with ndim >= 2, got shape {tuple(G.shape)}")
    tall = G.size(-2) > G.size(-1)
    X = (G.mT if tall else G).to(dtype=dtype, memory_format=torch.contiguous_format, copy=True)
    if norm == "gram":
        Xf = X.float()
        X.div_((Xf @ Xf.mT).norm(dim=(-2, -1), keepdim=True).sqrt().clamp_min(eps).to(X.dtype))
    elif norm != "frobenius":
        raise ValueError(f"newton_schulz: norm must be 'frobenius' or 'gram', got {norm!r}")
    X = newton_schulz_(X, schedule, eps, fused_default(dtype) if fused is None else fused,
                       normalize=norm == "frobenius")
    return X.mT if tall else X


def newton_schulz_batches(
    mats: Sequence[torch.Tensor], schedule: Sequence[Coeffs], dtype: torch.dtype = torch.bfloat16, eps: float = 1e-7,
    *, fused: bool | None = None, compiled: bool = False,
) -> list[tuple[torch.Tensor, list[int], list[bool]]]:
    """The batched iterations behind ``newton_schulz_batched``, one per shape: ``(O, idx, tall)`` with ``O`` the
    ``(len(idx), rows, cols)`` wide results, ``idx`` the positions in ``mats`` they belong to and ``tall[j]``
    whether input ``idx[j]`` was tall (its result is ``O[j].mT``). For callers that work on whole batches (NorMuon's
    row statistics)."""
    iterate = compiled_newton_schulz_() if compiled else newton_schulz_
    fused = fused_default(dtype) if fused is None else fused
    groups: dict[tuple, list[int]] = {}
    for i, m in enumerate(mats):
        if m.ndim != 2:
            raise ValueError(f"newton_schulz_batched expects 2-D matrices, got shape {tuple(m.shape)}")
        groups.setdefault((min(m.shape), max(m.shape), m.device), []).append(i)
    out = []
    for (rows, cols, device), idx in groups.items():
        X = torch.empty((len(idx), rows, cols), dtype=dtype, device=device)
        tall = [mats[i].size(0) > mats[i].size(1) for i in idx]
        for j, i in enumerate(idx):
            m = mats[i]
            if tall[j]:  # a transposing copy: narrowing the dtype first halves what it moves
                m = (m.to(dtype) if dtype.itemsize < m.dtype.itemsize else m).mT
            X[j].copy_(m)
        O = iterate(X, schedule, eps, fused)
        out.append((O, idx, tall))
    return out


def newton_schulz_batched(
    mats: Sequence[torch.Tensor], schedule: Sequence[Coeffs], dtype: torch.dtype = torch.bfloat16, eps: float = 1e-7,
    *, fused: bool | None = None, compiled: bool = False,
) -> list[torch.Tensor]:
    """``newton_schulz`` of each 2-D matrix in ``mats``, all matrices of one shape in one batched iteration.

    Tall matrices are turned wide first (as ``newton_schulz`` does), so an (m, n) and an (n, m) matrix share a
    batch. Returns ``dtype`` tensors in input order, each of its input's shape (views into the batch result). On
    CPU the bf16 result equals ``newton_schulz`` matrix by matrix bit for bit; float32 agrees to rounding (the
    batched matmul kernel blocks differently). ``fused``: see ``newton_schulz_`` (None: ``fused_default(dtype)``).
    ``compiled``: the iteration runs through ``torch.compile``.
    """
    out: list[torch.Tensor] = [None] * len(mats)  # type: ignore[list-item]
    for O, idx, tall in newton_schulz_batches(mats, schedule, dtype, eps, fused=fused, compiled=compiled):
        for j, i in enumerate(idx):
            out[i] = O[j].mT if tall[j] else O[j]
    return out


def compiled_newton_schulz_():
    """``torch.compile(newton_schulz_)``, built once: the Muon family's compiled path (default on CUDA only)."""
    return compile_once(newton_schulz_)


def check_ns_args(ns_coefficients: CoeffSpec, ns_steps: int | None, ns_dtype: torch.dtype) -> None:
    """ValueError naming the argument for a bad Newton-Schulz schedule, step count or dtype (shared by the Muon family)."""
    if ns_steps is not None and (not isinstance(ns_steps, int) or ns_steps < 1):
        raise ValueError(f"ns_steps: must be a positive integer or None, got {ns_steps!r}")
    if not isinstance(ns_dtype, torch.dtype) or not ns_dtype.is_floating_point:
        raise ValueError(f"ns_dtype: must be a floating torch.dtype, got {ns_dtype!r}")
    resolve_ns_schedule(ns_coefficients, ns_steps)


def _check_common(lr: float, weight_decay: float, momentum: float) -> None:
    """ValueError naming the argument for a negative/non-finite lr or weight_decay, or momentum outside [0, 1)."""
    check_nonneg("lr", lr)
    check_nonneg("weight_decay", weight_decay)
    if not (isinstance(momentum, (int, float)) and 0.0 <= momentum < 1.0):
        raise ValueError(f"momentum: must be in [0, 1), got {momentum!r}")


def _dist_world() -> tuple[int, int]:
    """(rank, world_size) when a process group with more than one rank is initialised, else (0, 1)."""
    if dist.is_available() and dist.is_initialized():
        ws = dist.get_world_size()
        if ws > 1:
            return dist.get_rank(), ws
    return 0, 1


def owned(params: list[torch.Tensor], rank: int, world_size: int) -> list[torch.Tensor]:
    """The items rank ``rank`` updates under round-robin ownership: item k*ws + rank of every chunk k."""
    return params[rank::world_size]


def gather_owned(params: list[torch.Tensor], rank: int, world_size: int) -> None:
    """After each rank updated its ``owned`` items, give every rank every item: one all_gather per chunk.

    Chunks of equal-shaped, same-dtype, contiguous tensors gather straight into the parameters; otherwise
    through flat buffers padded to the chunk's largest numel (gloo needs equal sizes per all_gather).
    """
    for base in range(0, len(params), world_size):
        chunk = params[base : base + world_size]
        uniform = (
            len(chunk) == world_size
            and all(p.shape == chunk[0].shape and p.dtype == chunk[0].dtype for p in chunk)
            and all(p.is_contiguous() for p in chunk)
        )
        if uniform:
            dist.all_gather([p.data for p in chunk], chunk[rank].data)
            continue
        n = max(p.numel() for p in chunk)
        ref = chunk[0]
        bufs = [torch.empty(n, dtype=ref.dtype, device=ref.device) for _ in range(world_size)]
        mine = torch.zeros(n, dtype=ref.dtype, device=ref.device)
        if rank < len(chunk):
            mine[: chunk[rank].numel()].copy_(chunk[rank].detach().reshape(-1).to(ref.dtype))
        dist.all_gather(bufs, mine)
        for i, p in enumerate(chunk):
            if i != rank:
                p.data.copy_(bufs[i][: p.numel()].view(p.shape).to(p.dtype))


def sharded_apply(params: list[torch.Tensor], update_one, rank: int, world_size: int) -> None:
    """Round-robin ownership (the track-3 scheme): ``update_one(p)`` on this rank's ``owned`` items, then
    ``gather_owned``. ``params`` must be in the same order on every rank."""
    for p in owned(params, rank, world_size):
        update_one(p)
    gather_owned(params, rank, world_size)


class ShardedMatrixOptimizer(torch.optim.Optimizer):
    """Base for Muon-like optimizers: ``step`` collects every matrix with a gradient (on more than one rank only
    the ones this rank owns, see ``owned``) and calls ``self._update_many(params, group, schedule)`` once per
    group, so that subclasses orthogonalise them together (``newton_schulz_batched``); then, on more than one
    rank, ``gather_owned`` sends every updated matrix to every rank.

    Groups must carry ``ns_coefficients``, ``ns_steps`` and ``compiled`` (see resolve_ns_schedule, ``_ns``).
    """

    def _update_many(self, params: list[torch.Tensor], group: dict, schedule: list[Coeffs]) -> None:  # pragma: no cover
        raise NotImplementedError

    @staticmethod
    def _orthogonalize(mats: list[torch.Tensor], group: dict, schedule: list[Coeffs], eps: float, *,
                       batches: bool = False) -> list:
        """Batched NS of the 2-D views ``mats`` with the group's schedule and dtype; compiled when the group's
        ``compiled`` says so (None: when the matrices are on CUDA). ``batches=True``: the batches themselves
        (``newton_schulz_batches``) instead of one result per matrix."""
        if not mats:
            return []
        compiled = use_compiled(group.get("compiled"), mats)
        ns = newton_schulz_batches if batches else newton_schulz_batched
        return ns(mats, schedule, group["ns_dtype"], eps, fused=group.get("ns_fused"), compiled=compiled)

    def add_param_group(self, param_group: dict) -> None:
        """torch's add_param_group, then the same checks as the constructor (also for groups added later)."""
        super().add_param_group(param_group)
        try:
            self._check_group(self.param_groups[-1])
        except ValueError:
            self.param_groups.pop()  # leave the optimizer as it was
            raise

    def _check_group(self, group: dict) -> None:
        _check_common(group["lr"], group["weight_decay"], group["momentum"])
        resolve_ns_schedule(group["ns_coefficients"], group["ns_steps"])
        check_compiled(group.get("compiled"))
        if not (group.get("ns_fused") is None or isinstance(group["ns_fused"], bool)):
            raise ValueError(f"ns_fused: must be None (by ns_dtype), True or False, got {group['ns_fused']!r}")
        for p in group["params"]:
            if p.ndim < 2:
                raise ValueError(
                    f"{type(self).__name__}: only parameters with ndim >= 2 are supported, got shape "
                    f"{tuple(p.shape)}; give vectors/scalars to an aux optimizer (AdamW)"
                )

    @staticmethod
    def _momentum(params: list[torch.Tensor], bufs: list[torch.Tensor], group: dict) -> list[torch.Tensor]:
        """m <- lerp(m, g, 1 - mu) for all, then the update: lerp(g, m, mu) (new tensors) if nesterov else m."""
        grads = [p.grad for p in params]
        mu = group["momentum"]
        torch._foreach_lerp_(bufs, grads, 1 - mu)
        return torch._foreach_lerp(grads, bufs, mu) if group["nesterov"] else list(bufs)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        rank, world_size = _dist_world()
        for group in self.param_groups:
            schedule = resolve_ns_schedule(group["ns_coefficients"], group["ns_steps"])
            ordered = group["params"]
            if world_size > 1:
                ordered = sorted(group["params"], key=lambda q: tuple(q.shape), reverse=True)
            mine = [p for p in owned(ordered, rank, world_size) if p.grad is not None]
            if mine:
                self._update_many(mine, group, schedule)
            if world_size > 1:
                gather_owned(ordered, rank, world_size)
        return loss


class Muon(ShardedMatrixOptimizer):
    """Muon, track-3 variant (modded-nanogpt ``records/track_3_optimization/train_gpt_simple.py``).

    Only for parameters with ndim >= 2 (hidden matrices); embeddings, head and vectors go to an aux AdamW.

    Hyperparameters (defaults = the track-3 class defaults; the track-3 script itself uses lr=0.025,
    weight_decay=0.05):

    - ``lr=0.02``: step size (read from the group at every step, so LR schedulers work).
    - ``weight_decay=0.0``: decoupled, ``p <- p * (1 - lr * weight_decay)`` before the update.
    - ``momentum=0.95``: mu in [0, 1) of the EMA ``m <- lerp(m, g, 1 - mu)`` (``mu=`` is accepted as an alias,
      the track-3 name).
    - ``nesterov=True``: orthogonalise ``lerp(g, m, mu)`` instead of m.
    - ``ns_coefficients=(2.0, -1.5, 0.5)``: one (a, b, c) triple repeated ns_steps times, a per-step list of
      triples, or a preset name: ``"track3"`` (12 x (2, -1.5, 0.5)), ``"tuned5"`` (5 x (3.4445, -4.7750,
      2.0315), KellerJordan/Muon) or ``"medium"`` (the medium record's 5 per-step tuned triples).
    - ``ns_steps=None``: number of NS iterations; None = 12 for a single triple, the length of a preset/list.
    - ``ns_dtype=torch.bfloat16``: dtype the NS iteration runs in (bf16 as upstream; float32 for exact tests).
    - ``eps=1e-7``: added to the Frobenius norm before normalising.
    - ``ns_fused=None``: fold each NS step's scalings and sums into its matrix products (``B = bA + cA^2`` in one
      ``baddbmm``, ``(B + aI) X`` in one ``bmm``: one rounding per product, as pytorch_optimizer folds them). None = on for float32/64 NS (the same iteration up to float
      rounding), off for bf16/fp16: there upstream's arithmetic, a rounding after every operation, is kept so that
      the bf16 reference runs are matched bit for bit (5 more elementwise passes per NS step).
    - ``compiled=None``: run Newton-Schulz through ``torch.compile`` (None = on CUDA only; True also on CPU).

    State per parameter: ``momentum_buffer`` (same shape and dtype as the parameter, as upstream).

    Speed: matrices of one shape (tall ones transposed) are orthogonalised in one batched Newton-Schulz
    iteration (``newton_schulz_batched``), also on each rank when sharded.

    Distributed: when torch.distributed is initialised with world_size > 1, each group's params are sorted
    by shape (descending, stable), processed in chunks of world_size; rank r updates item base + r and an
    all_gather per chunk sends the updated weights to every rank. Gradients must already be all-reduced (the
    loop does it). State therefore exists only on the owning rank. A parameter whose ``grad`` is None is left
    unchanged (on one process and when sharded alike; the all_gather still runs, so ranks stay in step).
    """

    def __init__(
        self,
        params,
        lr: float = 0.02,
        weight_decay: float = 0.0,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_coefficients: CoeffSpec = TRACK3_COEFFS,
        ns_steps: int | None = None,
        ns_dtype: torch.dtype = torch.bfloat16,
        eps: float = 1e-7,
        nd_mode: str = "flatten",
        *,
        mu: float | None = None,
        ns_fused: bool | None = None,
        compiled: bool | None = None,
    ):
        if mu is not None:
            momentum = mu
        _check_common(lr, weight_decay, momentum)
        if nd_mode not in ("flatten", "batch"):
            raise ValueError(f"nd_mode: must be 'flatten' or 'batch', got {nd_mode!r}")
        check_ns_args(ns_coefficients, ns_steps, ns_dtype)
        if not eps > 0:
            raise ValueError(f"eps: must be > 0, got {eps!r}")
        defaults = dict(
            lr=lr,
            weight_decay=weight_decay,
            momentum=momentum,
            nesterov=bool(nesterov),
            ns_coefficients=ns_coefficients,
            ns_steps=ns_steps,
            ns_dtype=ns_dtype,
            eps=eps,
            nd_mode=nd_mode,
            ns_fused=ns_fused,
            compiled=compiled,
        )
        super().__init__(params, defaults)

    def _update_many(self, params: list[torch.Tensor], group: dict, schedule: list[Coeffs]) -> None:
        for p in params:
            if "momentum_buffer" not in self.state[p]:
                self.state[p]["momentum_buffer"] = torch.zeros_like(p)
        us = self._momentum(params, [self.state[p]["momentum_buffer"] for p in params], group)
        flat = group.get("nd_mode", "flatten") == "flatten"
        mats = [u.reshape(u.size(0), -1) if u.ndim > 2 and flat else u for u in us]
        batch = [m for m in mats if m.ndim == 2]  # nd_mode="batch" stacks are orthogonalised as they are
        orth = iter(self._orthogonalize(batch, group, schedule, group["eps"]))
        updates = []
        for p, u in zip(params, mats):
            o = next(orth) if u.ndim == 2 else newton_schulz(u, schedule, group["ns_dtype"], group["eps"],
                                                             fused=group.get("ns_fused"))
            scale = max(1, u.size(-2) / u.size(-1)) ** 0.5
            if scale != 1:  # (x * 1 is x: skipped)
                o *= scale
            updates.append(o.reshape(p.shape))
        lr = group["lr"]
        torch._foreach_mul_(params, 1 - lr * group["weight_decay"])
        torch._foreach_add_(params, updates, alpha=-lr)


register(
    "muon",
    Muon,
    reference=(
        "Jordan et al. 2024, Muon (kellerjordan.github.io/posts/muon); KellerJordan/modded-nanogpt@f411b3d3 "
        "records/track_3_optimization/train_gpt_simple.py (class Muon); KellerJordan/Muon@857d1adc muon.py"
    ),
    matrix_only=True,
    notes=(
        "track-3 default: 12 NS steps of (2, -1.5, 0.5) in bf16; ns_coefficients='tuned5' gives KellerJordan/Muon's "
        "5-step quintic, 'medium' the medium record's per-step coefficients; sharded over ranks when distributed"
    ),
    ranges=dict(weight_decay=NONNEG, momentum=UNIT, mu=UNIT, ns_steps=COUNT, eps=POSITIVE),
)
