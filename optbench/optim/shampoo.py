"""Shampoo: a single-device re-implementation of facebookresearch/optimizers' DistributedShampoo default path.

Follows ``distributed_shampoo/`` at commit f6066066 (DistributedShampoo with SingleDeviceDistributedConfig and
RootInvShampooPreconditionerConfig + EigenConfig, the defaults). Per parameter group and step t = 1, 2, ...:

1. Each parameter is reshaped by merging small adjacent dims (reference ``merge_small_dims`` with target
   dimensionality 1: size-1 dims dropped, neighbours merged from the last dim while the product stays
   <= ``max_preconditioner_dim``) and cut into blocks of at most ``max_preconditioner_dim`` per dim.
2. Kronecker factors per block and per preconditioned dim k: ``F_k <- beta2 F_k + (1 - beta2) G_(k) G_(k)^T``
   (``beta2 == 1``: plain sums). The reference stores factors as packed upper triangles, so the upper triangle
   is the source of truth here too.
3. Every ``precondition_frequency`` steps after ``start_preconditioning_step`` (and at that step): inverse root
   ``(F / c2 + eps I)^(-1/root)`` via ``eigh`` with c2 = 1 - beta2^t (when beta2 < 1 and use_bias_correction);
   eigenvalues below eps are shifted up so the smallest becomes eps; root = 1 / exponent, exponent from
   ``inverse_exponent_override`` (default 1 / (2 * order): -1/4 per side for matrices, -1/2 for vectors;
   exponent 0 leaves that dim unpreconditioned). Inverse roots start as identity.
4. Diagonal grafting state (AdaGrad / RMSprop / Adam) is updated with the raw gradient.
5. Filtered gradient ``G_bar``: EMA with beta1 (beta3 for the current step), divided by ``1 - beta3 beta1^(t-1)``
   when use_bias_correction.
6. Direction per block: ``P = G_bar x_k Finv_k`` (each dim contracted with its inverse root); with grafting
   ``P <- P * ||P_graft|| / (||P|| + 1e-16)`` per block; before ``start_preconditioning_step`` with grafting the
   grafting direction alone is used.
7. Decoupled weight decay ``P <- P + wd * W``; ``W <- W - lr * P``.

Under DDP every rank computes the same update (replicated state); DistributedShampoo's block-sharded DDP mode,
FSDP modes, iterate averaging, momentum and the other preconditioner families are not implemented.
"""

from __future__ import annotations

import math
from itertools import chain

import torch

from optbench.optim._fp32state import load_state_dict_keep_dtype
from optbench.optim.registry import register

__all__ = ["Shampoo"]

_GRAFTING = ("adam", "adagrad", "rmsprop", "sgd")
_GRAFTING_BETA2 = {"adam": 0.999, "adagrad": 1.0, "rmsprop": 0.99, "sgd": None}
_WEIGHT_DECAY_TYPES = ("decoupled", "l2")


def merge_small_dims(shape: tuple[int, ...], threshold: int) -> tuple[int, ...]:
    """Reference ``merge_small_dims(shape, threshold, target_tensor_dimensionality=1)``."""
    if 0 in shape:
        return (0,)
    squeezed = [d for d in reversed(shape) if d != 1] or [1]
    new = [squeezed[0]]
    for nxt in squeezed[1:]:
        if new[-1] * nxt <= threshold:
            new[-1] = new[-1] * nxt
        else:
            new.append(nxt)
    return tuple(reversed(new))


def multi_dim_split(t: torch.Tensor, size: int) -> list[torch.Tensor]:
    """Split along every dim into chunks of at most ``size`` (row-major block order, like the reference)."""
    blocks = [t]
    for dim in range(t.dim()):
        blocks = [s for b in blocks for s in torch.split(b, size, dim=dim)]
    return blocks


def _state_dtype(p: torch.Tensor) -> torch.dtype:
    """float32 state for float32 / bf16 / fp16 parameters; float64 parameters keep float64 state."""
    return torch.float64 if p.dtype == torch.float64 else torch.float32


def _symmetrize_upper(a: torch.Tensor) -> torch.Tensor:
    """The symmetric matrix whose upper triangle is a's (what the reference's packed storage holds)."""
    return torch.triu(a) + torch.triu(a, 1).T


