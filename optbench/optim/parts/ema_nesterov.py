"""EMA-Nesterov: an outer look-ahead around all the optimizers. Gradients are taken at W + a d, where d is an
EMA of the parameters' step-to-step displacement.

    before the forward of step s, if start <= s < stop:   W <- W + a_s d,   a_s = lookahead * lr_s / lr0
    after all optimizers stepped:                          d <- lerp(d, W - W_prev, 1 - ema);  W_prev <- W

(lr_s / lr0 is the schedule of the first group of the first optimizer, the aux embedding group, as upstream reads
``inner_optimizer[0].param_groups[0]``; ``scheduled = false`` uses a_s = lookahead.) Evaluations see W without the
look-ahead (it is applied just before each forward).
Source: "EMA-Nesterov" (arXiv:2605.25395, @OscarYau525); track-3 result #39 (PR #308: over #12's Muon,
lookahead .6, ema .99, steps 500..2400) and #40 (PR #309: .3, steps 300..1950), kept in record #46.
"""

from __future__ import annotations

import torch

from optbench.optim.parts.base import Part


class EMANesterov(torch.optim.Optimizer):
    """The look-ahead as an optimizer the loop steps after the others; ``before_forward`` applies the look-ahead.

    ``follow`` is the optimizer whose first param group's lr / initial_lr scales the look-ahead (read at every step:
    load_state_dict replaces group dicts, so no group is held). State per parameter: ``prev_params`` and
    ``lookahead_buffer``; the step count is ``param_groups[0]["step"]``.
    """

    def __init__(self, params, follow: torch.optim.Optimizer | None = None, lookahead: float = 0.6,
                 ema: float = 0.99, start: int = 0, stop: int | None = None, scheduled: bool = True):
        if not lookahead >= 0:
            raise ValueError(f"ema_nesterov.lookahead: must be >= 0, got {lookahead!r}")
        if not 0 <= ema < 1:
            raise ValueError(f"ema_nesterov.ema: must be in [0, 1), got {ema!r}")
        defaults = dict(lr=1.0, initial_lr=1.0, lookahead=lookahead, ema=ema, start=start, stop=stop,
                        scheduled=scheduled, step=0)
        super().__init__(params, defaults)
        self.follow = follow
        with torch.no_grad():
            for p in self.param_groups[0]["params"]:
                self.state[p]["prev_params"] = p.detach().clone()
                self.state[p]["lookahead_buffer"] = torch.zeros_like(p)

    def _scale(self, group: dict) -> float:
        if not group["scheduled"] or self.follow is None:
            return group["lookahead"]
        g = self.follow.param_groups[0]
        return group["lookahead"] * (g["lr"] / g["initial_lr"])

    @torch.no_grad()
    def before_forward(self) -> None:
        """Move the parameters to the look-ahead point for this step's forward-backward."""
        for group in self.param_groups:
            s, stop = group["step"], group["stop"]
            if s >= group["start"] and (stop is None or s < stop):
                a = self._scale(group)
                for p in group["params"]:
                    p.add_(self.state[p]["lookahead_buffer"], alpha=a)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                st = self.state[p]
                st["lookahead_buffer"].lerp_(p.add(st["prev_params"], alpha=-1), 1 - group["ema"])
                st["prev_params"].copy_(p)
            group["step"] += 1
        return None


class EMANesterovPart(Part):
    """Outer part: wraps every optimizer of the recipe in EMA-Nesterov."""

    name = "ema_nesterov"
    stage = "outer"
    knobs = {"lookahead": 0.6, "ema": 0.99, "start": 0, "stop": None, "scheduled": True}

    def build(self, params, follow: torch.optim.Optimizer | None) -> EMANesterov:
        return EMANesterov(params, follow, **self.values)
