"""PSGD Kron: Kronecker-factored preconditioned SGD with momentum (Xi-Lin Li; Evan Walters' kron_torch).

Follows evanatyourservice/kron_torch ``kron_torch/kron.py`` (commit 884427c3), run eagerly:

* one global, deterministic "update counter" emulates the preconditioner-update probability: the counter is
  incremented every step and the preconditioner is updated when ``counter >= 1 / prob(step)`` (then reset);
  ``prob`` defaults to the reference schedule (1.0 flat for 500 steps, then exp(-0.001 (n - 500)), floored at
  0.03), computed in float32 like the reference;
* ``random.Random(42)`` is drawn once per step; when the draw is < 0.01 on an update step the factors of every
  >=2-D parameter are rebalanced (their max-abs norms set to their geometric mean) before the update;
* momentum ``m <- b1 m + (1-b1) g``, debiased ``m_hat = m / (1 - b1^t)``;
* on an update step one ``torch.randn_like(m_hat)`` is drawn from the **global** torch RNG per parameter (in
  parameter order) and ``sqrt(eps_f32) * mean|m_hat| * V`` is added to ``m_hat`` in place -- the perturbed
  momentum is also what gets preconditioned -- then each factor Q_i takes one step of
  ``Q_i <- Q_i - precond_lr * triu(T1 - T2) / ||T1 + T2|| Q_i`` (A = Q m_hat, B = Q^{-T} V, T1/T2 the
  contractions of A/B with themselves over all other dims, ||.|| a cheap lower bound of the spectral norm;
  diagonal factors use the elementwise form with a max-abs normaliser);
* direction ``u = (Q^T Q) m_hat`` per dim, RMS clip ``u *= min(1, 1.1 / (RMS(u) + 1e-12))``, weight decay for
  >=2-D params only ``u += wd * p``, ``p -= lr * u``.

Tensors with more than two dims are reshaped to 2-D (``merge_dims``, the reference rule); dims larger than
``max_size_triangular``, size-1 dims and tensors with fewer than ``min_ndim_triangular`` dims get diagonal
factors. Under ``torch.compile`` the reference draws different random numbers; this implementation is eager.
"""

from __future__ import annotations

import math
import random
import string

import torch

from optbench.optim._fp32state import load_state_dict_keep_dtype
from optbench.optim._triangular import tri_mm
from optbench.optim.registry import COUNT, NONNEG, POSITIVE, Range, UNIT, register

__all__ = ["Kron", "ProbSchedule"]

_LETTERS = string.ascii_lowercase + string.ascii_uppercase


class ProbSchedule:
    """Preconditioner-update probability: ``max_prob * exp(-decay * (n - flat_start))`` clamped to
    ``[min_prob, max_prob]``, evaluated in float32 like the reference's ``ProbScheduler``."""

    def __init__(self, max_prob: float = 1.0, min_prob: float = 0.03, decay: float = 0.001, flat_start: float = 500):
        self.max_prob, self.min_prob, self.decay, self.flat_start = max_prob, min_prob, decay, flat_start

    def __call__(self, n: int) -> torch.Tensor:
        f32 = torch.float32
        prob = torch.tensor(self.max_prob, dtype=f32) * torch.exp(
            -torch.tensor(self.decay, dtype=f32) * (torch.tensor(float(n), dtype=f32) - torch.tensor(self.flat_start, dtype=f32))
        )
        return prob.clamp_(min=torch.tensor(self.min_prob, dtype=f32).item(), max=torch.tensor(self.max_prob, dtype=f32).item())

    def __repr__(self) -> str:
        return (
            f"ProbSchedule(max_prob={self.max_prob}, min_prob={self.min_prob}, decay={self.decay}, "
            f"flat_start={self.flat_start})"
        )


def _dim_is_diag(shape, max_size, min_ndim, memory_save_mode) -> list[bool]:
    if memory_save_mode is None:
        diag = [False] * len(shape)
    elif memory_save_mode == "smart_one_diag":
        diag = [False] * len(shape)
        srt = sorted(shape)
        if len(shape) > 1 and srt[-1] > srt[-2]:
            diag[max(range(len(shape)), key=lambda i: (shape[i], i))] = True
    elif memory_save_mode == "one_diag":
        diag = [False] * len(shape)
        diag[max(range(len(shape)), key=lambda i: (shape[i], i))] = True
    elif memory_save_mode == "all_diag":
        diag = [True] * len(shape)
    else:  # validated in __init__
        raise ValueError(memory_save_mode)
    return [
        d or size == 1 or size > max_size or len(shape) < min_ndim for size, d in zip(shape, diag)
    ]


