"""SOAP preconditioning before orthogonalisation (SOAP-Muon): Adam in the eigenbasis of the gradient's
row and column covariances, applied to the momentum update, with the update's norm kept.

    L <- lerp(L, g g^T, 1 - beta2);  R <- lerp(R, g^T g, 1 - beta2)          (after the step; `finish`)
    Q_L, Q_R: eigenvectors of L, R (first step), then refreshed every `precondition_frequency` steps by one
              sorted QR power step  Q <- qr(L Q)
    P <- Q_L^T u Q_R;  V <- beta2 V + (1 - beta2) P^2;  s <- Q_L (P / max(V, eps^2)^denom_power) Q_R^T
    s <- s * ||u||_G / ||s||_G            (||X||_G = ||X X^T||_F^(1/2), the record's norm estimate)

gate (per param group, e.g. by a recipe override): "none" -> u <- s;  "blend" -> u <- norm-preserving blend of u
and s with weight 1;  "trust" -> weight = clamp(agree * grad_align, floor(t), cap(t)) with
agree = (cos(s, u) - min_agree) / (1 - min_agree), grad_align = (cos(s, g) - a) / max(cos(u, g) - a, 1e-8),
floor = trust_floor until floor_end then fading linearly to 0 at fade_end, cap = trust_cap before fade_end.

Source: Vyas et al., SOAP (arXiv:2409.11321) and SOAP-Muon (nikhilvyas.github.io/SOAP_Muon.pdf); track-3
#14 (PR #278, MLP), #16 (PR #283, attention + trust gate), #44 (PR #321, all hidden matrices, frequency 1,
beta2 0.90), kept in record #46 (``soap_precondition_momentum``, ``soap_update_preconditioner``, ``trust_gate``).
"""

from __future__ import annotations

import torch

from optbench.optim.parts.base import Part, StepContext, check_range


def gram_norm(X: torch.Tensor, eps: float) -> torch.Tensor:
    """||X X^T||_F^(1/2) on the smaller Gram product, in float32, clamped below at eps."""
    X = X.float()
    gram = X.mT @ X if X.size(-2) > X.size(-1) else X @ X.mT
    return gram.norm(dim=(-2, -1)).sqrt().clamp_min(eps)


def _eigenbasis(mat: torch.Tensor) -> torch.Tensor:
    try:
        _, q = torch.linalg.eigh(mat + 1e-30 * torch.eye(mat.size(0), device=mat.device))
    except RuntimeError:
        _, q = torch.linalg.eigh(mat.double() + 1e-30 * torch.eye(mat.size(0), device=mat.device))
        q = q.float()
    return torch.flip(q, [1])


def _refresh(gg: torch.Tensor, q: torch.Tensor, v: torch.Tensor, dim: int):
    """Sort the basis by its Rayleigh quotients (descending, V's axis along), then one QR power step."""
    order = torch.argsort(torch.diag(q.T @ gg @ q), descending=True)
    q = q[:, order]
    v = v.index_select(dim, order)
    q, _ = torch.linalg.qr(gg @ q)
    return q, v


