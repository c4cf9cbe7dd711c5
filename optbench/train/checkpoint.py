"""Checkpoints that load with torch.load(weights_only=True): model, optimizers, data position, RNG, curve so far.

Layout: RUN_DIR/checkpoints/seed{S}/step_{N:06d}/rank{r}.pt, plus a COMPLETE marker written by rank 0 after every
rank saved; only complete checkpoints are resumed from.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

import torch

from optbench.errors import OptbenchError
from optbench.fsutil import atomic_write_bytes, atomic_write_text


def checkpoint_dir(run_dir: Path, seed: int, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"seed{seed}" / f"step_{step:06d}"


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_tuplify(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def _tuplify(x):
    return tuple(_tuplify(v) for v in x) if isinstance(x, (list, tuple)) else x


def save_checkpoint(path_dir: Path, rank: int, payload: dict) -> Path:
    buf = io.BytesIO()
    torch.save(payload, buf)
    return atomic_write_bytes(Path(path_dir) / f"rank{rank}.pt", buf.getvalue())


def mark_complete(path_dir: Path) -> None:
    atomic_write_text(Path(path_dir) / "COMPLETE", "ok\n")


def latest_checkpoint(run_dir: Path, seed: int) -> Path | None:
    base = Path(run_dir) / "checkpoints" / f"seed{seed}"
    done = sorted(d for d in base.glob("step_*") if (d / "COMPLETE").is_file())
    return done[-1] if done else None


def load_checkpoint(path_dir: Path, rank: int) -> dict:
    f = Path(path_dir) / f"rank{rank}.pt"
    if not f.is_file():
        raise OptbenchError(f"--resume: checkpoint file {f} is missing (was the run started with this world size?)")
    try:
        return torch.load(f, map_location="cpu", weights_only=True)
    except Exception as e:
        raise OptbenchError(f"--resume: cannot load {f}: {e}") from None
