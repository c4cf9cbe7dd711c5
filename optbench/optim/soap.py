"""SOAP: Adam in the eigenbasis of Shampoo's Kronecker factors (Vyas et al. 2024).

Follows nikhilvyas/SOAP ``soap.py`` (commit a1e55353) step for step:

* the first ``step()`` for a parameter only accumulates the factors and builds the eigenbases (``eigh``); the
  parameter is not moved, so a gradient is never used in a basis built from itself;
* later steps: rotate g into the basis, Adam moments there (m is kept in the rotated basis), rotate the Adam
  direction back, ``p -= lr * sqrt(1-beta2^k)/(1-beta1^k) * N``, then decoupled decay ``p -= lr*wd*p``;
* then the factors are updated with the current gradient and, every ``precondition_frequency`` internal steps,
  each basis is refreshed by one power iteration + QR (columns re-sorted by estimated eigenvalue, with the
  second moment permuted to match) and the momentum re-expressed in the new basis (the reference also rotates
  it back and forth on the steps in between, an identity with unchanged bases, skipped here).

Dimensions larger than ``max_precond_dim`` (and 1-D tensors unless ``precondition_1d``) are left unrotated.
``merge_dims`` reshapes a tensor by merging adjacent dims while the product stays <= ``max_precond_dim``.
All state is float32 for float32 / bf16 / fp16 parameters (bf16 parameters are updated through an fp32 copy) and
float64 for float64 parameters.
"""

from __future__ import annotations

from itertools import chain

import torch

from optbench.optim._fp32state import load_state_dict_keep_dtype
from optbench.optim.registry import COUNT, NONNEG, POSITIVE, betas, register

__all__ = ["SOAP"]


def _merged_shape(shape: torch.Size, max_precond_dim: int) -> list[int]:
    """Merge adjacent dims left to right while the running product stays <= max_precond_dim (reference rule)."""
    new_shape: list[int] = []
    cur = 1
    for sh in shape:
        nxt = cur * sh
        if nxt > max_precond_dim:
            if cur > 1:
                new_shape.append(cur)
                cur = sh
            else:
                new_shape.append(sh)
                cur = 1
        else:
            cur = nxt
    if cur > 1 or not new_shape:
        new_shape.append(cur)
    return new_shape


