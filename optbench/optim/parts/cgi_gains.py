"""CGI gains: Rademacher-signed, paired RMSNorm gains per block (norm1 = 1 - alpha s, norm2 = 1 + alpha s).

    s ~ +-1 per channel (global RNG) for blocks l < pair_from; from block pair_from on, blocks come in pairs
    (l, l+1) sharing an antithetic draw (s, s'): per head of head_dim channels, s has a shrunk number of +1's
    (head_dim/2 + shrink (k - head_dim/2), k ~ Binomial), s' has head_dim minus that many, each randomly placed
    (a generator seeded 0xA9170000 + 1009 seed + 9176 l, seed = torch.initial_seed()).

Source: track-3 result #30 (PR #300, "v14 CGI Rademacher channel-gain split"), alpha 0.125 from #44 (PR #321), kept
in record #46 (``headmean_antithetic_pair``; ``_CGI_ALPHA = 0.125, _CGI_PAIR_FROM_LAYER = 6,
_CGI_HEAD_MEAN_SHRINK = 0.50``).
"""

from __future__ import annotations

import torch

from optbench.optim.parts.base import Part


def _antithetic_pair(shape, device, layer: int, seed: int, head_dim: int, shrink: float):
    width = shape[-1]
    if width % head_dim != 0:
        s0 = torch.randint(0, 2, shape, device=device, dtype=torch.float32) * 2 - 1
        return s0, -s0
    gen = torch.Generator(device=device)
    gen.manual_seed(0xA9170000 + seed * 1009 + layer * 9176)
    heads0, heads1 = [], []
    for _ in range(width // head_dim):
        h0 = (torch.randint(0, 2, (head_dim,), device=device, generator=gen, dtype=torch.int64) * 2 - 1).float()
        plus0 = int((h0 > 0).sum().item())
        plus0 = max(0, min(head_dim, int(round(head_dim / 2 + shrink * (plus0 - head_dim / 2)))))
        h0 = torch.cat([torch.ones(plus0, device=device), -torch.ones(head_dim - plus0, device=device)])
        heads0.append(h0[torch.randperm(head_dim, device=device, generator=gen)])
        plus1 = head_dim - plus0
        h1 = torch.cat([torch.ones(plus1, device=device), -torch.ones(head_dim - plus1, device=device)])
        heads1.append(h1[torch.randperm(head_dim, device=device, generator=gen)])
    return torch.cat(heads0).reshape(shape), torch.cat(heads1).reshape(shape)


class CGIGains(Part):
    """Init part: paired Rademacher RMSNorm gains."""

    name = "cgi_gains"
    stage = "init"
    knobs = {"alpha": 0.125, "pair_from": 6, "head_dim": 128, "shrink": 0.5}

    @torch.no_grad()
    def init_model(self, model) -> None:
        v, seed = self.values, torch.initial_seed()
        pair_next = None
        for i, block in enumerate(model.blocks):
            g1 = block.norm1.gains
            if i >= v["pair_from"] and (i - v["pair_from"]) % 2 == 1:
                s, pair_next = pair_next, None
            elif i >= v["pair_from"]:
                s, pair_next = _antithetic_pair(g1.shape, g1.device, i, seed, v["head_dim"], v["shrink"])
            else:
                s = torch.randint(0, 2, g1.shape, device=g1.device, dtype=torch.float32) * 2 - 1
            g1.copy_((1.0 - v["alpha"] * s).to(g1.dtype))
            block.norm2.gains.copy_((1.0 + v["alpha"] * s).to(g1.dtype))