def _inverse_root(A: torch.Tensor, root: float, epsilon: float) -> torch.Tensor:
    """``(A + eps I)^(-1/root)`` via eigh, with the reference's eigenvalue shift for rank-deficient A."""
    A_ridge = A.add(torch.eye(A.shape[0], dtype=A.dtype, device=A.device), alpha=epsilon)
    try:
        L, Q = torch.linalg.eigh(A_ridge, UPLO="U")
    except RuntimeError:
        L, Q = torch.linalg.eigh(A_ridge.double(), UPLO="U")
        Q = Q.to(A.dtype)
    lambda_min = torch.min(L).item()
    L = L + (-min(lambda_min - epsilon, 0.0))
    inv_power = L.pow_(-1.0 / root)
    return Q * inv_power.unsqueeze(0) @ Q.T


class Shampoo(torch.optim.Optimizer):
    """Shampoo with blocking, grafting and eigh root inverses (DistributedShampoo semantics, one device).

    Hyperparameters (defaults = DistributedShampoo defaults):
        lr (1e-2): step size, read from the param group every step.
        betas ((0.9, 1.0)): beta1 for the filtered gradient (0 disables it); beta2 for the factors
            (1.0 = AdaGrad-style sums, < 1 = EMA, bias-corrected when use_bias_correction).
        beta3 (-1.0): weight of the current gradient in the filtered gradient used this step (-1 -> beta1).
        epsilon (1e-12): added to the factors (times I) before the root; eigenvalues floored at epsilon.
        weight_decay (0.0): added to the direction (decoupled) or to the gradient ("l2").
        weight_decay_type ("decoupled"): "decoupled" | "l2".
        max_preconditioner_dim (1024): block size per dim (and the small-dim merge threshold).
        precondition_frequency (1): recompute the inverse roots every this many steps.
        start_preconditioning_step (-1): first step using Shampoo (-1 -> precondition_frequency); before it the
            grafting direction is used (or the filtered gradient when grafting is None).
        inverse_exponent_override (None): {order: exponent} or {order: {dim: exponent}}; default exponent
            1 / (2 * order); 0 disables preconditioning of that dim.
        use_bias_correction (True): bias-correct the filtered gradient and EMA factors.
        grafting (None): None | "adam" | "adagrad" | "rmsprop" | "sgd" (per-block norm grafting).
        grafting_beta2 (None -> 0.999 adam, 1.0 adagrad, 0.99 rmsprop).
        grafting_epsilon (1e-10): epsilon of the diagonal grafting method.
        precondition_1d (True): precondition 1-D tensors (False = exponent 0 for order-1 blocks, unless
            inverse_exponent_override sets order 1 explicitly).
        merge_dims (True): merge small dims before blocking (reference default).
        num_tolerated_failed_amortized_computations (3): consecutive failed root computations tolerated (the
            previous inverse root is kept) before raising.

    State per parameter (float32 for float32/bf16/fp16 parameters, float64 for float64 ones): ``step`` (int), ``factors`` / ``inv_factors``
    (per block, a list with one matrix per preconditioned dim), ``filtered_grad`` (if beta1 > 0), ``graft``
    (the diagonal accumulator for adam/adagrad/rmsprop grafting), ``failed_roots`` (int).
    The step counter is per parameter (the reference keeps one per group; identical when every parameter of a
    group has a gradient at every step).
    """

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        betas: tuple[float, float] = (0.9, 1.0),
        beta3: float = -1.0,
        epsilon: float = 1e-12,
        weight_decay: float = 0.0,
        weight_decay_type: str = "decoupled",
        max_preconditioner_dim: int = 1024,
        precondition_frequency: int = 1,
        start_preconditioning_step: int = -1,
        inverse_exponent_override: dict | None = None,
        use_bias_correction: bool = True,
        grafting: str | None = None,
        grafting_beta2: float | None = None,
        grafting_epsilon: float = 1e-10,
        precondition_1d: bool = True,
        merge_dims: bool = True,
        num_tolerated_failed_amortized_computations: int = 3,
    ):
        if not lr >= 0.0:
            raise ValueError(f"Shampoo: lr must be >= 0, got {lr!r}")
        if len(betas) != 2:
            raise ValueError(f"Shampoo: betas must be (beta1, beta2), got {betas!r}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Shampoo: betas[0] (beta1) must be in [0, 1), got {betas[0]!r}")
        if not 0.0 <= betas[1] <= 1.0:
            raise ValueError(f"Shampoo: betas[1] (beta2) must be in [0, 1], got {betas[1]!r}")
        if beta3 == -1.0:
            beta3 = betas[0]
        elif not 0.0 <= beta3 < 1.0:
            raise ValueError(f"Shampoo: beta3 must be -1 (use beta1) or in [0, 1), got {beta3!r}")
        if not epsilon > 0.0:
            raise ValueError(f"Shampoo: epsilon must be > 0, got {epsilon!r}")
        if not weight_decay >= 0.0:
            raise ValueError(f"Shampoo: weight_decay must be >= 0, got {weight_decay!r}")
        if weight_decay_type not in _WEIGHT_DECAY_TYPES:
            raise ValueError(f"Shampoo: weight_decay_type must be one of {_WEIGHT_DECAY_TYPES}, got {weight_decay_type!r}")
        if not (isinstance(max_preconditioner_dim, int) and max_preconditioner_dim >= 1):
            raise ValueError(f"Shampoo: max_preconditioner_dim must be an int >= 1, got {max_preconditioner_dim!r}")
        if not (isinstance(precondition_frequency, int) and precondition_frequency >= 1):
            raise ValueError(f"Shampoo: precondition_frequency must be an int >= 1, got {precondition_frequency!r}")
        if not (isinstance(start_preconditioning_step, int) and start_preconditioning_step >= -1):
            raise ValueError(
                f"Shampoo: start_preconditioning_step must be an int >= -1, got {start_preconditioning_step!r}"
            )
        if start_preconditioning_step == -1:
            start_preconditioning_step = precondition_frequency
        if start_preconditioning_step < precondition_frequency:
            raise ValueError(
                f"Shampoo: start_preconditioning_step ({start_preconditioning_step}) must be >= "
                f"precondition_frequency ({precondition_frequency}) or -1"
            )
        override = self._check_override(inverse_exponent_override)
        if not precondition_1d and 1 not in override:
            override[1] = 0.0
        if grafting is not None:
            grafting = str(grafting).lower()
            if grafting in ("none", ""):
                grafting = None
        if grafting is not None and grafting not in _GRAFTING:
            raise ValueError(f"Shampoo: grafting must be None or one of {_GRAFTING}, got {grafting!r}")
        if grafting_beta2 is None:
            grafting_beta2 = _GRAFTING_BETA2.get(grafting)
        elif grafting in (None, "sgd", "adagrad") and grafting_beta2 != _GRAFTING_BETA2.get(grafting):
            raise ValueError(f"Shampoo: grafting_beta2 does not apply to grafting={grafting!r} (got {grafting_beta2!r})")
        if grafting_beta2 is not None and not 0.0 < grafting_beta2 <= 1.0:
            raise ValueError(f"Shampoo: grafting_beta2 must be in (0, 1], got {grafting_beta2!r}")
        if not grafting_epsilon > 0.0:
            raise ValueError(f"Shampoo: grafting_epsilon must be > 0, got {grafting_epsilon!r}")
        if not (isinstance(num_tolerated_failed_amortized_computations, int)
                and num_tolerated_failed_amortized_computations >= 0):
            raise ValueError(
                "Shampoo: num_tolerated_failed_amortized_computations must be an int >= 0, "
                f"got {num_tolerated_failed_amortized_computations!r}"
            )
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            beta3=beta3,
            epsilon=epsilon,
            weight_decay=weight_decay,
            weight_decay_type=weight_decay_type,
            max_preconditioner_dim=max_preconditioner_dim,
            precondition_frequency=precondition_frequency,
            start_preconditioning_step=start_preconditioning_step,
            inverse_exponent_override=override,
            use_bias_correction=use_bias_correction,
            grafting=grafting,
            grafting_beta2=grafting_beta2,
            grafting_epsilon=grafting_epsilon,
            merge_dims=merge_dims,
            num_tolerated_failed_amortized_computations=num_tolerated_failed_amortized_computations,
        )
        super().__init__(params, defaults)

    @staticmethod
    def _check_override(override) -> dict:
        if override is None:
            return {}
        if not isinstance(override, dict):
            raise ValueError(
                f"Shampoo: inverse_exponent_override must be a dict {{order: exponent or {{dim: exponent}}}}, "
                f"got {override!r}"
            )
        out: dict = {}
        for order, val in override.items():
            if not (isinstance(order, int) and order >= 1):
                raise ValueError(f"Shampoo: inverse_exponent_override keys must be tensor orders >= 1, got {order!r}")
            vals = val.values() if isinstance(val, dict) else [val]
            for v in vals:
                if not (isinstance(v, (int, float)) and v >= 0):
                    raise ValueError(
                        f"Shampoo: inverse_exponent_override[{order}] exponents must be numbers >= 0, got {val!r}"
                    )
            out[order] = dict(val) if isinstance(val, dict) else float(val)
        return out

    # ----- layout ------------------------------------------------------------------------------------------
    @staticmethod
    def _work_shape(p: torch.Tensor, group) -> tuple[int, ...]:
        shape = tuple(p.shape) if p.dim() > 0 else (1,)
        if group["merge_dims"]:
            return merge_small_dims(shape, group["max_preconditioner_dim"])
        return shape

    @staticmethod
    def _exponent(group, order: int, dim: int) -> float:
        val = group["inverse_exponent_override"].get(order, {})
        if isinstance(val, dict):
            return float(val.get(dim, 1 / (2 * max(order, 1))))
        return float(val)

    def _init_state(self, p: torch.Tensor, state, group) -> None:
        shape = self._work_shape(p, group)
        blocks = multi_dim_split(torch.empty(shape, device="meta"), group["max_preconditioner_dim"])
        sdt = _state_dtype(p)
        factors, inv_factors = [], []
        for b in blocks:
            order = b.dim()
            dims = [k for k in range(order) if self._exponent(group, order, k) != 0.0]
            factors.append([torch.zeros(b.shape[k], b.shape[k], dtype=sdt, device=p.device) for k in dims])
            inv_factors.append([torch.eye(b.shape[k], dtype=sdt, device=p.device) for k in dims])
        state["step"] = 0
        state["factors"] = factors
        state["inv_factors"] = inv_factors
        state["failed_roots"] = 0
        if group["betas"][0] != 0.0:
            state["filtered_grad"] = torch.zeros(shape, dtype=sdt, device=p.device)
        if group["grafting"] in ("adam", "adagrad", "rmsprop"):
            state["graft"] = torch.zeros(shape, dtype=sdt, device=p.device)

    def _selected_dims(self, group, block: torch.Tensor) -> list[bool]:
        order = block.dim()
        return [self._exponent(group, order, k) != 0.0 for k in range(order)]

    # ----- maths -------------------------------------------------------------------------------------------
    def _update_factors(self, g_blocks, state, group) -> None:
        beta2 = group["betas"][1]
        for g, fs in zip(g_blocks, state["factors"]):
            if not fs:
                continue
            order = g.dim()
            sel = [k for k, s in enumerate(self._selected_dims(group, g)) if s]
            outer = [
                torch.tensordot(g, g, dims=[[*chain(range(k), range(k + 1, order))]] * 2) for k in sel
            ]
            if beta2 != 1.0:
                torch._foreach_mul_(fs, beta2)
                torch._foreach_add_(fs, outer, alpha=1 - beta2)
            else:
                torch._foreach_add_(fs, outer, alpha=1.0)

    def _compute_roots(self, g_blocks, state, group, bias_correction2: torch.Tensor) -> None:
        failed = None
        for g, fs, invs in zip(g_blocks, state["factors"], state["inv_factors"]):
            order = g.dim()
            sel = [k for k, s in enumerate(self._selected_dims(group, g)) if s]
            for k, f, inv in zip(sel, fs, invs):
                A = _symmetrize_upper(f) / bias_correction2
                if not torch.isfinite(A).all():
                    raise FloatingPointError(
                        "Shampoo: nan/inf in a Kronecker factor (non-finite gradients or divergence); "
                        "try a lower lr or a larger grafting_epsilon"
                    )
                root = 1.0 / self._exponent(group, order, k)
                try:
                    X = _inverse_root(A, root, group["epsilon"])
                except RuntimeError as exc:  # eigh failed even in float64: keep the previous root
                    failed = exc
                    continue
                if not torch.isfinite(X).all():
                    raise FloatingPointError("Shampoo: nan/inf in an inverse root of a Kronecker factor")
                inv.copy_(X)
        if failed is None:
            state["failed_roots"] = 0
        else:
            state["failed_roots"] += 1
            if state["failed_roots"] > group["num_tolerated_failed_amortized_computations"]:
                raise RuntimeError(
                    "Shampoo: root inverse failed more often in a row than num_tolerated_failed_amortized_computations"
                ) from failed

    @staticmethod
    def _precondition_block(x: torch.Tensor, sel: list[bool], invs: list) -> torch.Tensor:
        if not any(sel):
            return x.clone()  # never hand out a view of the filtered gradient / the gradient
        it = iter(invs)
        for s in sel:
            x = torch.tensordot(x, next(it), dims=([0], [0])) if s else x.permute(*range(1, x.dim()), 0)
        return x

    # ----- step --------------------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            beta3 = group["beta3"]
            lr = torch.tensor(group["lr"], dtype=torch.float32)
            wd = group["weight_decay"]
            mpd = group["max_preconditioner_dim"]
            grafting = group["grafting"]
            start = group["start_preconditioning_step"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("Shampoo does not support sparse gradients")
                state = self.state[p]
                if len(state) == 0:
                    self._init_state(p, state, group)
                shape = self._work_shape(p, group)
                sdt = _state_dtype(p)
                g = p.grad.detach().to(sdt).reshape(shape)
                w = p.detach().to(sdt).reshape(shape)
                if wd != 0.0 and group["weight_decay_type"] == "l2":
                    g = g + wd * w
                state["step"] += 1
                step = state["step"]
                step_t = torch.tensor(step, dtype=torch.int64)
                perform_root = (step % group["precondition_frequency"] == 0 and step > start) or step == start
                use_grafting_method = step < start and grafting is not None

                g_blocks = multi_dim_split(g, mpd)
                # 1-2. factors (and inverse roots when due)
                self._update_factors(g_blocks, state, group)
                if group["use_bias_correction"] and beta2 < 1.0:
                    bc2 = torch.tensor(1.0) - beta2**step_t
                else:
                    bc2 = torch.tensor(1.0)
                if perform_root:
                    self._compute_roots(g_blocks, state, group, bc2)
                # 3. grafting accumulator
                graft_bc2 = torch.tensor(1.0)
                if "graft" in state:
                    gb2 = group["grafting_beta2"]
                    if gb2 == 1.0:
                        state["graft"].addcmul_(g, g, value=1.0)
                    else:
                        state["graft"].mul_(gb2).addcmul_(g, g, value=1 - gb2)
                        if grafting == "adam":
                            graft_bc2 = torch.tensor(1.0) - gb2**step_t
                # 4. filtered gradient
                if beta1 != 0.0:
                    fg = state["filtered_grad"]
                    gbar = torch.lerp(fg, g, 1 - beta3) if beta3 != beta1 else fg
                    fg.lerp_(g, 1 - beta1)
                    if group["use_bias_correction"]:
                        bc1 = 1.0 - beta3 * beta1 ** (step_t - 1)
                        gbar = gbar / bc1
                else:
                    gbar = g
                # 5. direction
                gbar_blocks = multi_dim_split(gbar, mpd)
                if grafting is not None:
                    if grafting == "sgd":
                        graft_dir = gbar
                    else:
                        denom = (state["graft"] / graft_bc2).sqrt_().add_(group["grafting_epsilon"])
                        graft_dir = gbar / denom
                    graft_blocks = multi_dim_split(graft_dir, mpd)
                if use_grafting_method:
                    dirs = [b.clone() for b in graft_blocks]
                else:
                    dirs = [
                        self._precondition_block(b, self._selected_dims(group, b), invs)
                        for b, invs in zip(gbar_blocks, state["inv_factors"])
                    ]
                    if grafting is not None:
                        graft_norms = torch._foreach_norm(graft_blocks)
                        shampoo_norms = torch._foreach_norm(dirs)
                        torch._foreach_add_(shampoo_norms, 1e-16)
                        torch._foreach_div_(graft_norms, shampoo_norms)
                        torch._foreach_mul_(dirs, graft_norms)
                # 6. decoupled decay and the update
                if wd != 0.0 and group["weight_decay_type"] == "decoupled":
                    torch._foreach_add_(dirs, multi_dim_split(w, mpd), alpha=wd)
                torch._foreach_mul_(dirs, -lr)
                if p.dtype == sdt and p.is_contiguous():
                    torch._foreach_add_(multi_dim_split(p.data.view(shape), mpd), dirs)
                else:
                    torch._foreach_add_(multi_dim_split(w, mpd), dirs)
                    p.copy_(w.reshape(p.shape))
        return loss

    def load_state_dict(self, state_dict):
        """Restore state keeping its saved dtypes (Shampoo's statistics stay float32 for bf16 parameters)."""
        load_state_dict_keep_dtype(self, state_dict, super().load_state_dict)


register(
    "shampoo",
    Shampoo,
    reference=(
        "Gupta et al. 2018 (arXiv:1802.09568); Shi et al. 2023, A Distributed Data-Parallel PyTorch "
        "Implementation of Distributed Shampoo (arXiv:2309.06497); facebookresearch/optimizers@f6066066 "
        "distributed_shampoo/distributed_shampoo.py (DistributedShampoo)"
    ),
    notes=(
        "Default path of DistributedShampoo (root-inverse Shampoo, eigh, blocking, grafting none/adam/adagrad/"
        "rmsprop/sgd, decoupled weight decay), single device or replicated under DDP. Four-way-comparison "
        "knobs: lr 0.0018, betas (0.95, 0.95), epsilon 1e-12, max_preconditioner_dim 8192, "
        "precondition_frequency 10, grafting='adam', grafting_beta2 0.95, grafting_epsilon 1e-8."
    ),
)
