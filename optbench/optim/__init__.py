"""The optimizer zoo: each optimizer a torch.optim.Optimizer, registered by name.

    from optbench.optim import get, names, SOAP
    opt = get("muon")(matrices, lr=0.025, weight_decay=0.05)

Each family module registers its optimizers on import; the list below is the zoo.
"""

from optbench.optim.registry import OptimizerInfo, get, info, names, register  # noqa: F401

# --- families (one module each; each registers itself on import) ---
from optbench.optim.adamw import Adam, AdamW  # noqa: E402,F401
from optbench.optim.muon import Muon  # noqa: E402,F401
from optbench.optim.normuon import NorMuon  # noqa: E402,F401
from optbench.optim.lion import Lion  # noqa: E402,F401
from optbench.optim.schedulefree import AdamWScheduleFree  # noqa: E402,F401
from optbench.optim.ademamix import AdEMAMix  # noqa: E402,F401
from optbench.optim.mars import MARS  # noqa: E402,F401
from optbench.optim.sophia import SophiaG  # noqa: E402,F401
from optbench.optim.adamuon import AdaMuon  # noqa: E402,F401
from optbench.optim.shampoo import Shampoo  # noqa: E402,F401
from optbench.optim.soap import SOAP  # noqa: E402,F401
from optbench.optim.kron import Kron  # noqa: E402,F401
from optbench.optim.parts.chain import Chain  # noqa: E402,F401  (composed from optbench.optim.parts)

__all__ = ["get", "info", "names", "register", "OptimizerInfo", "Adam", "AdamW", "Muon", "NorMuon", "Lion", "AdamWScheduleFree", "AdEMAMix", "MARS", "SophiaG", "AdaMuon", "Shampoo", "SOAP", "Kron", "Chain"]