def _lower_bound_norm(A: torch.Tensor, max_abs: torch.Tensor) -> torch.Tensor:
    """Cheap lower bound of the spectral norm of a symmetric A (one power step from its largest column)."""
    A = A / max_abs
    col_sq = (A * A).sum(0)  # the reference's einsum("ij,ij->j"); torch runs that as a bmm over 1x1 products
    i = torch.argmax(col_sq)
    x = torch.index_select(A, 1, i.reshape(1)).flatten()
    x = x @ A
    x = x / x.norm()
    x = A @ x
    return x.norm() * max_abs


def _solve_right_upper(X: torch.Tensor, Q: torch.Tensor) -> torch.Tensor:
    """X @ inv(Q) for an upper-triangular Q, over the last dim of X."""
    return torch.linalg.solve_triangular(
        Q.float(), X.reshape(-1, X.size(-1)).float(), upper=True, left=False, unitriangular=False
    ).to(Q.dtype).reshape_as(X)


_TRIU_INDEX: dict[tuple[int, str], torch.Tensor] = {}


def _triu_index(n: int, device) -> torch.Tensor:
    """Flat indices of an n x n matrix's upper triangle, row by row (built once per size and device: a gather
    with them is cheaper than a boolean mask built and scanned every step)."""
    key = (n, str(device))
    if key not in _TRIU_INDEX:
        mask = torch.ones(n, n, dtype=torch.bool, device=device).triu_()
        _TRIU_INDEX[key] = mask.view(-1).nonzero().squeeze(1)
    return _TRIU_INDEX[key]


