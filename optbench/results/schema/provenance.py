"""Provenance of a run: the git commit of the optbench checkout (a git subprocess), torch, python and the host."""

from __future__ import annotations

import platform
import socket
import subprocess
from pathlib import Path

from optbench.results.schema.models import Provenance


def collect_provenance(device: str | None = None, world_size: int | None = None) -> Provenance:
    """Where and with what a run ran: git commit of the optbench checkout (if any), torch, python, host."""
    import optbench

    commit = None
    try:
        here = Path(optbench.__file__).resolve().parent
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if out.returncode == 0:
            commit = out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        import torch

        tv = torch.__version__
    except ImportError:  # pragma: no cover
        tv = None
    return Provenance(
        git_commit=commit,
        torch_version=tv,
        device=device,
        world_size=world_size,
        optbench_version=getattr(optbench, "__version__", None),
        python=platform.python_version(),
        hostname=socket.gethostname(),
    )