class SOAP(torch.optim.Optimizer):
    """SOAP (ShampoO with Adam in the Preconditioner's eigenbasis).

    Hyperparameters (defaults = nikhilvyas/SOAP defaults):
        lr (3e-3): step size, read from the param group every step.
        betas ((0.95, 0.95)): Adam's beta1, beta2 (applied in the rotated basis).
        shampoo_beta (-1): EMA factor of the Kronecker factors L, R; < 0 means "use beta2".
        eps (1e-8): Adam epsilon (added to sqrt(v)).
        weight_decay (0.01): decoupled, applied after the step as p -= lr * wd * p.
        precondition_frequency (10): refresh the eigenbases every this many internal steps (power iteration + QR).
        max_precond_dim (10000): dims larger than this get no rotation.
        merge_dims (False): merge small adjacent dims before building factors.
        precondition_1d (False): rotate 1-D tensors too (a d x d factor).
        normalize_grads (False): divide the projected-back direction by its RMS.
        data_format ("channels_first"): "channels_last" permutes 4-D tensors NHWC -> NCHW before merging.
        correct_bias (True): step size lr * sqrt(1 - beta2^k) / (1 - beta1^k).

    State per parameter: ``step`` (int, internal step count, 0 after the first call), ``exp_avg`` (rotated basis),
    ``exp_avg_sq``, ``GG`` (list of factors, ``None`` for an unrotated dim), ``Q`` (list of bases, ``None`` for an
    unrotated dim).
    """

    def __init__(
        self,
        params,
        lr: float = 3e-3,
        betas: tuple[float, float] = (0.95, 0.95),
        shampoo_beta: float = -1,
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        precondition_frequency: int = 10,
        max_precond_dim: int = 10000,
        merge_dims: bool = False,
        precondition_1d: bool = False,
        normalize_grads: bool = False,
        data_format: str = "channels_first",
        correct_bias: bool = True,
    ):
        if not lr >= 0.0:
            raise ValueError(f"SOAP: lr must be >= 0, got {lr!r}")
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"SOAP: betas must be two values in [0, 1), got {betas!r}")
        if not shampoo_beta < 1.0:
            raise ValueError(f"SOAP: shampoo_beta must be < 1 (negative means use beta2), got {shampoo_beta!r}")
        if not eps >= 0.0:
            raise ValueError(f"SOAP: eps must be >= 0, got {eps!r}")
        if not weight_decay >= 0.0:
            raise ValueError(f"SOAP: weight_decay must be >= 0, got {weight_decay!r}")
        if not (isinstance(precondition_frequency, int) and precondition_frequency >= 1):
            raise ValueError(f"SOAP: precondition_frequency must be an int >= 1, got {precondition_frequency!r}")
        if not (isinstance(max_precond_dim, int) and max_precond_dim >= 1):
            raise ValueError(f"SOAP: max_precond_dim must be an int >= 1, got {max_precond_dim!r}")
        if data_format not in ("channels_first", "channels_last"):
            raise ValueError(
                f"SOAP: data_format must be 'channels_first' or 'channels_last', got {data_format!r}"
            )
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            shampoo_beta=shampoo_beta,
            eps=eps,
            weight_decay=weight_decay,
            precondition_frequency=precondition_frequency,
            max_precond_dim=max_precond_dim,
            merge_dims=merge_dims,
            precondition_1d=precondition_1d,
            normalize_grads=normalize_grads,
            correct_bias=correct_bias,
        )
        super().__init__(params, defaults)
        self._data_format = data_format

    # ----- reshaping helpers -------------------------------------------------------------------------------
    def _to_work_shape(self, x: torch.Tensor, group) -> torch.Tensor:
        if not group["merge_dims"]:
            return x
        if self._data_format == "channels_last" and x.dim() == 4:
            x = x.permute(0, 3, 1, 2)
        return x.reshape(_merged_shape(x.shape, group["max_precond_dim"]))

    def _from_work_shape(self, x: torch.Tensor, orig_shape: torch.Size, group) -> torch.Tensor:
        if not group["merge_dims"]:
            return x
        if self._data_format == "channels_last" and len(orig_shape) == 4:
            n, h, w, c = orig_shape
            return x.reshape(n, c, h, w).permute(0, 2, 3, 1)
        return x.reshape(orig_shape)

    def _rotate(self, x: torch.Tensor, Q: list, group, back: bool) -> torch.Tensor:
        """Contract every dim with its basis (Q^T x along that dim, or Q x when ``back``); unrotated dims cycle.
        A matrix takes two plain products, L^T x R (or L x R^T), where tensordot would copy permuted operands."""
        shape = x.shape
        x = self._to_work_shape(x, group)
        if x.dim() == 2 and len(Q) == 2:
            left, right = Q
            if left is not None:
                x = (left if back else left.T) @ x
            if right is not None:
                x = x @ (right.T if back else right)
            return self._from_work_shape(x, shape, group)
        for q in Q:
            if q is not None:
                x = torch.tensordot(x, q, dims=[[0], [1 if back else 0]])
            else:
                x = x.permute(*range(1, x.dim()), 0)
        return self._from_work_shape(x, shape, group)

    # ----- preconditioner ----------------------------------------------------------------------------------
    def _init_factors(self, grad: torch.Tensor, state, group) -> None:
        mpd = group["max_precond_dim"]
        if grad.dim() == 1:
            use = group["precondition_1d"] and grad.shape[0] <= mpd
            state["GG"] = [torch.zeros(grad.shape[0], grad.shape[0], dtype=grad.dtype, device=grad.device)
                           if use else None]
        else:
            work = self._to_work_shape(grad, group)
            state["GG"] = [
                None if sh > mpd else torch.zeros(sh, sh, dtype=grad.dtype, device=grad.device)
                for sh in work.shape
            ]
        state["Q"] = None

    def _accumulate(self, grad: torch.Tensor, state, group) -> None:
        beta = group["shampoo_beta"] if group["shampoo_beta"] >= 0 else group["betas"][1]
        if grad.dim() == 1:
            if state["GG"][0] is not None:
                state["GG"][0].lerp_(grad.unsqueeze(1) @ grad.unsqueeze(0), 1 - beta)
            return
        work = self._to_work_shape(grad, group) if group["merge_dims"] else grad
        for idx, factor in enumerate(state["GG"]):
            if factor is None:
                continue
            if work.dim() == 2:  # G G^T and G^T G as plain products
                gram = work @ work.T if idx == 0 else work.T @ work
            else:
                other = [*chain(range(idx), range(idx + 1, work.dim()))]
                gram = torch.tensordot(work, work, dims=[other, other])
            factor.lerp_(gram, 1 - beta)

    @staticmethod
    def _eigenbases(GG: list) -> list:
        out = []
        for m in GG:
            if m is None:
                out.append(None)
                continue
            eye = torch.eye(m.shape[0], device=m.device, dtype=m.dtype)
            try:
                _, q = torch.linalg.eigh(m + 1e-30 * eye)
            except RuntimeError:
                _, q = torch.linalg.eigh(m.double() + 1e-30 * eye.double())
                q = q.to(m.dtype)
            out.append(torch.flip(q, [1]))  # descending eigenvalues
        return out

    def _refresh_bases(self, state, group) -> None:
        """One power iteration + QR per basis; sort by estimated eigenvalue and permute v to match."""
        exp_avg_sq = state["exp_avg_sq"]
        orig_shape = exp_avg_sq.shape
        v = self._to_work_shape(exp_avg_sq, group)
        new_Q = []
        for ind, (m, o) in enumerate(zip(state["GG"], state["Q"])):
            if m is None:
                new_Q.append(None)
                continue
            # one product M O serves both: diag(O^T M O) = column sums of O * (M O), and M O[:, order] is
            # (M O)[:, order] (the reference takes three n^3 products; this one)
            mo = m @ o
            est_eig = (o * mo).sum(0)
            order = torch.argsort(est_eig, descending=True)
            v = v.index_select(ind, order)
            q, _ = torch.linalg.qr(mo.index_select(1, order))
            new_Q.append(q)
        state["exp_avg_sq"] = self._from_work_shape(v, orig_shape, group).contiguous()
        state["Q"] = new_Q

    def _update_preconditioner(self, grad: torch.Tensor, state, group) -> None:
        """Accumulate the factors; on a refresh step re-express the momentum in the refreshed bases.

        The reference rotates the momentum back to the original basis and forward again on EVERY call; with the
        bases unchanged (all but refresh steps) that round trip is Q Q^T = I, so it is done only when they change
        (same maths; 4 fewer matrix products per matrix and step).
        """
        refresh = state["step"] > 0 and state["step"] % group["precondition_frequency"] == 0
        if refresh:
            state["exp_avg"] = self._rotate(state["exp_avg"], state["Q"], group, back=True)
        self._accumulate(grad, state, group)
        if state["Q"] is None:
            state["Q"] = self._eigenbases(state["GG"])
        if refresh:
            self._refresh_bases(state, group)
            state["exp_avg"] = self._rotate(state["exp_avg"], state["Q"], group, back=False)

    # ----- step --------------------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("SOAP does not support sparse gradients")
                sdt = torch.float64 if p.dtype == torch.float64 else torch.float32
                grad = p.grad.to(sdt)
                state = self.state[p]
                if "step" not in state:
                    state["step"] = 0
                if "exp_avg" not in state:
                    state["exp_avg"] = torch.zeros_like(grad)
                    state["exp_avg_sq"] = torch.zeros_like(grad)
                if "Q" not in state:
                    self._init_factors(grad, state, group)
                    self._update_preconditioner(grad, state, group)
                    continue  # the first call only builds the preconditioner

                grad_projected = self._rotate(grad, state["Q"], group, back=False)
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                state["step"] += 1
                k = state["step"]

                exp_avg.lerp_(grad_projected, 1.0 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad_projected, grad_projected, value=1.0 - beta2)
                denom = exp_avg_sq.sqrt().add_(group["eps"])

                lr = group["lr"]
                step_size = lr
                if group["correct_bias"]:
                    step_size = step_size * ((1.0 - beta2**k) ** 0.5) / (1.0 - beta1**k)

                direction = self._rotate(exp_avg / denom, state["Q"], group, back=True)
                if group["normalize_grads"]:
                    direction = direction / (1e-30 + torch.mean(direction**2) ** 0.5)

                if p.dtype == sdt:
                    p.add_(direction, alpha=-step_size)
                    if group["weight_decay"] > 0.0:
                        p.add_(p, alpha=-lr * group["weight_decay"])
                else:
                    p32 = p.float()
                    p32.add_(direction, alpha=-step_size)
                    if group["weight_decay"] > 0.0:
                        p32.add_(p32, alpha=-lr * group["weight_decay"])
                    p.copy_(p32)

                self._update_preconditioner(grad, state, group)
        return loss

    # ----- checkpointing -----------------------------------------------------------------------------------
    def load_state_dict(self, state_dict):
        """Restore state keeping its saved dtypes (SOAP's statistics stay float32 for bf16 parameters)."""
        load_state_dict_keep_dtype(self, state_dict, super().load_state_dict)


register(
    "soap",
    SOAP,
    reference=(
        "Vyas et al. 2024, SOAP: Improving and Stabilizing Shampoo using Adam (arXiv:2409.11321); "
        "nikhilvyas/SOAP@a1e55353 soap.py"
    ),
    notes=(
        "First step() per parameter only builds the eigenbases (no update). Bases refreshed by power iteration "
        "+ QR every precondition_frequency steps; 1-D params get plain Adam with SOAP's step size unless "
        "precondition_1d. State in float32."
    ),
    ranges=dict(betas=betas(2), eps=POSITIVE, weight_decay=NONNEG, precondition_frequency=COUNT, max_precond_dim=COUNT),
)
