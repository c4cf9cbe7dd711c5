"""AdamW and Adam: torch's own implementations, registered under the zoo's names.

torch.optim.AdamW is what the benchmark itself uses (bias correction on, decoupled decay p <- p(1 - lr*wd)
with the scheduled lr), so the zoo uses it unchanged rather than re-deriving it.
"""

import torch

from optbench.optim.registry import register

AdamW = torch.optim.AdamW
Adam = torch.optim.Adam

register(
    "adamw",
    AdamW,
    reference="Loshchilov & Hutter 2019 (arXiv:1711.05101); torch.optim.AdamW",
)
register(
    "adam",
    Adam,
    reference="Kingma & Ba 2015 (arXiv:1412.6980); torch.optim.Adam (weight_decay is L2, not decoupled)",
)