def pack_triu(q: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """The upper triangle of a square q, row by row, as a vector of n(n+1)/2 (how Kron stores its factors)."""
    return torch.take(q, _triu_index(q.size(0), q.device), out=out)


def factors(state: dict) -> list[torch.Tensor]:
    """A parameter's preconditioner factors Q_i as used in the maths: triangular ones unpacked to n x n
    (zeros below the diagonal), diagonal ones as their vector."""
    out = []
    for q, d in zip(state["Q"], state["diag"]):
        if d:
            out.append(q)
        else:
            n = (math.isqrt(8 * q.numel() + 1) - 1) // 2
            full = q.new_zeros(n, n)
            out.append(full.view(-1).index_copy_(0, _triu_index(n, q.device), q).view(n, n))
    return out


def _self_contraction(X: torch.Tensor, i: int, diag: bool, expr: str) -> torch.Tensor:
    """X contracted with itself over every dim but i (the einsum ``expr``); for a matrix directly as mm / sum."""
    if X.dim() != 2:
        return torch.einsum(expr, X, X)
    if diag:
        return (X * X).sum(1 - i)
    return X @ X.T if i == 0 else X.T @ X


def _apply_factors(Q: list, G: torch.Tensor, gram: bool) -> torch.Tensor:
    """Multiply G along each dim i by Q_i (``gram``: by Q_i^T Q_i); a 1-D factor is a diagonal.

    The reference writes this as one multi-operand einsum; contracted pairwise left to right (torch without
    opt_einsum) that materialises an outer product of all factors, so it is applied one dim at a time here.
    """
    if G.dim() == 2 and Q[0].dim() == 2 and Q[1].dim() == 2:  # a matrix with two triangular factors
        A = tri_mm(tri_mm(Q[0], G, "U", "F"), Q[1].T, "F", "L")
        if not gram:
            return A
        # (Q^T Q) G (Q^T Q) as four thin products, not two n^3 grams
        return tri_mm(tri_mm(Q[0].T, A, "L", "F"), Q[1], "F", "U")
    out = G
    for i, q in enumerate(Q):
        if q.dim() < 2:
            shape = [1] * out.dim()
            shape[i] = -1
            q = q.view(shape)
            out = (q * q) * out if gram else q * out
        else:
            m = q.T @ q if gram else q
            out = torch.movedim(torch.tensordot(m, out, dims=([1], [i])), 0, i)
    return out


class Kron(torch.optim.Optimizer):
    """PSGD with Kronecker-factored preconditioner (kron_torch semantics).

    Hyperparameters (defaults = kron_torch defaults):
        lr (3e-4): step size, read from the param group every step.
        b1 (0.9): momentum.
        weight_decay (0.0): decoupled-style ``u += wd * p`` before ``p -= lr * u``; only for params with >= 2 dims.
        preconditioner_update_probability (None -> ProbSchedule()): a float, or a callable of the step count.
        max_size_triangular (8192): dims larger than this get a diagonal factor.
        min_ndim_triangular (2): tensors with fewer dims get only diagonal factors.
        memory_save_mode (None): None | "smart_one_diag" | "one_diag" | "all_diag".
        momentum_into_precond_update (True): fit the preconditioner to m_hat (else to a copy of the raw gradient;
            the reference perturbs ``p.grad`` itself in place in that case).
        precond_lr (0.1): preconditioner step size.
        precond_init_scale (1.0): factors start as scale^(1/ndim) * I.
        merge_dims (True): reshape >2-D tensors to 2-D.
        mu_dtype (None): momentum dtype (None -> the parameter dtype; float32 for bf16/fp16 parameters).
        precond_dtype (None -> float32): factor dtype.

    State per parameter: ``step``, ``momentum_buffer``, ``diag`` (per dim: diagonal factor?) and ``Q``, the
    factors: a diagonal one as its vector, a triangular one as its upper triangle packed row by row
    (n(n+1)/2 numbers, ``pack_triu``; ``factors(state)`` gives the n x n matrices). Factors stay upper triangular
    (every update is triu(...) @ Q), so packing halves their memory without changing the maths.

    Optimizer-level counters (saved in ``state_dict()["kron"]``): ``prob_step``, ``update_counter`` and
    ``rng_draws`` (the number of ``random.Random(42)`` draws, replayed on load). The global torch RNG is the
    caller's; a resumed run matches an uninterrupted one only if the caller restores it too.
    """

    def __init__(
        self,
        params,
        lr: float = 3e-4,
        b1: float = 0.9,
        weight_decay: float = 0.0,
        preconditioner_update_probability=None,
        max_size_triangular: int = 8192,
        min_ndim_triangular: int = 2,
        memory_save_mode: str | None = None,
        momentum_into_precond_update: bool = True,
        precond_lr: float = 0.1,
        precond_init_scale: float = 1.0,
        merge_dims: bool = True,
        mu_dtype: torch.dtype | None = None,
        precond_dtype: torch.dtype | None = None,
    ):
        if not lr >= 0.0:
            raise ValueError(f"Kron: lr must be >= 0, got {lr!r}")
        if not 0.0 <= b1 < 1.0:
            raise ValueError(f"Kron: b1 must be in [0, 1), got {b1!r}")
        if not weight_decay >= 0.0:
            raise ValueError(f"Kron: weight_decay must be >= 0, got {weight_decay!r}")
        if preconditioner_update_probability is not None and not callable(preconditioner_update_probability):
            if not 0.0 < float(preconditioner_update_probability) <= 1.0:
                raise ValueError(
                    "Kron: preconditioner_update_probability must be a callable or a float in (0, 1], "
                    f"got {preconditioner_update_probability!r}"
                )
        if memory_save_mode not in (None, "smart_one_diag", "one_diag", "all_diag"):
            raise ValueError(
                f"Kron: memory_save_mode must be None, 'smart_one_diag', 'one_diag' or 'all_diag', "
                f"got {memory_save_mode!r}"
            )
        if not (isinstance(max_size_triangular, int) and max_size_triangular >= 1):
            raise ValueError(f"Kron: max_size_triangular must be an int >= 1, got {max_size_triangular!r}")
        if not (isinstance(min_ndim_triangular, int) and min_ndim_triangular >= 0):
            raise ValueError(f"Kron: min_ndim_triangular must be an int >= 0, got {min_ndim_triangular!r}")
        if not precond_lr >= 0.0:
            raise ValueError(f"Kron: precond_lr must be >= 0, got {precond_lr!r}")
        if not precond_init_scale > 0.0:
            raise ValueError(f"Kron: precond_init_scale must be > 0, got {precond_init_scale!r}")
        if preconditioner_update_probability is None:
            preconditioner_update_probability = ProbSchedule()
        defaults = dict(
            lr=lr,
            b1=b1,
            weight_decay=weight_decay,
            preconditioner_update_probability=preconditioner_update_probability,
            max_size_triangular=max_size_triangular,
            min_ndim_triangular=min_ndim_triangular,
            memory_save_mode=memory_save_mode,
            momentum_into_precond_update=momentum_into_precond_update,
            precond_lr=precond_lr,
            precond_init_scale=precond_init_scale,
            merge_dims=merge_dims,
            mu_dtype=mu_dtype,
            precond_dtype=precond_dtype,
        )
        super().__init__(params, defaults)
        self._prob_step = 0
        self._update_counter = 0
        self._rng_draws = 0
        self._rng = random.Random(42)

    # ----- per-step global decisions -----------------------------------------------------------------------
    def _decide(self) -> tuple[bool, bool]:
        prob = self.param_groups[0]["preconditioner_update_probability"]
        if callable(prob):
            prob = prob(self._prob_step)
        self._update_counter += 1
        # the reference compares an int32 counter tensor with 1 / prob (a float32 tensor for the schedule)
        do_update = bool(torch.tensor(self._update_counter, dtype=torch.int32) >= 1 / prob)
        if do_update:
            self._update_counter = 0
        self._prob_step += 1
        balance = self._rng.random() < 0.01 and do_update
        self._rng_draws += 1
        return do_update, balance

    # ----- state ---------------------------------------------------------------------------------------------
    @staticmethod
    def _init_state(state, grad: torch.Tensor, p: torch.Tensor, group) -> None:
        precond_dtype = group["precond_dtype"] or torch.float32
        state["step"] = 0
        if grad.dim() == 0:  # a scalar is handled as a 1-element vector (diagonal factor)
            state["merged_shape"] = [1]
            grad = grad.view(1)
        elif grad.dim() > 2 and group["merge_dims"]:
            s = list(grad.shape)
            shape1 = [math.prod(s[:-1]), s[-1]]
            shape2 = [s[0], math.prod(s[1:])]
            state["merged_shape"] = shape1 if (shape1[1] - shape1[0]) <= (shape2[1] - shape2[0]) else shape2
            grad = grad.view(*state["merged_shape"])
        mu_dtype = group["mu_dtype"] or (torch.float32 if p.dtype in (torch.bfloat16, torch.float16) else p.dtype)
        state["momentum_buffer"] = torch.zeros_like(grad, dtype=mu_dtype)
        shape = grad.shape
        if len(shape) > 13:
            raise ValueError(f"Kron: tensors with more than 13 dims are not supported, got shape {tuple(shape)}")
        scale = group["precond_init_scale"] ** (1 / len(shape))
        diag = _dim_is_diag(shape, group["max_size_triangular"], group["min_ndim_triangular"], group["memory_save_mode"])
        state["Q"] = [
            scale * (torch.ones(n, dtype=precond_dtype, device=grad.device) if d
                     else pack_triu(torch.eye(n, dtype=precond_dtype, device=grad.device)))
            for n, d in zip(shape, diag)
        ]
        state["diag"] = diag

    # ----- maths ---------------------------------------------------------------------------------------------
    @staticmethod
    def _exprs(ndim: int, diag: list[bool]) -> list[str]:
        """Per-factor einsum strings contracting a tensor with itself over all dims but i (i kept twice for a
        triangular factor, once for a diagonal one)."""
        L = _LETTERS
        exprs = []
        for i, d in enumerate(diag):
            piece1 = "".join(L[i + 13] if j == i else L[j] for j in range(ndim))
            if d:
                exprs.append(piece1 + "," + piece1 + "->" + L[i + 13])
            else:
                piece2 = "".join(L[i + 26] if j == i else L[j] for j in range(ndim))
                exprs.append(piece1 + "," + piece2 + "->" + L[i + 13] + L[i + 26])
        return exprs

    @staticmethod
    def _update_precond(Q: list, exprGs: list[str], G: torch.Tensor, precond_lr: float) -> None:
        """One preconditioner-fitting step; draws V from the global RNG and perturbs G in place."""
        dtype = G.dtype
        tiny = torch.tensor(torch.finfo(dtype).tiny, dtype=dtype, device=G.device)
        lr_t = torch.tensor(precond_lr, dtype=dtype, device=G.device)
        order = G.dim()
        V = torch.randn_like(G)
        eps = torch.tensor(torch.finfo(torch.float32).eps, dtype=dtype, device=G.device)
        G += eps.sqrt() * G.abs().mean() * V
        conjB = V.permute(*range(1, order), 0)
        for i, q in enumerate(Q):
            conjB = conjB / q if q.dim() < 2 else _solve_right_upper(conjB, q)
            if i < order - 1:
                conjB = torch.transpose(conjB, i, order - 1)
        A = _apply_factors(Q, G, gram=False)
        for i, (q, exprG) in enumerate(zip(Q, exprGs)):
            term1 = _self_contraction(A, i, q.dim() < 2, exprG)
            term2 = _self_contraction(conjB, i, q.dim() < 2, exprG)
            term1, term2 = term1 - term2, term1 + term2
            term1 *= lr_t
            norm = term2.norm(float("inf"))
            if q.dim() < 2:
                term1 *= q / norm.clamp_(min=tiny)
            else:
                torch.triu(term1, out=term1)
                bound = _lower_bound_norm(term2, norm) if norm > 0 else norm
                term1 /= bound.clamp_(min=tiny)
                term1 = tri_mm(term1, q, "U", "U")
            q.sub_(term1)

    @staticmethod
    def _balance(Q: list) -> None:
        norms = torch.stack([q.norm(float("inf")) for q in Q])
        geometric_mean = norms.log().mean().exp()
        scale = geometric_mean / norms
        torch._foreach_mul_(Q, list(scale))

    # ----- step ----------------------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        do_update, balance = self._decide()

        for group in self.param_groups:
            precond_dtype = group["precond_dtype"] or torch.float32
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                state = self.state[p]
                if len(state) == 0:
                    self._init_state(state, grad, p, group)
                state["step"] += 1
                if "merged_shape" in state:
                    grad = grad.view(*state["merged_shape"])

                beta = group["b1"]
                buf = state["momentum_buffer"]
                buf.mul_(beta).add_(grad.to(buf.dtype), alpha=1 - beta)
                m_hat = (buf / (1 - beta ** state["step"])).to(dtype=precond_dtype)

                exprs = self._exprs(grad.dim(), state["diag"])
                Q = factors(state)
                if grad.dim() > 1 and balance:
                    self._balance(Q)
                if do_update:
                    target = m_hat if group["momentum_into_precond_update"] else grad.to(precond_dtype, copy=True)
                    self._update_precond(Q, exprs, target, group["precond_lr"])
                if do_update or (grad.dim() > 1 and balance):
                    for stored, q in zip(state["Q"], Q):
                        if q.dim() == 2:
                            pack_triu(q, out=stored)

                u = _apply_factors(Q, m_hat, gram=True)
                u.mul_(torch.minimum(torch.tensor(1.0, dtype=u.dtype), 1.1 / u.square().mean().sqrt().add(1e-12)))
                u = u.view(p.shape)
                if group["weight_decay"] != 0 and p.dim() >= 2:
                    u.add_(p, alpha=group["weight_decay"])
                p.add_(u.to(dtype=p.dtype), alpha=-group["lr"])
        return loss

    # ----- checkpointing -------------------------------------------------------------------------------------
    def state_dict(self):
        sd = super().state_dict()
        for g in sd["param_groups"]:  # keep the default schedule loadable with torch.load(weights_only=True)
            prob = g["preconditioner_update_probability"]
            if isinstance(prob, ProbSchedule):
                g["preconditioner_update_probability"] = {
                    "prob_schedule": [prob.max_prob, prob.min_prob, prob.decay, prob.flat_start]
                }
        sd["kron"] = {
            "prob_step": self._prob_step,
            "update_counter": self._update_counter,
            "rng_draws": self._rng_draws,
        }
        return sd

    def load_state_dict(self, state_dict):
        """Restore per-parameter state (dtypes kept) and the step / update counters; replay the balance RNG."""
        state_dict = dict(state_dict)
        counters = state_dict.pop("kron", None)
        groups = []
        for g in state_dict["param_groups"]:
            prob = g.get("preconditioner_update_probability")
            if isinstance(prob, dict) and "prob_schedule" in prob:
                g = {**g, "preconditioner_update_probability": ProbSchedule(*prob["prob_schedule"])}
            groups.append(g)
        state_dict["param_groups"] = groups
        load_state_dict_keep_dtype(self, state_dict, super().load_state_dict)
        for state in self.state.values():  # older checkpoints hold triangular factors as full n x n matrices
            if "Q" in state:
                state["Q"] = [pack_triu(q) if q.dim() == 2 else q for q in state["Q"]]
        if counters is not None:
            self._prob_step = int(counters["prob_step"])
            self._update_counter = int(counters["update_counter"])
            self._rng_draws = int(counters["rng_draws"])
            self._rng = random.Random(42)
            for _ in range(self._rng_draws):
                self._rng.random()


register(
    "kron",
    Kron,
    reference=(
        "Li 2015/2024, Preconditioned Stochastic Gradient Descent (arXiv:1512.04202, arXiv:2402.11858); "
        "evanatyourservice/kron_torch@884427c3 kron_torch/kron.py"
    ),
    aliases=("psgd-kron",),
    notes=(
        "Eager; preconditioner noise from the global torch RNG (one randn per parameter per update step, "
        "also added to the momentum); update-probability schedule via a deterministic counter; "
        "random.Random(42) balance; RMS clip at 1.1; weight decay only for >=2-D params."
    ),
    ranges=dict(
        b1=UNIT, weight_decay=NONNEG, preconditioner_update_probability=Range(0.0, 1.0, low_open=True),
        max_size_triangular=COUNT, min_ndim_triangular=COUNT, precond_lr=POSITIVE, precond_init_scale=POSITIVE,
    ),
)