def _cos(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    a, b = a.float(), b.float()
    return (a * b).sum() / (a.norm() * b.norm()).clamp_min(eps)


class SoapPrecondition(Part):
    """SOAP whitening of the momentum update before orthogonalisation (2-D parameters)."""

    name = "soap"
    stage = "transform"
    matrix_only = True
    signed = frozenset({"min_agree", "min_grad_align"})  # cosine thresholds
    knobs = {"beta2": 0.9, "eps": 1e-8, "denom_power": 0.5, "precondition_frequency": 1, "gate": "none",
             "trust_floor": 0.45, "trust_cap": 0.85, "floor_end": 1375, "fade_end": 1625, "min_agree": 0.2,
             "min_grad_align": 0.0}

    def check_group(self, group: dict) -> None:
        super().check_group(group)
        check_range(self.name, "beta2", self.knob(group, "beta2"), 0.0, 1.0, hi_open=True)
        if self.knob(group, "gate") not in ("none", "blend", "trust"):
            raise ValueError(f"soap.gate: must be 'none', 'blend' or 'trust', got {self.knob(group, 'gate')!r}")
        f = self.knob(group, "precondition_frequency")
        if not (isinstance(f, int) and f >= 1):
            raise ValueError(f"soap.precondition_frequency: must be an integer >= 1, got {f!r}")

    def transform(self, u: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        st, grp = ctx.state, ctx.group
        if "soap_row_gg" not in st:
            p = ctx.p
            st["soap_exp_avg_sq"] = torch.zeros_like(p, dtype=torch.float32)
            st["soap_row_gg"] = torch.zeros(p.size(0), p.size(0), dtype=torch.float32, device=p.device)
            st["soap_col_gg"] = torch.zeros(p.size(1), p.size(1), dtype=torch.float32, device=p.device)
        s = self._precondition(u, st, grp)
        gate = self.knob(grp, "gate")
        if gate == "none":
            return s
        if gate == "trust":
            w = self._trust(u, s, ctx.grad, ctx.step, grp)
        else:
            w = torch.ones((), dtype=torch.float32, device=u.device)
        blended = u + (s - u) * w.to(u.dtype)
        return (blended * (gram_norm(u, 1e-8) / gram_norm(blended, 1e-8)).to(blended.dtype)).to(u.dtype)

    def _precondition(self, u: torch.Tensor, st: dict, grp: dict) -> torch.Tensor:
        if "soap_q_row" not in st:
            return u
        eps, beta2 = self.knob(grp, "eps"), self.knob(grp, "beta2")
        uf = u.float()
        q_row, q_col = st["soap_q_row"], st["soap_q_col"]
        projected = q_row.T @ uf @ q_col
        st["soap_exp_avg_sq"].mul_(beta2).add_(projected.square(), alpha=1 - beta2)
        denom = st["soap_exp_avg_sq"].clamp_min(eps * eps).pow(self.knob(grp, "denom_power"))
        s = q_row @ (projected / denom) @ q_col.T
        s.mul_(gram_norm(uf, eps) / gram_norm(s, eps))
        return s.to(u.dtype)

    def _trust(self, raw, soap, grad, step: int, grp: dict) -> torch.Tensor:
        min_agree, a = self.knob(grp, "min_agree"), self.knob(grp, "min_grad_align")
        agree = ((_cos(soap, raw) - min_agree) / (1 - min_agree)).clamp(0, 1)
        grad_gate = ((_cos(soap, grad) - a) / (_cos(raw, grad) - a).clamp_min(1e-8)).clamp(0, 1)
        gate = (agree * grad_gate).clamp(0, 1)
        floor_v, end, fade = self.knob(grp, "trust_floor"), self.knob(grp, "floor_end"), self.knob(grp, "fade_end")
        if fade <= end:
            floor = 0.0 if step >= fade else floor_v
        elif step < end:
            floor = floor_v
        elif step >= fade:
            floor = 0.0
        else:
            floor = floor_v * (fade - step) / (fade - end)
        cap = self.knob(grp, "trust_cap") if step < fade else 1.0
        return gate.clamp(min=floor, max=cap)

    def finish(self, ctx: StepContext) -> None:
        st, beta = ctx.state, self.knob(ctx.group, "beta2")
        g = ctx.grad.float()
        st["soap_row_gg"].lerp_(g @ g.T, 1 - beta)
        st["soap_col_gg"].lerp_(g.T @ g, 1 - beta)
        if "soap_q_row" not in st:
            st["soap_q_row"] = _eigenbasis(st["soap_row_gg"])
            st["soap_q_col"] = _eigenbasis(st["soap_col_gg"])
        elif ctx.step > 0 and ctx.step % self.knob(ctx.group, "precondition_frequency") == 0:
            st["soap_q_row"], v = _refresh(st["soap_row_gg"], st["soap_q_row"], st["soap_exp_avg_sq"], 0)
            st["soap_q_col"], v = _refresh(st["soap_col_gg"], st["soap_q_col"], v, 1)
            st["soap_exp_avg_sq"] = v
