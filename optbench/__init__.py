"""optbench: the Modded-NanoGPT Optimization Benchmark as a Python system."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re

__version__ = "0.1.0"

#: the oldest torch optbench runs on (F.rms_norm, torch.optim step hooks, FlexAttention's API)
TORCH_MIN = (2, 4)


def torch_problem() -> str | None:
    """Why the installed torch cannot run optbench (missing or older than TORCH_MIN), or None. Reads the package
    metadata only: torch itself is not imported here."""
    need = ".".join(map(str, TORCH_MIN))
    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        if importlib.util.find_spec("torch") is None:
            return (f"optbench needs torch >= {need}, and torch is not installed: install it first "
                    "(pip install torch; see the README), then optbench")
        return None  # a torch without package metadata (a source build): nothing to compare
    m = re.match(r"(\d+)\.(\d+)", version)
    if m and (int(m[1]), int(m[2])) < TORCH_MIN:
        return f"optbench needs torch >= {need}, found torch {version}: upgrade torch (see the README)"
    return None


_problem = torch_problem()
if _problem is not None:
    raise ImportError(_problem)
