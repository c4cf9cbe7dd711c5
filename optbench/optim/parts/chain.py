"""Chain: a torch.optim.Optimizer composed of parts (a base update, transforms, posts, an apply part).

    from optbench.optim.parts.chain import Chain
    from optbench.optim.parts.momentum import Momentum
    from optbench.optim.parts.orthogonalize import Orthogonalize
    from optbench.optim.parts.aspect_scale import AspectScale
    from optbench.optim.parts.hyperball import Hyperball
    opt = Chain(matrices, [Momentum(mu=0.95), Orthogonalize(), AspectScale(), Hyperball()], lr=0.018)   # MuonH

Per parameter and step (see ``optbench.optim.parts.base`` for the stages):

    u = base(g, state);  u = t_k(...t_1(u));  posts.before;  apply (default W <- W - lr u);  posts.after;  finish

Every part's knobs live in each param group as ``"<part>.<knob>"`` (a group may override them); the parameter's
step count is ``state["step"]``. On more than one rank the parameters are sharded as track-3 Muon shards them
(``optbench.optim.muon.sharded_apply``). Parts are given as instances so that a script holds only the parts it
uses; ``optbench.optim.parts.catalog.chain_parts`` makes them from recipe data.
"""

from __future__ import annotations

from typing import Sequence

import torch

from optbench.optim.muon import _dist_world, sharded_apply
from optbench.optim.parts.base import STAGES, Part, StepContext
from optbench.optim.registry import register


def check_chain(parts: Sequence[Part]) -> None:
    """ValueError unless the parts form a chain: one base first, stages in order, at most one apply, no repeats."""
    if not parts:
        raise ValueError("chain: needs at least a base part (momentum, adam, psgd_kron)")
    names = [p.name for p in parts]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"chain: part(s) {', '.join(dup)} given twice")
    bases = [p.name for p in parts if p.stage == "base"]
    if len(bases) != 1:
        raise ValueError(f"chain: needs exactly one base part, got {bases or 'none'}")
    applies = [p.name for p in parts if p.stage == "apply"]
    if len(applies) > 1:
        raise ValueError(f"chain: at most one apply part, got {', '.join(applies)}")
    ranks = []
    for p in parts:
        if p.stage not in STAGES:
            raise ValueError(f"chain: part {p.name} has stage {p.stage!r}, which a chain does not run "
                             f"(chain stages: {', '.join(STAGES)})")
        ranks.append(STAGES.index(p.stage))
    if ranks != sorted(ranks) or parts[0].stage != "base":
        raise ValueError(f"chain: parts must run base, transforms, posts, apply in that order; got "
                         f"{', '.join(f'{p.name} ({p.stage})' for p in parts)}")


class Chain(torch.optim.Optimizer):
    """An optimizer made of parts. ``lr`` is the group learning rate every part reads as ``ctx.lr``."""

    def __init__(self, params, parts: Sequence[Part], lr: float = 0.02):
        parts = list(parts)
        check_chain(parts)
        if not (isinstance(lr, (int, float)) and lr >= 0):
            raise ValueError(f"lr: must be a number >= 0, got {lr!r}")
        self.parts = parts
        self._base = parts[0]
        self._transforms = [p for p in parts if p.stage == "transform"]
        self._posts = [p for p in parts if p.stage == "post"]
        self._apply = next((p for p in parts if p.stage == "apply"), None)
        defaults: dict = {"lr": lr}
        for p in parts:
            defaults.update(p.defaults())
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict) -> None:
        """torch's add_param_group, then every part checks its knobs for the new group."""
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        try:
            if not (isinstance(group["lr"], (int, float)) and group["lr"] >= 0):
                raise ValueError(f"lr: must be a number >= 0, got {group['lr']!r}")
            for part in self.parts:
                part.check_group(group)
        except ValueError:
            self.param_groups.pop()
            raise

    def _update(self, p: torch.Tensor, group: dict) -> None:
        state = self.state[p]
        ctx = StepContext(p, p.grad, state, group, state.get("step", 0))
        u = self._base.direction(ctx)
        for t in self._transforms:
            u = t.transform(u, ctx)
        for q in self._posts:
            q.before(u, ctx)
        if self._apply is None:
            p.add_(u, alpha=-ctx.lr)
        else:
            self._apply.apply(u, ctx)
        for q in self._posts:
            q.after(ctx)
        for part in self.parts:
            part.finish(ctx)
        state["step"] = ctx.step + 1

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        rank, world_size = _dist_world()
        for group in self.param_groups:

            def update_one(p, group=group):
                if p.grad is not None:
                    self._update(p, group)

            if world_size == 1:
                for p in group["params"]:
                    update_one(p)
            else:
                ordered = sorted(group["params"], key=lambda q: tuple(q.shape), reverse=True)
                sharded_apply(ordered, update_one, rank, world_size)
        return loss


register(
    "chain",
    Chain,
    family="parts.chain",
    reference="optbench composed optimizer: parts from the track-3 leaderboard (see `optbench recipes --parts R`)",
    notes="base update + transforms + apply part, all as recipe data ([parts.NAME] tables)",
)
