"""Tail-EMA readout: an EMA of the weights over the end of training; evaluations see a blend of the weights and
the EMA (training itself is untouched).

    s + 1 = start:           e <- W                       (float32 copy; parameters in scope only)
    start < s + 1 < stop:    e <- e + (W - e) / tau
    eval at step >= eval_from, once e exists:   W_eval = (1 - blend) W + blend e

Scope: every parameter except the token embedding (``exclude_embed``). With ``eval_from`` = the claimed step it
is the final-step blend of #45; with 0 it is #46's readout at every evaluation.
Source: track-3 result #45 (PR #325, @jn2clark: tau 150, blend 0.6, final step) and record #46 (PR #328:
``TAILEMA_TAU=150 TAILEMA_LAMBDA=0.6``, window 2400..2900); Polyak averaging.
"""

from __future__ import annotations

import torch

from optbench.optim.parts.base import Part


class TailEMA(torch.optim.Optimizer):
    """The readout as an optimizer-like object: ``step`` updates the EMA, ``eval``/``train`` swap the blend in/out."""

    def __init__(self, params, start: int = 2400, stop: int | None = None, tau: float = 150.0, blend: float = 0.6,
                 eval_from: int = 0):
        if not tau >= 1:
            raise ValueError(f"tail_ema.tau: must be >= 1, got {tau!r}")
        if not 0 <= blend <= 1:
            raise ValueError(f"tail_ema.blend: must be in [0, 1], got {blend!r}")
        defaults = dict(lr=1.0, initial_lr=1.0, start=start, stop=stop, tau=tau, blend=blend, eval_from=eval_from,
                        step=0)
        super().__init__(params, defaults)
        self._stash: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            s1, stop = group["step"] + 1, group["stop"]
            if s1 >= group["start"] and (stop is None or s1 < stop):
                for p in group["params"]:
                    st = self.state[p]
                    if "ema" not in st:
                        st["ema"] = p.detach().float().clone()
                    else:
                        st["ema"].add_(p.detach().float() - st["ema"], alpha=1.0 / group["tau"])
            group["step"] += 1
        return None

    @torch.no_grad()
    def eval(self) -> None:
        """Put the blend in the parameters (kept until ``train``)."""
        if self._stash is not None:
            return
        self._stash = []
        for group in self.param_groups:
            if group["step"] < group["eval_from"]:
                continue
            lam = group["blend"]
            for p in group["params"]:
                ema = self.state[p].get("ema")
                if ema is not None:
                    self._stash.append((p, p.detach().clone()))
                    p.copy_(((1.0 - lam) * p.float() + lam * ema).to(p.dtype))

    @torch.no_grad()
    def train(self) -> None:
        """Restore the trained weights."""
        for p, w in self._stash or []:
            p.copy_(w)
        self._stash = None


class TailEMAPart(Part):
    """Readout part: the tail-EMA blend at evaluation."""

    name = "tail_ema"
    stage = "readout"
    knobs = {"start": 2400, "stop": None, "tau": 150.0, "blend": 0.6, "eval_from": 0, "exclude_embed": True}

    def build(self, params) -> TailEMA:
        v = {k: x for k, x in self.values.items() if k != "exclude_embed"}
        return TailEMA(params, **v)
