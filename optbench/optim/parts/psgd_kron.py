"""PSGD Kron base: a Kronecker whitening preconditioner P = (Q0^T Q0) (x) (Q1^T Q1) fitted online on the
Lie group of triangular matrices, applied to the bias-corrected momentum.

    m <- lerp(m, g, 1 - beta1);  m^ <- m / (1 - beta1^t)
    balance: s <- sqrt(max|Q1| / max|Q0|);  Q0 <- s Q0;  Q1 <- Q1 / s
    A <- Q0 (m^ + eps_f32 |m^| nu) Q1^T,   B <- Q0^-T v Q1^-1          (nu, v ~ N(0, I), global RNG: v then nu)
    Q0 <- Q0 - precond_lr / ||A A^T + B B^T||_2 * triu(A A^T - B B^T) Q0     (||.||_2: 1.5 power iterations)
    Q1 <- Q1 - precond_lr / ||A^T A + B^T B||_2 * triu(A^T A - B^T B) Q1
    u <- (Q0^T Q0) m^ (Q1^T Q1)
    Q0 = Q1 = I mean(g^4)^(-1/32) at the first step.

Source: Li 2015/2024 (arXiv:1512.04202, 2402.11858), Pooladzandi & Li 2024 (arXiv:2402.04553); track-3 result #33
(PR #316, @varunneal, ``PSGDKron`` in records/track_3_optimization/results/20260527_psgd), used there with the
``hyperball`` apply part (lr .025, precond_lr 1.0, beta1 0.95). The zoo's ``kron`` follows kron_torch instead.
"""

from __future__ import annotations

import torch

from optbench.optim.parts.base import Part, StepContext, check_range


def _spectral_norm(A: torch.Tensor) -> torch.Tensor:
    """Largest eigenvalue of a symmetric PSD matrix, 1.5 power iterations from its largest column."""
    scale = A.norm(float("inf"))
    if scale == 0:
        return scale
    A = A / scale
    x = A[:, (A * A).sum(0).argmax()]
    x = A @ x
    x = x / torch.linalg.vector_norm(x)
    return scale * torch.linalg.vector_norm(A @ x)


def _fit_preconditioner(Q0: torch.Tensor, Q1: torch.Tensor, U: torch.Tensor, v: torch.Tensor,
                        precond_lr: float) -> None:
    r = (Q1.abs().amax() / Q0.abs().amax()).sqrt()
    Q0.mul_(r)
    Q1.div_(r)
    A = Q0 @ U @ Q1.mT
    B = torch.linalg.solve_triangular(Q0.mT, v, upper=False, left=True)
    B = torch.linalg.solve_triangular(Q1, B, upper=True, left=False)
    AAt, BBt = A @ A.mT, B @ B.mT
    Q0.sub_(precond_lr / _spectral_norm(AAt + BBt) * torch.triu(AAt - BBt) @ Q0)
    AtA, BtB = A.mT @ A, B.mT @ B
    Q1.sub_(precond_lr / _spectral_norm(AtA + BtB) * torch.triu(AtA - BtB) @ Q1)


class PSGDKron(Part):
    """PSGD Kron whitening base (2-D parameters). State: ``psgd_q0``, ``psgd_q1``, ``psgd_exp_avg`` (float32)."""

    name = "psgd_kron"
    stage = "base"
    matrix_only = True
    knobs = {"beta1": 0.95, "precond_lr": 1.0}

    def check_group(self, group: dict) -> None:
        super().check_group(group)
        check_range(self.name, "beta1", self.knob(group, "beta1"), 0.0, 1.0, hi_open=True)
        if not self.knob(group, "precond_lr") > 0:
            raise ValueError(f"psgd_kron.precond_lr: must be > 0, got {self.knob(group, 'precond_lr')!r}")

    def direction(self, ctx: StepContext) -> torch.Tensor:
        st, grad = ctx.state, ctx.grad.squeeze().float()
        if "psgd_q0" not in st:
            m, n = grad.shape
            s = grad.abs().pow(4).mean().clamp(min=1e-24).pow(-1 / 32).item()
            st["psgd_q0"] = torch.eye(m, dtype=torch.float32, device=grad.device) * s
            st["psgd_q1"] = torch.eye(n, dtype=torch.float32, device=grad.device) * s
            st["psgd_exp_avg"] = torch.zeros_like(grad)
        beta1 = self.knob(ctx.group, "beta1")
        st["psgd_exp_avg"].lerp_(grad, 1 - beta1)
        update = st["psgd_exp_avg"] / (1 - beta1 ** (ctx.step + 1))
        v = torch.randn_like(update)
        nu = torch.randn_like(update)
        damping = torch.finfo(torch.float32).eps * update.abs()
        Q0, Q1 = st["psgd_q0"], st["psgd_q1"]
        _fit_preconditioner(Q0, Q1, update + damping * nu, v, self.knob(ctx.group, "precond_lr"))
        return ((Q0.mT @ Q0) @ update @ (Q1.mT @ Q1)).view_as(ctx.p)
