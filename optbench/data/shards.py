"""The upstream shard format (256 x int32 header: magic 20240520, version 1, token count; then uint16 tokens): writing,
validating and listing shards. Reading is optbench.standalone.data's, with its errors reported as OptbenchError."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from optbench.errors import OptbenchError, user_errors
from optbench.fsutil import atomic_write
from optbench.standalone.data import (HEADER_BYTES, HEADER_INTS, MAGIC, VERSION, DataError, read_shard,
                                      shard_token_count)

__all__ = ["MAGIC", "VERSION", "HEADER_INTS", "HEADER_BYTES", "write_shard", "read_token_count", "load_shard",
           "list_shards"]


def write_shard(path: str | os.PathLike, tokens: np.ndarray | list[int]) -> Path:
    """Write tokens (all < 65536) as one shard, atomically."""
    toks = np.asarray(tokens)
    if toks.size and (toks.min() < 0 or toks.max() >= 2**16):
        raise OptbenchError(f"{path}: tokens must be in [0, 65535] to fit uint16")
    header = np.zeros(HEADER_INTS, dtype=np.int32)
    header[0], header[1], header[2] = MAGIC, VERSION, toks.size
    data = toks.astype("<u2", copy=False)
    return atomic_write(path, lambda f: (f.write(header.astype("<i4").tobytes()), f.write(data.tobytes())), "wb")


def read_token_count(path: str | os.PathLike) -> int:
    """Validate a shard's header and size; return its token count. OptbenchError names the file."""
    with user_errors(DataError):
        return shard_token_count(path)


def load_shard(path: str | os.PathLike) -> torch.Tensor:
    """All tokens of a validated shard as a uint16 tensor."""
    with user_errors(DataError):
        return read_shard(path)


def list_shards(data_dir: str | os.PathLike, split: str) -> list[Path]:
    """Upstream names, sorted: fineweb_train_*.bin or fineweb_val_*.bin in data_dir."""
    d = Path(data_dir)
    if not d.is_dir():
        raise OptbenchError(f"--data: {d} is not a directory")
    files = sorted(d.glob(f"fineweb_{split}_*.bin"))
    if not files:
        raise OptbenchError(f"--data: no fineweb_{split}_*.bin shards in {d}")
    return files
