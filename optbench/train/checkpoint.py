"""Checkpoints that load with torch.load(weights_only=True): model, optimizers, data position, RNG, curve so far.

Layout: RUN_DIR/checkpoints/seed{S}/step_{N:06d}/rank{r}.pt with its rank{r}.sha256, plus a COMPLETE marker written
by rank 0 after every rank saved; only complete checkpoints are resumed from. Each file is written atomically (temp
file + rename) and its SHA-256 is checked before it is loaded, so a checkpoint cut short by kill -9, or damaged
later, is refused with a message instead of loading wrong state. Retention: `prune` keeps the latest N.
"""

from __future__ import annotations

import hashlib
import io
import random
import shutil
from pathlib import Path

import torch

from optbench.errors import OptbenchError
from optbench.fsutil import atomic_write_bytes, atomic_write_text


def checkpoint_dir(run_dir: Path, seed: int, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"seed{seed}" / f"step_{step:06d}"


def checkpoint_step(path_dir: Path) -> int:
    """The step of a checkpoint folder (`step_000010` -> 10)."""
    return int(Path(path_dir).name.split("_")[1])


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
    """This rank's state as rank{r}.pt, then its checksum as rank{r}.sha256 (both atomic)."""
    buf = io.BytesIO()
    torch.save(payload, buf)
    data = buf.getvalue()
    f = atomic_write_bytes(Path(path_dir) / f"rank{rank}.pt", data)
    atomic_write_text(f.with_suffix(".sha256"), hashlib.sha256(data).hexdigest() + "\n")
    return f


def mark_complete(path_dir: Path) -> None:
    atomic_write_text(Path(path_dir) / "COMPLETE", "ok\n")


def complete_checkpoints(run_dir: Path, seed: int) -> list[Path]:
    """The seed's complete checkpoint folders, oldest first."""
    base = Path(run_dir) / "checkpoints" / f"seed{seed}"
    return sorted(d for d in base.glob("step_*") if (d / "COMPLETE").is_file())


def latest_checkpoint(run_dir: Path, seed: int) -> Path | None:
    done = complete_checkpoints(run_dir, seed)
    return done[-1] if done else None


def prune(run_dir: Path, seed: int, keep: int) -> None:
    """Delete all but the latest `keep` complete checkpoints of a seed (and any incomplete older ones)."""
    done = complete_checkpoints(run_dir, seed)
    kept = done[-keep:] if keep > 0 else []
    newest = kept[0] if kept else None
    base = Path(run_dir) / "checkpoints" / f"seed{seed}"
    for d in sorted(base.glob("step_*")):
        if d not in kept and (newest is None or d.name < newest.name or d in done):
            shutil.rmtree(d, ignore_errors=True)


def remove_all(run_dir: Path) -> None:
    """Delete the run's checkpoints folder."""
    shutil.rmtree(Path(run_dir) / "checkpoints", ignore_errors=True)


def disk_use(run_dir: Path) -> int:
    """Bytes under the run's checkpoints folder."""
    return sum(f.stat().st_size for f in (Path(run_dir) / "checkpoints").rglob("*") if f.is_file())


def load_checkpoint(path_dir: Path, rank: int) -> dict:
    """This rank's state, after checking the file against its checksum; OptbenchError naming the file if not."""
    f = Path(path_dir) / f"rank{rank}.pt"
    if not f.is_file():
        raise OptbenchError(f"--resume: checkpoint file {f} is missing (was the run started with this world size?)")
    data = f.read_bytes()
    if not data:
        raise OptbenchError(f"--resume: checkpoint file {f} is empty (0 bytes); delete {f.parent} to resume from "
                            "the checkpoint before it")
    digest = f.with_suffix(".sha256")
    if digest.is_file():
        want = digest.read_text().strip()
        if hashlib.sha256(data).hexdigest() != want:
            raise OptbenchError(f"--resume: checkpoint file {f} does not match its checksum {digest.name} (damaged "
                                f"or cut short); delete {f.parent} to resume from the checkpoint before it")
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a damaged file
        raise OptbenchError(f"--resume: cannot load {f}: {type(e).__name__}: {e}".rstrip(": ")) from None
    if not isinstance(state, dict) or "step" not in state:
        raise OptbenchError(f"--resume: {f} is not an optbench checkpoint (no step in it)")
    return state
